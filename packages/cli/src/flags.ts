// The command-line surface the project's programs share: the operator
// scripts (scripts/cli.mjs re-exports this module) and the edge agent
// (packages/edge-agent bundles it). Strict parsing by node:util parseArgs,
// whose errors are reworded as ours, and a usage error on stderr with exit 2.
// Plain Node only, erasable TypeScript only: scripts/cli.mjs imports this
// file as it is (Node 22's type stripping).
import { parseArgs } from "node:util";

/** One flag: `--name VALUE` (string) or `--name` (boolean), as node:util parseArgs describes it. */
export interface FlagOption {
  readonly type: "string" | "boolean";
  /** A one-letter alias, `-h` for `--help`. */
  readonly short?: string;
  /** Given more than once, the values are collected; otherwise a second one is refused. */
  readonly multiple?: boolean;
}

/** The flags a command takes, by long name. */
export type FlagOptions = Readonly<Record<string, FlagOption>>;

type FlagValue<F extends FlagOption> = F["type"] extends "string" ? string : boolean;

/** What was given, by long name: absent flags are undefined. */
export type FlagValues<O extends FlagOptions> = {
  -readonly [K in keyof O]?: O[K]["multiple"] extends true ? Array<FlagValue<O[K]>> : FlagValue<O[K]>;
};

/** What a usage error prints: `name: message`, then the usage. */
export function usageText(name: string, usage: string, message: string): string {
  return `${name}: ${message}\n${usage}`;
}

/** Prints `name: message` and the usage on stderr, then exits 2. */
export function usageError(name: string, usage: string, message: string): never {
  process.stderr.write(`${usageText(name, usage, message)}\n`);
  process.exit(2);
}

/**
 * Parses argv strictly against options: no positionals, no unknown flag, a
 * string flag needs its value (one that looks like a flag is refused as
 * ambiguous; `--name=-value` passes it), and a flag given twice is refused
 * unless it is `multiple` (the last one would otherwise win unseen). Any of
 * these calls `fail` with one line; `onError` sees a parse error first (for
 * instance to name a flag that has moved).
 */
export function parseFlags<const O extends FlagOptions>(
  argv: readonly string[],
  options: O,
  fail: (message: string) => never,
  onError: (error: Error) => void = () => {},
): FlagValues<O> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options }, strict: true, allowPositionals: false, tokens: true });
  } catch (error) {
    const failure = error instanceof Error ? error : new Error(String(error));
    onError(failure);
    return fail(failure.message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== "option") continue;
    if (seen.has(token.name) && options[token.name]?.multiple !== true) return fail(`${token.rawName} given twice`);
    seen.add(token.name);
  }
  // parseArgs in strict mode gives exactly the declared names with their declared types.
  return parsed.values as FlagValues<O>;
}
