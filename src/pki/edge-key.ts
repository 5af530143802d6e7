import { base64url, calculateJwkThumbprint } from "jose";
import { type Result, fail, ok } from "../core/result";
import type { EdgeLabels } from "./geo-policy";

/**
 * An edge's registered key-agreement key: the public members only, as
 * stored and as keys are sealed to (src/pki/seal.ts).
 */
export type EdgePublicKey =
  | { readonly kty: "EC"; readonly crv: "P-256"; readonly x: string; readonly y: string }
  | { readonly kty: "OKP"; readonly crv: "X25519"; readonly x: string };

/**
 * A registered edge as a recipient of sealed keys: what the Worker reads from
 * the registry on each delivery request and hands to the tenant's object.
 */
export interface EdgeRecipient {
  readonly id: string;
  readonly public_key: EdgePublicKey;
  /** RFC 7638 SHA-256 thumbprint of public_key. */
  readonly thumbprint: string;
  readonly labels: EdgeLabels;
}

// Members of a private JWK (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2):
// one of these means the caller sent its private key, which is refused and
// never stored or echoed.
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
// What a public JWK from an ordinary tool may carry besides its key
// (RFC 7517 §4): tolerated, checked, not stored.
const OPTIONAL_MEMBERS = ["kid", "use", "alg", "key_ops", "ext"];
// A P-256 coordinate or an X25519 public key: 32 bytes, base64url without
// padding (RFC 7518 §6.2.1.2, RFC 8037 §2).
const COORDINATE = /^[A-Za-z0-9_-]{43}$/;

/** Why an edge's public key is refused (ours: 1471): `problem` says what is wrong with it. */
export type EdgeKeyRefusal = { readonly reason: "invalid_edge_key"; readonly pointer: string; readonly problem: string };

const refuse = (problem: string) => fail({ reason: "invalid_edge_key", pointer: "/public_key", problem });

/** A base64url coordinate of exactly 32 bytes, in its one canonical spelling. */
function coordinate(value: unknown): boolean {
  if (typeof value !== "string" || !COORDINATE.test(value)) return false;
  try {
    return base64url.encode(base64url.decode(value)) === value;
  } catch {
    return false;
  }
}

function algorithmOf(key: EdgePublicKey): SubtleCryptoImportKeyAlgorithm & SubtleCryptoGenerateKeyAlgorithm {
  return key.kty === "EC" ? { name: "ECDH", namedCurve: "P-256" } : { name: "X25519" };
}

/**
 * Checks an edge's public key for registration: a JWK object, EC P-256 or
 * OKP X25519, with no private member (refused outright, and never echoed),
 * no unknown member, `use` "enc" and `alg` "ECDH-ES" if present, and a point
 * that works: it imports (WebCrypto refuses a P-256 point off the curve) and
 * a trial key agreement with a fresh key succeeds (which refuses X25519's
 * low-order points, whose shared secret would be all zeros: RFC 7748 §6.1).
 * Returns the public members and the key's RFC 7638 thumbprint.
 */
export async function parseEdgePublicKey(input: unknown): Promise<Result<{ key: EdgePublicKey; thumbprint: string }, EdgeKeyRefusal>> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return refuse("it must be a JWK object");
  const jwk = input as Record<string, unknown>;
  // A member whose value is undefined is absent (as in WebCrypto's own exports); JSON has none.
  if (PRIVATE_MEMBERS.some((member) => jwk[member] !== undefined)) {
    return refuse("it holds a private key member; register the public key only and keep the private key on the edge");
  }
  for (const member of Object.keys(jwk)) {
    if (jwk[member] === undefined) continue;
    if (member !== "kty" && member !== "crv" && member !== "x" && member !== "y" && !OPTIONAL_MEMBERS.includes(member)) {
      return refuse(`member ${JSON.stringify(member.slice(0, 32))} is not a public JWK member`);
    }
  }
  if (jwk.use !== undefined && jwk.use !== "enc") return refuse(`"use" must be "enc"`);
  if (jwk.alg !== undefined && jwk.alg !== "ECDH-ES") return refuse(`"alg" must be "ECDH-ES"`);
  if (jwk.kid !== undefined && (typeof jwk.kid !== "string" || jwk.kid.length > 256)) return refuse(`"kid" must be a string`);
  if (jwk.ext !== undefined && typeof jwk.ext !== "boolean") return refuse(`"ext" must be a boolean`);
  if (jwk.key_ops !== undefined && (!Array.isArray(jwk.key_ops) || jwk.key_ops.some((op) => op !== "deriveBits" && op !== "deriveKey"))) {
    return refuse(`"key_ops" may only hold "deriveBits" and "deriveKey"`);
  }

  let key: EdgePublicKey;
  if (jwk.kty === "EC" && jwk.crv === "P-256") {
    if (!coordinate(jwk.x) || !coordinate(jwk.y)) return refuse("x and y must each be 32 bytes, base64url without padding");
    key = { kty: "EC", crv: "P-256", x: jwk.x as string, y: jwk.y as string };
  } else if (jwk.kty === "OKP" && jwk.crv === "X25519") {
    if (jwk.y !== undefined) return refuse("an X25519 key has no y");
    if (!coordinate(jwk.x)) return refuse("x must be 32 bytes, base64url without padding");
    key = { kty: "OKP", crv: "X25519", x: jwk.x as string };
  } else {
    return refuse(`"kty" and "crv" must be "EC" and "P-256", or "OKP" and "X25519"`);
  }

  try {
    const algorithm = algorithmOf(key);
    const publicKey = await crypto.subtle.importKey("jwk", { ...key }, algorithm, true, []);
    const trial = (await crypto.subtle.generateKey(algorithm, false, ["deriveBits"])) as CryptoKeyPair;
    // WebCrypto's member is `public` (workers-types spells it `$public`).
    const agreement = { name: algorithm.name, public: publicKey } as unknown as SubtleCryptoDeriveKeyAlgorithm;
    await crypto.subtle.deriveBits(agreement, trial.privateKey, 256);
  } catch {
    return refuse("the point is not a usable public key on its curve");
  }
  return ok({ key, thumbprint: await calculateJwkThumbprint({ ...key }, "sha256") });
}
