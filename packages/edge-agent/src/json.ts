// Narrowing what a server or a file said: nothing it sends is trusted by type.

/** A JSON object (not null, not an array), narrowed from unknown. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON object of strings only, narrowed from unknown. */
export function isStringRecord(value: unknown): value is Record<string, string> {
  return isRecord(value) && Object.values(value).every((v) => typeof v === "string");
}
