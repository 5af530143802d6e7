// One sync of a zone at a time: a lock file in OUT that names its process.
import { randomBytes } from "node:crypto";
import { linkSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { EdgeError, errorCode } from "./errors.ts";

/** Whether a process with this pid runs (EPERM: it does, as another user). */
export function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === "EPERM";
  }
}

/**
 * Takes the lock at path, so two syncs of the same zone (a cron run and a
 * watcher) never interleave their writes, and answers its release. The lock
 * file appears with its pid already in it (a hard link to a written file),
 * so no one reads it empty; a lock whose process is gone is taken over, after
 * checking it still names that process (another sync may have taken it over
 * meanwhile).
 */
export function lock(path: string, pid: number = process.pid, isRunning: (pid: number) => boolean = running): () => void {
  const mine = `${path}.${pid}-${randomBytes(6).toString("hex")}`;
  writeFileSync(mine, String(pid), { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        linkSync(mine, path);
        return () => rmSync(path, { force: true });
      } catch (error) {
        if (errorCode(error) !== "EEXIST") throw error;
      }
      let held: string;
      try {
        held = readFileSync(path, "utf8");
      } catch {
        continue; // released meanwhile
      }
      const holder = Number(held);
      if (Number.isInteger(holder) && holder > 0 && isRunning(holder)) throw new EdgeError(`another sync of this zone is running (pid ${holder}, lock ${path})`);
      // Stale: removed only if it still names the dead process.
      try {
        if (readFileSync(path, "utf8") === held) rmSync(path, { force: true });
      } catch {
        // released meanwhile
      }
    }
  } finally {
    rmSync(mine, { force: true });
  }
  throw new EdgeError(`cannot take the lock ${path}`);
}
