// Sections of bench/RESULTS.md that a scenario run alone writes (between
// markers), so that `npm run bench -- renewals` replaces only its own, and a
// full run, which rewrites the file, keeps the sections it did not measure.
import { existsSync, readFileSync } from "node:fs";

const start = (name: string) => `<!-- section:${name} -->`;
const end = (name: string) => `<!-- /section:${name} -->`;

/** `markdown` wrapped in the markers of section `name`. */
export function section(name: string, markdown: string): string {
  return `${start(name)}\n${markdown.trim()}\n${end(name)}\n`;
}

/** The sections of a file (each with its markers), by name; none when the file does not exist. */
export function sectionsOf(file: string): Map<string, string> {
  const found = new Map<string, string>();
  if (!existsSync(file)) return found;
  const text = readFileSync(file, "utf8");
  for (const match of text.matchAll(/<!-- section:([a-z0-9-]+) -->[\s\S]*?<!-- \/section:\1 -->\n?/g)) found.set(match[1]!, match[0]);
  return found;
}

/** `text` with section `name` replaced by `block` (from section()), or `block` appended. */
export function withSection(text: string, name: string, block: string): string {
  const pattern = new RegExp(`${start(name)}[\\s\\S]*?${end(name)}\\n?`);
  return pattern.test(text) ? text.replace(pattern, () => block) : `${text.trimEnd()}\n\n${block}`;
}
