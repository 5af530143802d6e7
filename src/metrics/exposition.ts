/**
 * Prometheus's text exposition format (version 0.0.4): lines of `# HELP`,
 * `# TYPE` and samples, built up in order and joined by newlines.
 */
export type Exposition = string[];

/** The media type a scrape is answered with. */
export const EXPOSITION_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A label value escaped as the format wants it: backslash, double quote and newline. */
const escape = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

/** `{a="1",b="2"}` for the labels given (in that order), or nothing for none. */
export function labels(values: Record<string, string>): string {
  const entries = Object.entries(values);
  return entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(",")}}`;
}
