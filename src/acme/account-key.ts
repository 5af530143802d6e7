import { calculateJwkThumbprint, exportJWK, FlattenedSign, type JWSHeaderParameters } from "jose";
import { fail, ok, type Result } from "../core/result";
import type { AcmeBadInput } from "./refusals";

/** The public half of an ES256 account key, as the CA sees it in `jwk` (RFC 7518 §6.2.1): only the required members. */
export interface AcmePublicJwk {
  readonly kty: "EC";
  readonly crv: "P-256";
  readonly x: string;
  readonly y: string;
}

/** A flattened JWS (RFC 7515 §7.2.2), the body of every ACME POST (RFC 8555 §6.2). */
export interface FlattenedJws {
  readonly protected: string;
  readonly payload: string;
  readonly signature: string;
}

const P256 = { name: "ECDSA", namedCurve: "P-256" } as const;
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;

/**
 * An ACME account key in use: the public JWK and its RFC 7638 thumbprint
 * (which key authorizations carry), and the private key, held in a private
 * field: it is in no property, so no log line, JSON or RPC reply built from
 * this object can carry it (`toJSON` names the public half only).
 */
export class AcmeAccountKey {
  readonly publicJwk: AcmePublicJwk;
  /** base64url SHA-256 JWK thumbprint (RFC 7638 §3), the second half of every key authorization (RFC 8555 §8.1). */
  readonly thumbprint: string;
  readonly #privateKey: CryptoKey;

  private constructor(privateKey: CryptoKey, publicJwk: AcmePublicJwk, thumbprint: string) {
    this.#privateKey = privateKey;
    this.publicJwk = publicJwk;
    this.thumbprint = thumbprint;
  }

  /** @internal Builds an account key once importAccountKey has checked its halves. */
  static from(privateKey: CryptoKey, publicJwk: AcmePublicJwk, thumbprint: string): AcmeAccountKey {
    return new AcmeAccountKey(privateKey, publicJwk, thumbprint);
  }

  /** Signs an ES256 flattened JWS (through jose) with this key and the given protected header. */
  async sign(protectedHeader: JWSHeaderParameters, payload: Uint8Array): Promise<FlattenedJws> {
    const jws = await new FlattenedSign(payload).setProtectedHeader({ ...protectedHeader, alg: "ES256" }).sign(this.#privateKey);
    return { protected: jws.protected ?? "", payload: jws.payload, signature: jws.signature };
  }

  toJSON(): { publicJwk: AcmePublicJwk; thumbprint: string } {
    return { publicJwk: this.publicJwk, thumbprint: this.thumbprint };
  }
}

/** The RFC 7638 thumbprint (SHA-256, base64url) of a public JWK, through jose. */
export async function jwkThumbprint(jwk: object): Promise<string> {
  return calculateJwkThumbprint(jwk as Parameters<typeof calculateJwkThumbprint>[0], "sha256");
}

function badKey(detail: string): Result<never, AcmeBadInput> {
  return fail({ reason: "acme_bad_input", detail });
}

/**
 * An account key from the halves the caller holds: the private key it
 * unwrapped (ECDSA P-256, usage `sign`, extractable or not) and the public
 * JWK it stored beside the wrap (public, so stored in the clear). Refused
 * when either is not P-256, when the JWK carries a private member (`d`), or
 * when the two are not one key pair: a test signature by the private key
 * must verify under the public one, so a swapped row cannot make the client
 * present one account's key and sign with another's.
 */
export async function importAccountKey(
  privateKey: CryptoKey,
  publicJwk: Readonly<JsonWebKey>,
  subtle: SubtleCrypto = crypto.subtle,
): Promise<Result<AcmeAccountKey, AcmeBadInput>> {
  const algorithm = privateKey.algorithm as unknown as { name?: unknown; namedCurve?: unknown };
  if (privateKey.type !== "private" || algorithm.name !== "ECDSA" || algorithm.namedCurve !== "P-256") {
    return badKey("the account key must be an ECDSA P-256 private key (ES256)");
  }
  if (!privateKey.usages.includes("sign")) return badKey("the account key cannot sign (usage 'sign' missing)");
  if ("d" in publicJwk) return badKey("the account's public JWK carries a private member");
  const { kty, crv, x, y } = publicJwk;
  if (kty !== "EC" || crv !== "P-256" || typeof x !== "string" || typeof y !== "string" || !COORDINATE.test(x) || !COORDINATE.test(y)) {
    return badKey("the account's public JWK is not a P-256 EC key");
  }
  const jwk: AcmePublicJwk = { kty, crv, x, y };
  let publicKey: CryptoKey;
  try {
    publicKey = await subtle.importKey("jwk", { ...jwk, ext: true }, P256, true, ["verify"]);
  } catch {
    return badKey("the account's public JWK is not a point on P-256");
  }
  const probe = new TextEncoder().encode("acme-account-key:pair-check:v1");
  const signature = await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, probe);
  if (!(await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, publicKey, signature, probe))) {
    return badKey("the account's public JWK is not the private key's");
  }
  return ok(AcmeAccountKey.from(privateKey, jwk, await jwkThumbprint({ ...jwk })));
}

/** A fresh account key (see generateAccountKey). */
export interface GeneratedAccountKey {
  /** Extractable only so the caller can wrap it (WebCrypto's wrapKey requires it); store the wrap, never this. */
  readonly privateKey: CryptoKey;
  /** Store beside the wrap (public); importAccountKey takes it back with the unwrapped private key. */
  readonly publicJwk: AcmePublicJwk;
  readonly key: AcmeAccountKey;
}

/** A new ES256 account key pair (RFC 8555 §6.2: ES256 is the algorithm every CA must accept). */
export async function generateAccountKey(subtle: SubtleCrypto = crypto.subtle): Promise<GeneratedAccountKey> {
  const pair = (await subtle.generateKey(P256, true, ["sign", "verify"])) as CryptoKeyPair;
  const exported = (await exportJWK(pair.publicKey)) as JsonWebKey;
  const imported = await importAccountKey(pair.privateKey, exported, subtle);
  // A key WebCrypto just made is a P-256 pair: a refusal here is a broken runtime, not input.
  if (!imported.ok) throw new Error(`generated account key refused: ${imported.detail}`);
  return { privateKey: pair.privateKey, publicJwk: imported.value.publicJwk, key: imported.value };
}
