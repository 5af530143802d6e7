// The agent as a program: a command line in, an exit code out (0 done,
// 1 failed with one line on stderr, 2 a usage error).
import { usageText } from "../../cli/src/flags.ts";
import { INIT_HELP, SYNC_HELP, USAGE, parseInit, parseSync } from "./commands.ts";
import { UsageError, message } from "./errors.ts";
import { runInit } from "./init.ts";
import { type Output, processOutput } from "./output.ts";
import { syncOnce } from "./sync.ts";
import { onSignals, watch } from "./watch.ts";

/**
 * Runs `edge init ...`, `edge sync ...` or `edge --help`, and answers the
 * exit code. A failure is one line on stderr, never a stack, never key
 * material; `--watch` runs until SIGINT or SIGTERM, then answers 0.
 */
export async function run(argv: readonly string[], output: Output = processOutput): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === "init") {
      const init = parseInit(rest);
      if (init === "help") output.out(INIT_HELP);
      else await runInit(init.dir, init.curve, init.force, output);
    } else if (command === "sync") {
      const sync = parseSync(rest);
      if (sync === "help") output.out(SYNC_HELP);
      else if (sync.watch === 0) await syncOnce(sync.options, { output });
      else {
        const stop = onSignals();
        try {
          await watch(() => syncOnce(sync.options, { output }), sync.watch, output, stop.signal);
        } finally {
          stop.dispose();
        }
      }
    } else if (command === "--help" || command === "-h" || command === "help") {
      output.out(USAGE);
    } else {
      throw new UsageError(command === undefined ? "name a command" : `unknown command ${command}`);
    }
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      output.err(usageText("edge", USAGE, error.message));
      return 2;
    }
    output.err(`edge: ${message(error)}`);
    return 1;
  }
}
