// A sync's plan carried out on OUT: the new files all written or none, the
// files of certificates no longer listed removed, and the state that follows.
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { Planned } from "./collect.ts";
import { UUID } from "./listing.ts";
import { certificateLine, removedLine } from "./output.ts";
import { type FileToWrite, writeAll } from "./staging.ts";
import type { Held, SyncState } from "./state.ts";

/** What applying a plan did. */
export interface Applied {
  certificates: Record<string, Held>;
  /** The tombstones after this run. */
  removed: Record<string, string>;
  written: number;
  removedCount: number;
  /** One line per certificate, then one per removal. */
  lines: string[];
}

/**
 * Writes every planned file (the key 0600, the certificate 0644; all staged
 * before any is renamed into place), then removes the files of certificates
 * this zone's sync held and the listing no longer has, leaving a tombstone
 * with the version each was removed at. Files this sync never wrote are
 * never removed.
 */
export function apply(out: string, planned: readonly Planned[], state: SyncState): Applied {
  const files: FileToWrite[] = planned.flatMap((c) =>
    c.write === null
      ? []
      : [
          { path: join(out, `${c.id}.key`), data: c.write.key, mode: 0o600 },
          { path: join(out, `${c.id}.crt`), data: c.write.crt, mode: 0o644 },
        ],
  );
  writeAll(out, files);

  const certificates: Record<string, Held> = {};
  const lines: string[] = [];
  let written = 0;
  for (const c of planned) {
    if (c.write !== null) written++;
    certificates[c.id] = { modified_on: c.modified_on, crt: c.hashes.crt, key: c.hashes.key };
    lines.push(certificateLine(c.id, c.write !== null, c.hosts, c.expires_on));
  }
  const removed = { ...state.removed };
  let removedCount = 0;
  for (const [id, held] of Object.entries(state.certificates)) {
    if (certificates[id] || !UUID.test(id)) continue;
    rmSync(join(out, `${id}.key`), { force: true });
    rmSync(join(out, `${id}.crt`), { force: true });
    // What it was removed at: it comes back only at a newer modified_on (never by a replay).
    removed[id] = held.modified_on;
    removedCount++;
    lines.push(removedLine(id));
  }
  for (const id of Object.keys(certificates)) delete removed[id];
  return { certificates, removed, written, removedCount, lines };
}
