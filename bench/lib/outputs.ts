// Where a run's report goes: bench/out/ every time (results.json,
// results.md, list-latency.svg); bench/RESULTS.md and bench/list-latency.svg,
// the committed latest full run, unless --quick. Nothing outside bench/.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Machine } from "./machine.ts";
import { listChart, markdown } from "./report.ts";
import type { ListPoint, Row, Seeding, Startup, Storage, Target } from "./results.ts";
import { ROOT } from "./scripts.ts";
import { sectionsOf, withSection } from "./sections.ts";

/** The machine as RESULTS.md states it. */
export function machineLine(machine: Machine): string {
  return `${machine.nproc} CPUs (nproc), ${machine.cpu}, ${machine.memoryGiB} GiB RAM, Linux ${machine.kernel}; ${machine.workerd} (wrangler ${machine.wrangler}); Node ${machine.node}`;
}

export interface RunReport {
  date: string;
  command: string;
  machine: Machine;
  rows: Row[];
  targets: Target[];
  startup: Startup[];
  storage: Storage[];
  seeding: Seeding[];
  listPoints: ListPoint[];
  notes: string[];
  /** Sections measured by this run (lib/sections.ts), by name: they replace the file's; the file's others are kept. */
  sections?: Record<string, string>;
}

/** Writes the report; returns its markdown (the heading line included). */
export function writeOutputs(report: RunReport, { committed }: { committed: boolean }): string {
  const { date, command, machine, rows, targets, startup, storage, seeding, listPoints, notes } = report;
  const out = join(ROOT, "bench/out");
  const sections = Object.values(report.sections ?? {});
  const md = markdown({ machine, command, date, rows, targets, startup, storage, seeding, notes }) + sections.map((block) => `\n${block}`).join("");
  const chart = listChart(listPoints);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "results.json"), `${JSON.stringify({ date, command, machine, rows, targets, startup, storage, seeding, listPoints, notes }, null, 2)}\n`);
  writeFileSync(join(out, "results.md"), md);
  writeFileSync(join(out, "list-latency.svg"), chart);
  if (committed) {
    const body = markdown({ rows, targets, startup, storage, seeding, notes });
    writeFileSync(join(ROOT, "bench/list-latency.svg"), chart);
    const file = join(ROOT, "bench/RESULTS.md");
    const kept = sectionsOf(file);
    for (const [name, block] of Object.entries(report.sections ?? {})) kept.set(name, block);
    let text =
      `# Benchmark: latest results\n\nCommand: \`${command}\` (the harness is bench/run.ts; profiling: \`npm run bench:profile\`, see bench/PROFILE.md).\n\n` +
      `Machine: ${machineLine(machine)}.\n\nDate: ${date}.\n\n${body}\n![list latency against scope size](list-latency.svg)\n`;
    for (const [name, block] of kept) text = withSection(text, name, block);
    writeFileSync(file, text);
  }
  return md;
}
