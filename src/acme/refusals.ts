import type { AcmeSubproblem } from "./problem";

/**
 * What the ACME client refuses with. Every step function returns a
 * `Result<T, AcmeRefusal>` (or a narrower union); nothing is thrown across the
 * API. The CA's own words are kept: a problem document's `type` and `detail`
 * are what the custom hostname API shows in `validation_errors`.
 */

/**
 * The CA answered with an RFC 7807 problem document (RFC 8555 §6.7): its
 * `type` (`urn:ietf:params:acme:error:…`, or `about:blank` when it named
 * none), its `detail`, the HTTP status, its subproblems (§6.7.1), and the
 * reply's `Retry-After` in seconds, when it sent one (rateLimited, §6.6).
 */
export type AcmeProblemRefusal = {
  readonly reason: "acme_problem";
  readonly type: string;
  readonly detail: string;
  readonly status: number;
  readonly subproblems?: readonly AcmeSubproblem[];
  readonly retry_after?: number;
};

/** No reply: the connection failed, or no complete reply came within the timeout. */
export type AcmeUnreachable = { readonly reason: "acme_unreachable"; readonly detail: string };

/**
 * A reply that is not what RFC 8555 says it must be: not JSON, a missing or
 * malformed field, a URL that is not https, a body over the size bound, an
 * error status with no problem document (`status` then says which).
 */
export type AcmeBadResponse = { readonly reason: "acme_bad_response"; readonly detail: string; readonly status?: number };

/** The caller's input cannot be used: a directory URL that is not https, a malformed EAB key, a key that is not P-256. */
export type AcmeBadInput = { readonly reason: "acme_bad_input"; readonly detail: string };

/** The authorization offers no challenge of the wanted type (a wildcard offers only dns-01, RFC 8555 §7.1.3). */
export type AcmeNoChallenge = { readonly reason: "acme_no_challenge"; readonly wanted: string; readonly offered: readonly string[] };

/** What a request to the CA can fail with. */
export type AcmeRequestRefusal = AcmeProblemRefusal | AcmeUnreachable | AcmeBadResponse;

/** Every refusal of the ACME floor, for the one switch that maps them. */
export type AcmeRefusal = AcmeRequestRefusal | AcmeBadInput | AcmeNoChallenge;

const TRANSIENT_PROBLEMS = new Set([
  "urn:ietf:params:acme:error:badNonce",
  "urn:ietf:params:acme:error:rateLimited",
  "urn:ietf:params:acme:error:serverInternal",
]);

/**
 * Whether the same step may succeed if tried again later, unchanged (after
 * `retry_after` seconds when the CA gave it, else the caller's backoff): the
 * CA unreachable, a 5xx or 429 without a problem document, and the problems
 * RFC 8555 §6.7 describes as transient (badNonce once the client's own retry
 * also met one, rateLimited, serverInternal, any 5xx). Everything else (a
 * malformed request, unauthorized, an order not ready, a rejected identifier,
 * a bad reply to a 2xx) needs a change first: a new order, other input, or
 * the caller's attention, so retrying it unchanged only repeats the answer.
 */
export function isRetryable(refusal: AcmeRefusal): boolean {
  switch (refusal.reason) {
    case "acme_unreachable":
      return true;
    case "acme_problem":
      return TRANSIENT_PROBLEMS.has(refusal.type) || refusal.status >= 500;
    case "acme_bad_response":
      return refusal.status !== undefined && (refusal.status >= 500 || refusal.status === 429);
    case "acme_bad_input":
    case "acme_no_challenge":
      return false;
  }
}
