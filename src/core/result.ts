/**
 * Why a request is refused, as every layer reports it. The reasons are
 * domain words; only the HTTP layer (src/http/errors.ts) turns a reason into
 * a status, a code and a message, in one exhaustive table.
 */
export type ErrorReason =
  // Credentials and routing.
  | "no_bearer_token"
  | "unparseable_jwt"
  | "bad_jwt_header"
  | "jwt_verification_failed"
  | "unusable_jwt_claims"
  | "missing_jwt_claims"
  | "invalid_legacy_credentials"
  | "forbidden"
  | "no_route"
  | "method_not_allowed"
  // Custom CSRs.
  | "invalid_json"
  | "missing_scope_id"
  | "no_authorization"
  | "no_quota"
  | "not_entitled"
  | "missing_country"
  | "missing_state"
  | "missing_locality"
  | "missing_organization"
  | "missing_common_name"
  | "common_name_too_long"
  | "missing_sans"
  | "invalid_san"
  | "non_ascii_san"
  | "reserved_tld_san"
  | "unparseable_san"
  | "example_domain_san"
  | "invalid_key_type"
  | "invalid_csr_id"
  | "csr_not_found"
  | "csr_in_use"
  | "invalid_field_type"
  | "invalid_country"
  | "too_many_sans"
  | "body_too_large"
  | "body_timeout"
  | "invalid_scope_id"
  | "invalid_query"
  | "field_too_long"
  | "invalid_field_characters"
  // Custom certificates.
  | "invalid_certificate"
  | "invalid_certificate_host"
  | "certificate_exists"
  | "certificate_key_mismatch"
  | "certificate_expired"
  | "certificate_not_yet_valid"
  | "invalid_chain"
  | "missing_custom_csr_id"
  | "private_key_not_accepted"
  | "invalid_bundle_method"
  | "invalid_certificate_id"
  | "certificate_not_found"
  // The audit trail.
  | "invalid_audit_id"
  | "audit_entry_not_found"
  // Zones and accounts.
  | "zone_account_not_recorded"
  | "zone_account_moved"
  // Key delivery policies (Geo Key Manager's `policy` and `geo_restrictions`).
  | "policy_invalid_character"
  | "policy_unbalanced_parentheses"
  | "policy_expected_term"
  | "policy_expected_operator"
  | "policy_unknown_attribute"
  | "policy_unknown_country"
  | "policy_unknown_region"
  | "policy_too_complex"
  | "invalid_geo_restrictions"
  | "policy_with_geo_restrictions"
  // Edges and key delivery.
  | "invalid_edge_id"
  | "invalid_edge_key"
  | "invalid_edge_labels"
  | "edge_not_found"
  | "edge_not_registered"
  | "edge_excluded_by_policy"
  | "certificate_expired_not_delivered"
  | "record_integrity_failed"
  // The deployment.
  | "internal"
  | "scope_mismatch"
  | "rate_limited"
  | "key_encryption_unavailable"
  | "key_encryption_key_missing"
  | "key_encryption_mismatch"
  | "key_unwrap_failed"
  // Readiness (GET /readyz).
  | "storage_unavailable"
  | "readiness_timeout";

/**
 * A refusal as it crosses RPC and module boundaries: a reason plus optional
 * detail (a JSON pointer into the body, or text that replaces the message's
 * `:reason` placeholder).
 */
export interface Failure {
  readonly reason: ErrorReason;
  readonly pointer?: string;
  readonly detail?: string;
}

/** What a fallible operation returns; thrown errors do not cross RPC intact, Results do. */
export type Result<T> = { readonly ok: true; readonly value: T } | ({ readonly ok: false } & Failure);

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });

export const fail = (reason: ErrorReason, extra: Omit<Failure, "reason"> = {}): { ok: false } & Failure => ({
  ok: false,
  reason,
  ...extra,
});
