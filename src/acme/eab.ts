import { base64url, FlattenedSign } from "jose";
import { fail, ok, type Result } from "../core/result";
import type { AcmePublicJwk, FlattenedJws } from "./account-key";
import type { AcmeBadInput } from "./refusals";

/** External Account Binding credentials, as a CA hands them out (RFC 8555 §7.3.4). */
export interface ExternalAccountBinding {
  /** The key identifier the CA gave (the inner JWS's `kid`). */
  readonly kid: string;
  /** The MAC key the CA gave, base64url (padding tolerated). */
  readonly hmacKey: string;
}

/** The EAB MAC key as bytes, or a refusal that never quotes the key. */
export function decodeEabKey(text: string): Result<Uint8Array, AcmeBadInput> {
  const trimmed = text.trim().replace(/=+$/, "");
  if (trimmed === "" || !/^[A-Za-z0-9_-]+$/.test(trimmed) || trimmed.length % 4 === 1) {
    return fail({ reason: "acme_bad_input", detail: "the EAB HMAC key is not base64url" });
  }
  return ok(base64url.decode(trimmed));
}

/**
 * The `externalAccountBinding` member of a newAccount payload (RFC 8555
 * §7.3.4): a JWS over the account's public JWK, MACed with HS256 under the
 * CA-issued key, its protected header holding only `alg`, `kid` (the EAB
 * key identifier) and `url` (the newAccount URL, the same as the outer
 * JWS's); no nonce.
 */
export async function externalAccountBinding(
  eab: ExternalAccountBinding,
  accountJwk: AcmePublicJwk,
  newAccountUrl: string,
): Promise<Result<FlattenedJws, AcmeBadInput>> {
  if (typeof eab.kid !== "string" || eab.kid === "") return fail({ reason: "acme_bad_input", detail: "the EAB key identifier is empty" });
  const key = decodeEabKey(eab.hmacKey);
  if (!key.ok) return key;
  const payload = new TextEncoder().encode(JSON.stringify(accountJwk));
  const jws = await new FlattenedSign(payload).setProtectedHeader({ alg: "HS256", kid: eab.kid, url: newAccountUrl }).sign(key.value);
  return ok({ protected: jws.protected ?? "", payload: jws.payload, signature: jws.signature });
}
