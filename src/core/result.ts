/**
 * What a fallible operation returns. Thrown errors do not cross RPC intact
 * (only a name and a message survive), tagged results do: every Durable
 * Object method and every parser returns one.
 *
 * A refusal is a plain object with a `reason` (a domain word) and the data
 * that explains it (a limit, a position, an id). Each concern declares its
 * own union of refusals next to the code that refuses (src/auth/refusals.ts,
 * src/pki/refusals.ts, src/tenant/refusals.ts…), so a method's type says what
 * it can refuse; only the HTTP layer (src/http/errors.ts) turns a refusal
 * into a status, a code and a message, in one exhaustive table.
 */
export interface Refused {
  readonly reason: string;
  /** For a refusal of one member of a request body: where it is (RFC 6901). */
  readonly pointer?: string;
}

export type Ok<T> = { readonly ok: true; readonly value: T };
export type Failed<E extends Refused> = { readonly ok: false } & E;
export type Result<T, E extends Refused> = Ok<T> | Failed<E>;

export const ok = <T>(value: T): Ok<T> => ({ ok: true, value });

/** A failed Result carrying `refusal` (its literal types kept, so unions check). */
export const fail = <const E extends Refused>(refusal: E): Failed<E> => ({ ok: false, ...refusal });

/** The refusals a function returning `Result<_, E>` (or a Promise of one) can give. */
export type RefusalOf<R> = Awaited<R> extends Failed<infer E> | Ok<unknown> ? E : never;
