// The service's signature on what it sends: every listing and bundle the
// agent acts on is the payload of a compact JWS under the pinned key.
import { compactVerify } from "jose";
import { EdgeError } from "./errors.ts";
import { isRecord } from "./json.ts";
import type { ServiceKey } from "./service-key.ts";

/** The JWS type of the service's signed replies (src/edges/service-key.ts, DELIVERY_JWS_TYPE). */
export const DELIVERY_JWS_TYPE = "custom-csr-delivery+jws";
/** How far ahead of this host's clock a signed reply's iat may be, in seconds. */
export const CLOCK_SKEW_SECONDS = 300;
/**
 * How old a signed reply may be by default (`--max-age`), in seconds: the
 * service signs each reply as it answers (iat, src/http/delivery-routes.ts),
 * so this only has to cover the trip and this host's clock running ahead.
 */
export const DEFAULT_MAX_AGE_SECONDS = 300;

/** Which reply: the listing of what this edge may receive, or one certificate's bundle. */
export type Signed = "list" | "bundle";

/** What a signed reply must name. */
export interface SignedFor {
  zone: string;
  edge: string;
  service: ServiceKey;
  /** Now, in seconds since the epoch. */
  now: number;
  /** The oldest a reply may be, in seconds (--max-age). */
  maxAge: number;
}

/** A verified payload's result and when the service signed it. */
export interface SignedResult {
  result: unknown;
  iat: number;
}

/**
 * The signed payload of a reply, after checking its JWS against the pinned
 * service key (EdDSA only), its type, and that it names this kind of reply,
 * this zone and this edge, signed no later than the clock allows (up to
 * CLOCK_SKEW_SECONDS ahead) and no earlier than maxAge seconds ago. The lower
 * bound is what stops a replay: a reply the service signed once (its
 * signature never expires) is otherwise good forever, to a proxy that keeps
 * answering it or to an edge whose state was wiped. Only the payload is used,
 * never the unsigned copy beside it.
 */
export async function signedResult(signed: string | null, what: Signed, expected: SignedFor): Promise<SignedResult> {
  if (signed === null) throw new EdgeError(`the ${what} is not signed: not a reply of the service this edge pinned (or a service too old to sign)`);
  let verified;
  try {
    verified = await compactVerify(signed, expected.service.key, { algorithms: ["EdDSA"] });
  } catch {
    throw new EdgeError(`the ${what}'s signature does not verify with the pinned service key: refused, nothing written`);
  }
  if (verified.protectedHeader.typ !== DELIVERY_JWS_TYPE) throw new EdgeError(`the ${what}'s signature is of another type: refused`);
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(verified.payload).toString("utf8"));
  } catch {
    throw new EdgeError(`the ${what}'s signed payload is not JSON`);
  }
  if (!isRecord(payload) || payload.typ !== `custom-csr-delivery/${what}` || payload.zone_id !== expected.zone || payload.edge_id !== expected.edge) {
    throw new EdgeError(`the signed ${what} is for another zone, edge or purpose: refused`);
  }
  const { iat } = payload;
  if (typeof iat !== "number" || !Number.isSafeInteger(iat) || iat > expected.now + CLOCK_SKEW_SECONDS) throw new EdgeError(`the signed ${what} has no usable iat`);
  // Whole seconds on both sides, as the service counts them: a reply signed this second is 0 s old.
  const age = Math.floor(expected.now) - iat;
  if (age > expected.maxAge) {
    throw new EdgeError(
      `the signed ${what} was signed ${age} s ago, more than --max-age ${expected.maxAge} s: refused as stale (a replayed reply, or this host's clock is ahead of the service's)`,
    );
  }
  return { result: payload.result, iat };
}
