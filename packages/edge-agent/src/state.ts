// What a zone's sync remembers between runs, in OUT/.edge-sync-<zone>.json:
// the files it wrote (by certificate id, with their hashes and, for a custom
// hostname, its name), what it removed and at which version, the last
// listing it accepted, the nginx include it renders, and a reload it owes.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { EdgeError } from "./errors.ts";
import { isRecord, isStringRecord } from "./json.ts";
import { type TwinKeyType, isHostname } from "./names.ts";
import { writeAtomic } from "./staging.ts";

/** One certificate this sync wrote: its version, the SHA-256 of each file, and a custom hostname's name. */
export interface Held {
  modified_on: string;
  crt: string;
  key: string;
  /** A custom hostname's name: its files are `<hostname>.crt|.key` (names.ts fileBase); absent, `<id>.crt|.key`. */
  hostname?: string;
  /** A custom hostname's RSA twin: its files are `<hostname>.rsa.crt|.key`. */
  key_type?: TwinKeyType;
}

/** A zone's sync state. */
export interface SyncState {
  /** The iat of the last signed listing accepted: an older one is a replay. */
  listed_iat: number;
  certificates: Record<string, Held>;
  /** Tombstones: what a certificate was removed at; it comes back only at a newer modified_on. */
  removed: Record<string, string>;
  /** A reload failed and is owed, though the next runs may find the files unchanged. */
  reload_pending: boolean;
  /** The nginx include file this zone's sync last rendered (--nginx-include), emptied when it stops being given. */
  nginx_include: string | null;
}

/** The state of a zone that never synced. */
export const EMPTY_STATE: SyncState = { listed_iat: 0, certificates: {}, removed: {}, reload_pending: false, nginx_include: null };

/** Where a zone's state lives: several zones (one sync each) can share one OUT. */
export function statePath(out: string, zone: string): string {
  return join(out, `.edge-sync-${zone}.json`);
}

/** Where a zone's lock lives. */
export function lockPath(out: string, zone: string): string {
  return join(out, `.edge-sync-${zone}.lock`);
}

/** Reads a zone's state; none yet is the empty state, one that is not ours is refused. */
export function readState(path: string): SyncState {
  if (!existsSync(path)) return { ...EMPTY_STATE, certificates: {}, removed: {} };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch {
    throw new EdgeError(`${path} is not JSON: remove it to start over`);
  }
  if (!isRecord(parsed)) throw new EdgeError(`${path} is not an edge sync state: remove it to start over`);
  const { certificates, removed = {}, listed_iat: listedIat = 0, reload_pending: pending = false, nginx_include: include = null } = parsed;
  if (!isHeldRecord(certificates) || !isStringRecord(removed) || typeof listedIat !== "number" || typeof pending !== "boolean" || (include !== null && typeof include !== "string")) {
    throw new EdgeError(`${path} is not an edge sync state: remove it to start over`);
  }
  return { listed_iat: listedIat, certificates, removed, reload_pending: pending, nginx_include: include };
}

// A held custom hostname's name becomes a path again at its removal: it is checked as when it was listed.
function isHeldRecord(value: unknown): value is Record<string, Held> {
  return (
    isRecord(value) &&
    Object.values(value).every(
      (c) =>
        isStringRecord(c) &&
        typeof c.modified_on === "string" &&
        typeof c.crt === "string" &&
        typeof c.key === "string" &&
        (c.hostname === undefined || isHostname(c.hostname)) &&
        (c.key_type === undefined || (c.key_type === "rsa2048" && c.hostname !== undefined)),
    )
  );
}

/** Writes a zone's state atomically, mode 0600, naming the zone and edge it is of. */
export function writeState(path: string, who: { zone: string; edge: string }, state: SyncState): void {
  const { listed_iat, certificates, removed, reload_pending, nginx_include } = state;
  writeAtomic(path, `${JSON.stringify({ zone: who.zone, edge: who.edge, listed_iat, certificates, removed, reload_pending, nginx_include }, null, 2)}\n`, 0o600);
}
