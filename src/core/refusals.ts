/**
 * Refusals several concerns share, declared once (each concern's own unions
 * sit beside its code: src/auth/refusals.ts, src/pki/csr-input.ts…).
 */

/** A request body that is not what the route reads: not a JSON object (1400), or a member of the wrong type (1430). */
export type BodyShapeRefusal =
  | { readonly reason: "invalid_json"; readonly pointer?: string }
  | { readonly reason: "invalid_field_type"; readonly pointer: string }
  /** A number of the right type outside its documented range (1421): which field, and what it must be. */
  | { readonly reason: "field_out_of_range"; readonly pointer: string; readonly range: string };

/** A body that is not read: over the limit (413, 1433), not JSON (1400), or too slow to arrive (408, 1438). */
export type BodyRefusal = { readonly reason: "body_too_large" } | { readonly reason: "invalid_json" } | { readonly reason: "body_timeout" };

/** A query parameter that is malformed or not implemented (1435): which one, and what it must be. */
export type InvalidQuery = { readonly reason: "invalid_query"; readonly parameter: string; readonly rule: string };

/** Too many requests of one kind wait already (971, with Retry-After). */
export type RateLimited = { readonly reason: "rate_limited" };

/**
 * A Durable Object asked about a scope it does not hold: a routing bug,
 * answered as an internal failure (both names go to the object's log only).
 */
export type ScopeMismatch = { readonly reason: "scope_mismatch" };

/** A route that does not exist for this kind of scope (7000). */
export type NoRoute = { readonly reason: "no_route" };
