import type { AuthRefusal, Forbidden } from "../auth/refusals";
import { ERRORS } from "./error-table";
import type { BodyShapeRefusal, InvalidQuery, NoRoute, RateLimited, ScopeMismatch } from "../core/refusals";
import type { NotRecorded, AccountMoved } from "../directory/zone-accounts";
import type { EdgeNotRegistered } from "../edges/edge-registry";
import type { EdgeNotFound } from "../edges/edge-store";
import type { EdgeLabelsRefusal } from "../edges/edge-input";
import type { StorageUnavailable } from "../health/checks";
import type { CertificateRefusal } from "../pki/certificate-check";
import type { InvalidPriorities } from "../tenant/certificate-records";
import type { CsrInputRefusal } from "../pki/csr-input";
import type { EdgeKeyRefusal } from "../pki/edge-key";
import type { Found, PolicyRefusal } from "../pki/geo-policy";
import type { KeyRefusal } from "../pki/keyring";
import type { IntegrityFailed } from "../pki/row-seal";
import type { HostnameTaken } from "../hostnames/hostname-registry";
import type { HostnameBodyRefusal } from "./hostname-input";
import type { AlertingRefusal } from "../alerting/alerting-store";
import type {
  HostnameCertificateRefusal,
  HostnameNotFound,
  HostnameNotInCertificate,
  HostnameQuotaRefusal,
  HttpForWildcard,
  CsrNamesUncovered,
  UnknownCertificateAuthority,
} from "../tenant/hostname-store";
import type {
  AuditEntryNotFound,
  CertificateExists,
  CertificateNotFound,
  CsrInUse,
  CsrNotFound,
  DeliveryRefusal,
  EntitlementRefusal,
} from "../tenant/refusals";

/** What the HTTP layer itself refuses: paths, ids in paths, bodies on the wire, and its own limits. */
export type RequestRefusal =
  | { readonly reason: "missing_scope_id" }
  | { readonly reason: "invalid_scope_id"; readonly pointer?: string }
  | { readonly reason: "method_not_allowed" }
  | { readonly reason: "body_too_large" }
  | { readonly reason: "body_timeout" }
  | { readonly reason: "invalid_csr_id"; readonly pointer?: string }
  | { readonly reason: "invalid_certificate_id"; readonly pointer?: string }
  | { readonly reason: "invalid_audit_id" }
  | { readonly reason: "invalid_edge_id" }
  | { readonly reason: "missing_custom_csr_id"; readonly pointer: string }
  | { readonly reason: "private_key_not_accepted"; readonly pointer: string }
  | { readonly reason: "invalid_bundle_method"; readonly pointer: string }
  | { readonly reason: "invalid_geo_restrictions"; readonly pointer: string }
  | { readonly reason: "policy_with_geo_restrictions"; readonly pointer: string }
  | { readonly reason: "readiness_timeout" }
  | { readonly reason: "internal" };

/** Every refusal the API can answer, from every concern. */
export type Refusal =
  | AuthRefusal
  | Forbidden
  | BodyShapeRefusal
  | InvalidQuery
  | RateLimited
  | ScopeMismatch
  | NoRoute
  | RequestRefusal
  | CsrInputRefusal
  | CertificateRefusal
  | PolicyRefusal
  | EdgeKeyRefusal
  | EdgeLabelsRefusal
  | KeyRefusal
  | IntegrityFailed
  | CsrNotFound
  | CsrInUse
  | EntitlementRefusal
  | CertificateNotFound
  | CertificateExists
  | InvalidPriorities
  | AuditEntryNotFound
  | DeliveryRefusal
  | EdgeNotFound
  | EdgeNotRegistered
  | NotRecorded
  | AccountMoved
  | StorageUnavailable
  | HostnameBodyRefusal
  | HostnameTaken
  | HostnameQuotaRefusal
  | HostnameNotFound
  | HostnameCertificateRefusal
  | HostnameNotInCertificate
  | CsrNamesUncovered
  | HttpForWildcard
  | UnknownCertificateAuthority
  | HostnameQueryRefusal
  | AlertingRefusal
  | AlertingInputRefusal;

/** A notifications request refused before it reaches the account (its body, query or path). */
export type AlertingInputRefusal =
  | { readonly reason: "alert_type_invalid"; readonly alert_type: string }
  | { readonly reason: "alert_interval_unsupported" }
  | { readonly reason: "alert_mechanisms_required" }
  | { readonly reason: "alert_filters_required"; readonly filters: string }
  | { readonly reason: "alert_filter_invalid"; readonly problem: string }
  | { readonly reason: "alert_field_invalid"; readonly pointer: string }
  | { readonly reason: "alert_id_invalid" };

/** A custom hostname list query refused (Cloudflare's 1437, 1438), or a malformed id in the path (1435). */
export type HostnameQueryRefusal =
  | { readonly reason: "hostname_filter_invalid"; readonly parameter: string }
  | { readonly reason: "hostname_id_with_filters" }
  | { readonly reason: "hostname_id_invalid" };

export type Reason = Refusal["reason"];

/** The refusals whose reason is `K` (a case may carry several reasons with the same data). */
export type RefusalFor<K extends Reason> = Refusal extends infer R ? (R extends { readonly reason: infer X } ? (K extends X ? R : never) : never) : never;

