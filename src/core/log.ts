/** Log levels, lowest first; a line is written when its level is at or above the configured one. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;

export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Whether a line at `level` is written under the configured level (the
 * LOG_LEVEL var; `npm start --log-level` sets it). Missing or unknown means
 * `info`, so a deployment without the var logs as it always has. Errors are
 * always written: no setting hides them.
 */
export function logs(configured: string | undefined, level: LogLevel): boolean {
  const floor = (LOG_LEVELS as readonly string[]).indexOf(configured ?? "info");
  return level === "error" || LOG_LEVELS.indexOf(level) >= (floor === -1 ? 1 : floor);
}
