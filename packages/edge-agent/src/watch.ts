// `edge sync --watch SECONDS`: a sync every interval until SIGINT or SIGTERM.
import type { Output } from "./output.ts";
import { message } from "./errors.ts";

/**
 * Runs `run` now and then every `seconds` until `stop` aborts (a run in
 * progress finishes first). A failed run is reported on stderr and tried
 * again at the next tick.
 */
export async function watch(run: () => Promise<unknown>, seconds: number, output: Output, stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    try {
      await run();
    } catch (error) {
      output.err(`edge: sync failed: ${message(error)}; next try in ${seconds} s`);
    }
    if (stop.aborted) break;
    await new Promise<void>((done) => {
      const wake = () => {
        clearTimeout(timer);
        done();
      };
      const timer = setTimeout(() => {
        stop.removeEventListener("abort", wake);
        done();
      }, seconds * 1000);
      stop.addEventListener("abort", wake, { once: true });
    });
  }
}

/** An AbortSignal that aborts on the first of these signals; dispose() stops listening. */
export function onSignals(signals: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM"]): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  for (const name of signals) process.on(name, abort);
  return { signal: controller.signal, dispose: () => signals.forEach((name) => process.off(name, abort)) };
}