/** How one reason is answered: its HTTP status, code and message. */
export interface ErrorEntry {
  readonly status: number;
  readonly code: number;
  readonly message: string;
  /** Seconds, sent as Retry-After (RFC 9110 §10.2.3). */
  readonly retryAfter?: number;
  /** Which of Cloudflare's code tables the code is from, when not the Custom CSR API's (docs/api.md has one table per API). */
  readonly api?: "custom_hostnames" | "alerting";
}

// JSON.stringify shows control characters and lone surrogates escaped; what
// is not printable ASCII after that is replaced, so a message never carries it.
const printable = (text: string) => JSON.stringify(text).replace(/[^\x20-\x7e]/g, "?");
const found = (f: Found) => (f === "end" ? "the end of the policy" : `'${f.text}' at position ${f.position}`);

export { ERRORS };

// The table is exactly the refusals: every reason has an entry, and every entry a reason.
const EVERY_REASON: { readonly [K in Reason]: ErrorEntry } = ERRORS;
type Unknown = Exclude<keyof typeof ERRORS, Reason>;
const NO_OTHER: [Unknown] extends [never] ? true : Unknown = true;
void EVERY_REASON;
void NO_OTHER;

/**
 * For a message with a `:reason` placeholder, what fills it from the
 * refusal's data (test/errors.test.ts holds the two to each other).
 */
export const DETAILS: { readonly [K in Reason]?: (refusal: RefusalFor<K>) => string } = {
  unparseable_san: (r) => `publicsuffix: cannot derive eTLD+1 for domain "${r.domain}"`,
  invalid_query: (r) => `${r.parameter} ${r.rule}`,
  invalid_certificate_host: (r) => printable(r.host),
  certificate_exists: (r) => r.certificate_id,
  invalid_priorities: (r) => `${r.pointer} ${r.rule}`,
  policy_invalid_character: (r) => `unexpected character ${JSON.stringify(r.character)} at position ${r.position}`,
  policy_unbalanced_parentheses: (r) => (r.parenthesis === ")" ? `')' at position ${r.position} closes no '('` : `'(' at position ${r.position} is never closed`),
  policy_expected_term: (r) => `expected ${r.expected}, found ${found(r.found)}`,
  policy_expected_operator: (r) => `expected ${r.expected}, found ${found(r.found)}`,
  policy_unknown_attribute: (r) => `'${r.attribute}' at position ${r.position} is not 'country' or 'region'`,
  policy_unknown_country: (r) => `'${r.code}' at position ${r.position} is not an ISO 3166-1 alpha-2 country code`,
  policy_unknown_region: (r) => `'${r.code}' at position ${r.position} is not a Geo Key Manager region code`,
  policy_too_complex: (r) => (r.limit === "length" ? `longer than ${r.max} characters` : `nesting deeper than ${r.max} at position ${r.position}`),
  invalid_edge_key: (r) => r.problem,
  invalid_edge_labels: (r) => r.problem,
  record_integrity_failed: (r) => `${r.record} ${r.id}`,
  zone_account_moved: (r) => r.account_id,
  key_encryption_key_missing: (r) => r.kek_id,
  key_encryption_mismatch: (r) => r.kek_id,
  hostname_unparseable: (r) => `publicsuffix: cannot derive eTLD+1 for domain "${r.domain}"`,
  origin_unparseable: (r) => `publicsuffix: cannot derive eTLD+1 for domain "${r.domain}"`,
  hostname_setting_invalid: (r) => r.setting,
  hostname_filter_invalid: (r) => r.parameter,
  hostname_not_in_certificate: (r) => r.hostname,
  hostname_certificate_authority_unknown: (r) => JSON.stringify(r.name),
  hostname_certificate_invalid: (r) => r.problem,
  hostname_csr_names_uncovered: (r) => r.names,
  field_out_of_range: (r) => `${r.pointer} must be ${r.range}`,
  alert_type_invalid: (r) => printable(r.alert_type),
  alert_filter_invalid: (r) => r.problem,
  alert_filters_required: (r) => r.filters,
  alert_webhook_test_failed: (r) => r.detail,
  alert_webhook_in_use: (r) => r.detail,
  alert_mechanism_unknown: (r) => r.pointer,
  alert_field_invalid: (r) => r.pointer,
};

/**
 * A refusal on its way to the router's one error reply: thrown only by
 * `refuse` and `unwrap` (src/http/results.ts), caught only by the router.
 */
export class Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.reason);
    this.name = "Refused";
  }
}

/** Informational `messages` entries (success responses), ours: 1460–1469. */
export const MESSAGES = {
  common_name_not_in_sans: {
    code: 1460,
    message:
      "The common name is not among the subject alternative names (SANs); most certificate authorities will require it there. The CSR was created as requested.",
  },
  chain_not_checked: {
    code: 1462,
    message:
      "No chain was sent with the leaf certificate, so no signature on it was checked; edges that serve it send no intermediate certificates. The certificate was stored as requested.",
  },
  policy_matches_no_edge: {
    code: 1461,
    message:
      "No registered edge satisfies the certificate's policy or geo_restrictions: its key will not be delivered until one that does is registered. The certificate was stored as requested.",
  },
} as const;
