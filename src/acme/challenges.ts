import { base64url } from "jose";
import type { AcmeAccountKey } from "./account-key";
import type { AcmeAuthorization, AcmeChallenge } from "./objects";

/**
 * What a challenge asks to be published (RFC 8555 §8). Public by nature: a
 * key authorization is the token and the account key's thumbprint, nothing
 * secret, and it is what the CA fetches from the world.
 */

/** `token.thumbprint` (RFC 8555 §8.1): the thumbprint is the account key's RFC 7638 SHA-256 thumbprint. */
export function keyAuthorization(token: string, key: Pick<AcmeAccountKey, "thumbprint">): string {
  return `${token}.${key.thumbprint}`;
}

/** The dns-01 TXT value (RFC 8555 §8.4): base64url of the SHA-256 digest of the key authorization. */
export async function dns01TxtValue(keyAuth: string, subtle: SubtleCrypto = crypto.subtle): Promise<string> {
  const digest = await subtle.digest("SHA-256", new TextEncoder().encode(keyAuth));
  return base64url.encode(new Uint8Array(digest));
}

/**
 * The dns-01 record's name (RFC 8555 §8.4): `_acme-challenge.` before the
 * domain, the wildcard label stripped (§7.1.3: `*.example.com` is validated
 * at `_acme-challenge.example.com`). No trailing dot.
 */
export function dns01RecordName(identifier: string): string {
  return `_acme-challenge.${identifier.replace(/^\*\./, "")}`;
}

/** The http-01 path (RFC 8555 §8.3), where the key authorization is served as the body. */
export function http01Path(token: string): string {
  return `/.well-known/acme-challenge/${token}`;
}

/** What to publish for one challenge, and the key authorization it proves. */
export type ChallengeProof =
  | {
      readonly type: "http-01";
      readonly token: string;
      readonly keyAuthorization: string;
      /** `http://<domain>/.well-known/acme-challenge/<token>`: what the CA fetches, on port 80. */
      readonly url: string;
      readonly path: string;
      /** The body to answer with (any Content-Type; the CA trims whitespace, §8.3). */
      readonly body: string;
    }
  | {
      readonly type: "dns-01";
      readonly token: string;
      readonly keyAuthorization: string;
      /** The TXT record's name, without a trailing dot. */
      readonly name: string;
      readonly value: string;
    };

/**
 * The record to publish for `challenge` of `authorization` (http-01 or
 * dns-01), or undefined for other types or a challenge without a token.
 */
export async function challengeProof(
  key: Pick<AcmeAccountKey, "thumbprint">,
  authorization: Pick<AcmeAuthorization, "identifier">,
  challenge: Pick<AcmeChallenge, "type" | "token">,
  subtle: SubtleCrypto = crypto.subtle,
): Promise<ChallengeProof | undefined> {
  const token = challenge.token;
  if (token === undefined) return undefined;
  const keyAuth = keyAuthorization(token, key);
  const domain = authorization.identifier.value.replace(/^\*\./, "");
  if (challenge.type === "http-01") {
    const path = http01Path(token);
    return { type: "http-01", token, keyAuthorization: keyAuth, url: `http://${domain}${path}`, path, body: keyAuth };
  }
  if (challenge.type === "dns-01") {
    return { type: "dns-01", token, keyAuthorization: keyAuth, name: dns01RecordName(domain), value: await dns01TxtValue(keyAuth, subtle) };
  }
  return undefined;
}
