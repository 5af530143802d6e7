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

/** Which reply: the listing of what this edge may receive, or one certificate's bundle. */
export type Signed = "list" | "bundle";

/** What a signed reply must name. */
export interface SignedFor {
  zone: string;
  edge: string;
  service: ServiceKey;
  /** Now, in seconds since the epoch. */
  now: number;
}

/** A verified payload's result and when the service signed it. */
export interface SignedResult {
  result: unknown;
  iat: number;
}

/**
 * The signed payload of a reply, after checking its JWS against the pinned
 * service key (EdDSA only), its type, and that it names this kind of reply,
 * this zone and this edge, signed no later than the clock allows. Only the
 * payload is used, never the unsigned copy beside it.
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
  if (typeof payload.iat !== "number" || payload.iat > expected.now + CLOCK_SKEW_SECONDS) throw new EdgeError(`the signed ${what} has no usable iat`);
  return { result: payload.result, iat: payload.iat };
}
