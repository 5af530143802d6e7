// The signed listing of what this edge may receive: checked item by item
// before anything is fetched.
import { EdgeError } from "./errors.ts";
import { isRecord } from "./json.ts";
import { type TwinKeyType, UUID, checkedHostname, checkedKeyType, fileBase } from "./names.ts";
import { printable } from "./output.ts";
import type { SyncState } from "./state.ts";

/** One listed certificate: a custom certificate, or a custom hostname's (with its `hostname`). */
export interface Listed {
  id: string;
  /** A custom hostname's name (checked, names.ts); absent for a custom certificate. */
  hostname?: string;
  /** A custom hostname's RSA twin (dual certificates); absent for every other certificate. */
  key_type?: TwinKeyType;
  /** The base name of its files in OUT: the id, or the hostname (names.ts fileBase). */
  base: string;
  hosts: unknown[];
  expires_on: string;
  modified_on: string;
}

/**
 * The listed certificates, after refusing a listing older than the last one
 * accepted (a replay could only take certificates away), an item whose id
 * is not a certificate id, a custom hostname whose name is not a DNS name
 * (names.ts), two items whose files would have one name, and one whose
 * modified_on is older than the version held or removed (a replayed
 * certificate).
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
  const bases = new Map<string, string>();
  return result.map((item: unknown) => {
    const entry = isRecord(item) ? item : {};
    const id = String(entry.id ?? "");
    if (!UUID.test(id)) throw new EdgeError(`listing failed: "${printable(id)}" is not a certificate id`);
    const hostname = entry.hostname === undefined ? undefined : checkedHostname(id, entry.hostname);
    const keyType = checkedKeyType(id, hostname, entry.key_type);
    const base = fileBase(id, hostname, keyType);
    const other = bases.get(base);
    // `*.example.com` and `_wildcard.example.com`, or a hostname spelling a certificate id: one file, two owners.
    if (other !== undefined) throw new EdgeError(`listing failed: ${other} and ${id} would both be written as ${base}.crt: refused`);
    bases.set(base, id);
    const floor = state.certificates[id]?.modified_on ?? state.removed[id];
    const modifiedOn = entry.modified_on;
    if (typeof modifiedOn !== "string") throw new EdgeError(`certificate ${id}: the listing gives no modified_on`);
    if (floor !== undefined && modifiedOn < floor) {
      throw new EdgeError(`certificate ${id}: the listing offers modified_on ${printable(modifiedOn)}, older than ${floor} already held: refused as a replay`);
    }
    return {
      id,
      ...(hostname === undefined ? {} : { hostname }),
      ...(keyType === undefined ? {} : { key_type: keyType }),
      base,
      hosts: Array.isArray(entry.hosts) ? entry.hosts : [],
      expires_on: String(entry.expires_on),
      modified_on: modifiedOn,
    };
  });
}
