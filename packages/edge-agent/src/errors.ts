// How the agent fails: one line on stderr, never a stack, never key material.

/** A failure to report on one line and exit 1 for; its message says what to do. */
export class EdgeError extends Error {
  override name = "EdgeError";
}

/** A command line that cannot run: reported with the usage, exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * One line for any failure: ours say what to do; a system error (a disk
 * full, a permission) keeps its own message.
 */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The errno code of a system error (EEXIST, EPERM...), or undefined. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  return typeof error.code === "string" ? error.code : undefined;
}
