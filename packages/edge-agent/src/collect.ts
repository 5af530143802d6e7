// Every listed certificate, fetched and verified when it changed: the plan a
// sync writes from, made before any file is touched.
import { join } from "node:path";
import { openBundle } from "./bundle.ts";
import { GONE } from "./codes.ts";
import type { EdgeKey } from "./edge-key.ts";
import { EdgeError } from "./errors.ts";
import { type RequestLimits, getJson } from "./http.ts";
import type { Listed } from "./listing.ts";
import { type TwinKeyType, fileBase } from "./names.ts";
import { printable } from "./output.ts";
import type { ServiceKey } from "./service-key.ts";
import { CLOCK_SKEW_SECONDS, signedResult } from "./signature.ts";
import type { Held, SyncState } from "./state.ts";
import { sha256, sha256File } from "./staging.ts";

/** One certificate as this sync leaves it. */
export interface Planned {
  id: string;
  /** A custom hostname's name; absent for a custom certificate. */
  hostname?: string;
  /** A custom hostname's RSA twin; absent for every other certificate. */
  key_type?: TwinKeyType;
  /** The base name of its files in OUT (names.ts fileBase). */
  base: string;
  hosts: unknown[];
  expires_on: string;
  modified_on: string;
  /** The SHA-256 of its two files as they will be. */
  hashes: { crt: string; key: string };
  /** The files to write; null when those in OUT are these already. */
  write: { crt: string; key: string } | null;
}

/** Where and as whom bundles are fetched and checked. */
export interface Source {
  /** The listing's URL: a bundle is at `${listingUrl}/${id}`. */
  listingUrl: string;
  token: string;
  zone: string;
  edge: string;
  edgeKey: EdgeKey;
  service: ServiceKey;
  out: string;
  /** The clock, in milliseconds since the epoch. */
  now: () => number;
  /** The oldest a signed bundle may be, in seconds (--max-age). */
  maxAge: number;
  limits?: RequestLimits;
}

/** The certificate kept as held, under the name it was written as: what a GONE answer or an unchanged version leaves. */
function kept(item: Listed, held: Held): Planned {
  const name = held.hostname === undefined ? {} : { hostname: held.hostname };
  const twin = held.key_type === undefined ? {} : { key_type: held.key_type };
  return { id: item.id, ...name, ...twin, base: fileBase(item.id, held.hostname, held.key_type), hosts: item.hosts, expires_on: item.expires_on, modified_on: held.modified_on, hashes: { crt: held.crt, key: held.key }, write: null };
}

/** A listed item's id, hostname and files' base name. */
function named(item: Listed): Pick<Planned, "id" | "hostname" | "key_type" | "base"> {
  return { id: item.id, ...(item.hostname === undefined ? {} : { hostname: item.hostname }), ...(item.key_type === undefined ? {} : { key_type: item.key_type }), base: item.base };
}

/**
 * Plans every listed certificate: one held at the listed version, under the
 * same name, whose files are intact is kept without a request; any other is
 * fetched, and its bundle must be signed by the pinned key (at most maxAge seconds ago, and no
 * earlier than the listing, less the clock skew), open and match its
 * certificate, whose leaf has not expired, and be of the listed modified_on.
 * A certificate withdrawn between the listing and the fetch (GONE) is left as
 * held this run: an unsigned refusal removes nothing, the next signed listing
 * without it does. Only content decides a write: a new
 * modified_on with the same files (a policy edit) writes nothing.
 */
export async function collect(listed: readonly Listed[], listingIat: number, state: SyncState, source: Source): Promise<Planned[]> {
  const planned: Planned[] = [];
  for (const item of listed) {
    const { id } = item;
    const crtPath = join(source.out, `${item.base}.crt`);
    const keyPath = join(source.out, `${item.base}.key`);
    const held = state.certificates[id];
    if (held && held.modified_on === item.modified_on && held.hostname === item.hostname && held.key_type === item.key_type && sha256File(crtPath) === held.crt && sha256File(keyPath) === held.key) {
      planned.push(kept(item, held));
      continue;
    }
    const fetched = await getJson(`${source.listingUrl}/${id}`, source.token, source.limits);
    if (!fetched.ok) {
      if (fetched.code !== null && GONE.has(fetched.code)) {
        if (held) planned.push(kept(item, held));
        continue;
      }
      throw new EdgeError(`certificate ${id}: ${fetched.status} ${fetched.code ?? ""} ${fetched.message}`.replace(/\s+/g, " "));
    }
    const now = source.now();
    const bundle = await signedResult(fetched.signed, "bundle", { zone: source.zone, edge: source.edge, service: source.service, now: now / 1000, maxAge: source.maxAge });
    if (bundle.iat < listingIat - CLOCK_SKEW_SECONDS) throw new EdgeError(`certificate ${id}: the bundle was signed long before the listing: refused as a replay`);
    const opened = await openBundle(bundle.result, { zone: source.zone, id, hostname: item.hostname, key_type: item.key_type, edge: source.edge, thumbprint: source.edgeKey.thumbprint, privateKey: source.edgeKey.privateKey, now });
    if (opened.modified_on !== item.modified_on) {
      throw new EdgeError(`certificate ${id}: the bundle is of modified_on ${printable(opened.modified_on)}, the listing of ${printable(item.modified_on)}: refused`);
    }
    const hashes = { crt: sha256(opened.crt), key: sha256(opened.key) };
    const same = sha256File(crtPath) === hashes.crt && sha256File(keyPath) === hashes.key;
    planned.push({ ...named(item), hosts: opened.hosts, expires_on: opened.expires_on, modified_on: opened.modified_on, hashes, write: same ? null : { crt: opened.crt, key: opened.key } });
  }
  return planned;
}
