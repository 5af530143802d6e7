/**
 * Why a credential is refused (src/http/errors.ts maps each to the seeds'
 * codes 1000–1005, 1402, Cloudflare's 9103 and 10000).
 */

/** A bearer token that cannot be used (1000–1005). */
export type TokenRefusal =
  | { readonly reason: "no_bearer_token" }
  | { readonly reason: "unparseable_jwt" }
  | { readonly reason: "bad_jwt_header" }
  | { readonly reason: "jwt_verification_failed" }
  | { readonly reason: "unusable_jwt_claims" }
  | { readonly reason: "missing_jwt_claims" };

/** A global API key pair that is not registered (9103). */
export type LegacyKeyRefusal = { readonly reason: "invalid_legacy_credentials" };

/** No credential at all (1402). */
export type NoCredentials = { readonly reason: "no_authorization" };

/** A valid credential that does not cover the scope or the permission (10000). */
export type Forbidden = { readonly reason: "forbidden" };

export type AuthRefusal = TokenRefusal | LegacyKeyRefusal | NoCredentials;
