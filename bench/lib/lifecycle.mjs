// Everything a bench run starts (processes, temp dirs) is registered here and
// undone on exit, on error, on Ctrl-C, and when the run overstays its bound.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const cleanups = [];
let cleaning = null;

/** Registers an async undo step; they run last-in, first-out. */
export function onCleanup(fn) {
  cleanups.push(fn);
}

/** A fresh temp dir, removed at cleanup. */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function cleanup() {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const fn = cleanups.pop();
      try {
        await fn();
      } catch (error) {
        console.error("[bench] cleanup step failed:", error.message);
      }
    }
  })();
  return cleaning;
}

/**
 * Ctrl-C and SIGTERM clean up and exit; so does a run that passes
 * `limitMs` (a hung server must not keep the machine busy).
 */
export function guard(limitMs, log) {
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      log(`${signal}: stopping and cleaning up`);
      cleanup().finally(() => process.exit(130));
    });
  }
  const timer = setTimeout(() => {
    log(`the run exceeded ${Math.round(limitMs / 60000)} minutes: stopping and cleaning up`);
    cleanup().finally(() => process.exit(124));
  }, limitMs);
  timer.unref();
}
