// A sync's plan carried out on OUT: the new files all written or none, the
// server configuration that names them written after them, the files of
// certificates no longer listed removed last, and the state that follows.
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Planned } from "./collect.ts";
import { UUID, fileBase } from "./names.ts";
import { certificateLine, removedLine } from "./output.ts";
import { type FileToWrite, sha256File, writeAll } from "./staging.ts";
import type { Held, SyncState } from "./state.ts";

/** What applying a plan did. */
export interface Applied {
  certificates: Record<string, Held>;
  /** The tombstones after this run. */
  removed: Record<string, string>;
  written: number;
  removedCount: number;
  /** The configuration files (nginx includes) whose content changed and were written. */
  configs: string[];
  /** One line per certificate, then one per removal. */
  lines: string[];
}

/** The content of a file, or null when there is none to read. */
function current(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}

/** Removes a file only while it is what this sync wrote (another zone's sync may have written that name since). */
function removeOurs(path: string, sha256: string): void {
  if (sha256File(path) === sha256) rmSync(path, { force: true });
}

/**
 * Carries out a plan in the order that keeps a TLS server's configuration
 * loadable at every moment:
 *
 * 1. every planned pair is written (the key 0600, the certificate 0644) and
 *    every configuration file whose content changed (an nginx include naming
 *    the pairs), all staged in full before any is renamed into place, the
 *    pairs renamed first: the configuration never names a pair before it
 *    exists;
 * 2. only then are the files of certificates this zone's sync held and the
 *    listing no longer has (or that now go by another name) removed, each
 *    only while it is still what this sync wrote: the configuration no longer
 *    names them. A tombstone keeps the version each was removed at.
 *
 * Files this sync never wrote are never removed.
 */
export function apply(out: string, planned: readonly Planned[], state: SyncState, configs: readonly FileToWrite[] = []): Applied {
  const pairs: FileToWrite[] = planned.flatMap((c) =>
    c.write === null
      ? []
      : [
          { path: join(out, `${c.base}.key`), data: c.write.key, mode: 0o600 },
          { path: join(out, `${c.base}.crt`), data: c.write.crt, mode: 0o644 },
        ],
  );
  const changed = configs.filter((file) => current(file.path) !== file.data);
  // writeAll renames in order: the pairs, then the configuration that names them.
  writeAll(out, [...pairs, ...changed]);

  const certificates: Record<string, Held> = {};
  const bases = new Map<string, string>();
  const lines: string[] = [];
  let written = 0;
  for (const c of planned) {
    if (c.write !== null) written++;
    certificates[c.id] = {
      modified_on: c.modified_on,
      crt: c.hashes.crt,
      key: c.hashes.key,
      ...(c.hostname === undefined ? {} : { hostname: c.hostname }),
      ...(c.key_type === undefined ? {} : { key_type: c.key_type }),
    };
    bases.set(c.id, c.base);
    lines.push(certificateLine(c.id, c.write !== null, c.hosts, c.expires_on, c.hostname, c.key_type));
  }
  const removed = { ...state.removed };
  let removedCount = 0;
  for (const [id, held] of Object.entries(state.certificates)) {
    if (!UUID.test(id)) continue;
    const base = fileBase(id, held.hostname, held.key_type);
    if (bases.get(id) === base) continue;
    removeOurs(join(out, `${base}.key`), held.key);
    removeOurs(join(out, `${base}.crt`), held.crt);
    // Renamed (a hostname it no longer has): its old files go, the certificate stays.
    if (certificates[id]) continue;
    // What it was removed at: it comes back only at a newer modified_on (never by a replay).
    removed[id] = held.modified_on;
    removedCount++;
    lines.push(removedLine(id, held.hostname));
  }
  for (const id of Object.keys(certificates)) delete removed[id];
  return { certificates, removed, written, removedCount, configs: changed.map((file) => file.path), lines };
}
