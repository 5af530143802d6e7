// The command-line surface the operator scripts share: a usage error on
// stderr with exit 2, and strict flag parsing whose errors read as ours.
import { parseArgs } from "node:util";

/** Prints `name: message` and the usage on stderr, then exits 2. */
export function usageError(name, usage, message) {
  process.stderr.write(`${name}: ${message}\n${usage}\n`);
  process.exit(2);
}

/**
 * Parses argv strictly (no positionals) against options, as node:util
 * parseArgs does; an unknown or malformed flag becomes a usage error.
 * onError may answer a parse error first (e.g. a flag that has moved).
 */
export function parseFlags(argv, options, fail, onError = () => {}) {
  try {
    return parseArgs({ args: argv, strict: true, allowPositionals: false, options }).values;
  } catch (error) {
    onError(error);
    return fail(error.message.replace(/\. To specify a positional argument.*$/s, ""));
  }
}
