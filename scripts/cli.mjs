// The command-line surface the operator scripts share: a usage error on
// stderr with exit 2, and strict flag parsing whose errors read as ours.
// One parser for every program of the project: packages/cli/src/flags.ts,
// which the edge agent bundles too (imported here as TypeScript: the
// project's Node 22 strips the types).
export { parseFlags, usageError } from "../packages/cli/src/flags.ts";
