// The signed listing of what this edge may receive: checked item by item
// before anything is fetched.
import { EdgeError } from "./errors.ts";
import { isRecord } from "./json.ts";
import { printable } from "./output.ts";
import type { SyncState } from "./state.ts";

/** A certificate id: a UUID, so it is safe as a file name. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** One listed certificate. */
export interface Listed {
  id: string;
  hosts: unknown[];
  expires_on: string;
  modified_on: string;
}

/**
 * The listed certificates, after refusing a listing older than the last one
 * accepted (a replay could only take certificates away), an item whose id
 * is not a certificate id, and one whose modified_on is older than the
 * version held or removed (a replayed certificate).
 *
 * A listing of the same iat as the last one accepted is accepted: the service
 * signs in whole seconds, so two genuine listings (a cron run and a manual
 * one, `--watch 1`) can share one, and the same listing replayed is then
 * indistinguishable from a second fetch within that second. What bounds such
 * a replay is the reply's age (signature.ts, --max-age): past it, every run
 * fails instead of reporting the replayed listing as current.
 */
export function readListing(result: unknown, iat: number, state: SyncState): Listed[] {
  if (!Array.isArray(result)) throw new EdgeError("listing failed: the result is not a list");
  // An equal iat is accepted on purpose (see above); only an older one is a replay this check can tell.
  if (iat < state.listed_iat) throw new EdgeError(`the listing is older than the last one accepted (iat ${iat} < ${state.listed_iat}): refused as a replay`);
  return result.map((item: unknown) => {
    const entry = isRecord(item) ? item : {};
    const id = String(entry.id ?? "");
    if (!UUID.test(id)) throw new EdgeError(`listing failed: "${printable(id)}" is not a certificate id`);
    const floor = state.certificates[id]?.modified_on ?? state.removed[id];
    const modifiedOn = entry.modified_on;
    if (typeof modifiedOn !== "string") throw new EdgeError(`certificate ${id}: the listing gives no modified_on`);
    if (floor !== undefined && modifiedOn < floor) {
      throw new EdgeError(`certificate ${id}: the listing offers modified_on ${printable(modifiedOn)}, older than ${floor} already held: refused as a replay`);
    }
    return { id, hosts: Array.isArray(entry.hosts) ? entry.hosts : [], expires_on: String(entry.expires_on), modified_on: modifiedOn };
  });
}
