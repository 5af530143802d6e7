// Everything a bench run starts (processes, temp dirs) is registered here and
// undone on exit, on error, on Ctrl-C, and when the run overstays its bound.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The harness's progress lines, on stderr. */
export type Log = (...args: unknown[]) => void;

type Undo = () => unknown;

const cleanups: Undo[] = [];
let cleaning: Promise<void> | null = null;

/** Registers an undo step (sync or async); they run last-in, first-out. */
export function onCleanup(fn: Undo): void {
  cleanups.push(fn);
}

/** A fresh temp dir, removed at cleanup. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onCleanup(async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs every undo step once, even when called again meanwhile. */
export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (let fn = cleanups.pop(); fn; fn = cleanups.pop()) {
      try {
        await fn();
      } catch (error) {
        console.error("[bench] cleanup step failed:", errorMessage(error));
      }
    }
  })();
  return cleaning;
}

/** What a caught value says, whatever was thrown. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Ctrl-C and SIGTERM clean up and exit; so does a run that passes
 * `limitMs` (a hung server must not keep the machine busy).
 */
export function guard(limitMs: number, log: Log): void {
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      log(`${signal}: stopping and cleaning up`);
      void cleanup().finally(() => process.exit(130));
    });
  }
  const timer = setTimeout(() => {
    log(`the run exceeded ${Math.round(limitMs / 60000)} minutes: stopping and cleaning up`);
    void cleanup().finally(() => process.exit(124));
  }, limitMs);
  timer.unref();
}

/**
 * Runs an entry point's main(): an error is printed and sets exit code 1;
 * everything the run started is removed either way.
 */
export function runMain(main: () => Promise<void>): void {
  main()
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    })
    .finally(cleanup);
}
