// The renewals scenario's section of bench/RESULTS.md, and bench/out/renewals.{json,md}.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RenewalsReport, SetupReport, Spread } from "../scenarios/renewals.ts";
import type { Machine } from "./machine.ts";
import { machineLine } from "./outputs.ts";
import { ROOT } from "./scripts.ts";
import { section, withSection } from "./sections.ts";

const int = (n: number) => Math.round(n).toLocaleString("en-US");
const sec = (ms: number | null) => (ms === null ? "–" : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`);
const pair = (s: Spread) => `${sec(s.p50)} / ${sec(s.p99)}`;
const counts = (c: Record<string, number>) =>
  Object.entries(c)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([k, v]) => `${v} × ${k}`)
    .join("; ");

function label(r: SetupReport): string {
  const s = r.setup;
  return `${int(s.hostnames)} hostnames, ${s.zones} zone${s.zones === 1 ? "" : "s"}, ${s.windowS} s window`;
}

/** One line per setup on what bounded it, from its own figures. */
function reading(r: SetupReport): string {
  const w = r.window;
  const again = r.deadlocks ? ` (pebble deadlocked in ${r.deadlocks} earlier attempt${r.deadlocks === 1 ? "" : "s"}: run again from scratch)` : "";
  const head = `**${label(r)}**${again}: ${int(w.perMinute)} renewals a minute`;
  if (r.pebbleStuck > 0 || (w.renewals === 0 && Object.keys(w.errors).length > 0)) {
    return `${head}: **not a figure of the server**: pebble deadlocked (${r.pebbleStuck} of its requests never finished; the server's orders timed out: ${counts(w.errors) || "–"}). Logs: ${r.logs ?? "–"}.`;
  }
  const serialMs = w.perMinute > 0 ? (60_000 * r.setup.zones) / w.perMinute : null;
  const parts = [
    `server ${r.cpu.server.toFixed(2)} cores (${r.cpu.serverMsPerRenewal?.toFixed(1) ?? "–"} ms CPU a renewal), pebble ${r.cpu.pebble.toFixed(2)}, harness ${r.cpu.harness.toFixed(2)}, the whole machine ${r.cpu.machine.toFixed(2)} of its cores`,
    `due renewals waited ${pair(w.queued)} (p50 / p99) for their zone's alarm`,
    serialMs === null ? "" : `each zone completed a renewal every ${int(serialMs)} ms on average`,
  ].filter(Boolean);
  // Renewals ordered as soon as due: no backlog, so the count is the schedule's (hostnames / cycle), not a ceiling.
  const unsaturated = (w.queued.p50 ?? 0) < 500 ? " Due renewals were ordered at once (no backlog): this is what the schedule asked for, not a ceiling." : "";
  const trouble = [
    Object.keys(w.failures).length ? `failed steps: ${counts(w.failures)}` : "",
    Object.keys(w.notActive).length ? `not active at the end: ${counts(w.notActive)}` : "",
    Object.keys(w.serverErrors).length ? `server errors: ${counts(w.serverErrors)}` : "",
  ].filter(Boolean);
  return `${head}; ${parts.join("; ")}.${unsaturated}${trouble.length ? ` ${trouble.join(". ")}. Logs: ${r.logs ?? "–"}.` : ""}`;
}

/** The section's markdown (without its markers). */
export function renewalsMarkdown(report: RenewalsReport, { command, date, machine }: { command: string; date: string; machine: Machine }): string {
  const head = `## Managed-certificate renewals\n\nCommand: \`${command}\` (bench/scenarios/renewals.ts; bench/README.md says what it does).\n\nMachine: ${machineLine(machine)}.\n\nDate: ${date}.\n\n`;
  if ("skipped" in report) return `${head}${report.skipped}\n`;
  const code = `The server: \`npm start\` from ${report.source}.\n\n`;
  const first = report.setups[0];
  const rows = report.setups.map((r) => {
    const w = r.window;
    return `| ${label(r)} | ${r.idleMs.length ? r.idleMs.map((ms) => int(ms)).join(", ") + " ms" : "–"} | ${pair(r.burst)}${r.burst.notActive ? ` (${r.burst.notActive} never active)` : ""} | **${int(w.perMinute)}** | ${pair(w.queued)} | ${pair(w.atCa)} | ${r.cpu.server.toFixed(2)} | ${r.cpu.serverMsPerRenewal?.toFixed(1) ?? "–"} | ${r.cpu.pebble.toFixed(2)} | ${r.cpu.machine.toFixed(2)} | ${Object.values(w.failures).reduce((a, b) => a + b, 0)} / ${Object.values(w.notActive).reduce((a, b) => a + b, 0)} |`;
  });
  const best = Math.max(...report.setups.filter((r) => r.pebbleStuck === 0).map((r) => r.window.perMinute), 0);
  return (
    head +
    code +
    `Each setup: its own pebble 2.4 (Debian; certificates valid ${first?.setup.lifetimeS ?? "?"} s, validation sleeps off, no authorization reused) and its own \`npm start --ca-file … --allow-private-outbound\` ` +
    `(fresh data directory, RENEW_BEFORE=${first?.setup.renewBefore ?? "?"}: a certificate is due about a second after it is issued, so due renewals always wait and the count is what the server sustains). ` +
    `Hostnames are created with \`ssl: {method: "http", type: "dv"}\` and validated over http-01 through the harness's port-80 proxy. ` +
    `"alone": one hostname at a time in an idle server (the first pays the zone's ACME account); "burst": all hostnames created at once, each zone listed every 250 ms. ` +
    `Renewals are counted from the zones' audit trails (an \`update\` of \`custom_hostname_certificate\` with \`renewed: true\`); "due → ordered" is from the certificate's \`renew_at\` to the renewal's \`order\` entry, "ordered → installed" from there to the \`update\`.\n\n` +
    `| setup | create → active, alone | burst: create → active p50 / p99 | renewals a minute | due → ordered p50 / p99 | ordered → installed p50 / p99 | server cores | server CPU ms a renewal | pebble cores | machine cores | failed steps / not active |\n` +
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n` +
    `${rows.join("\n")}\n\n` +
    report.setups.map((r) => `- ${reading(r)} Certificates installed per 10 s from the burst: ${r.timeline.join(", ")}.`).join("\n") +
    `\n- At 90-day certificates renewed with 30 days left (every 60 days), ${int(best)} renewals a minute keep ${int(best * 86_400)} hostnames renewed.\n` +
    `- The machine has ${machine.nproc} cores shared with pebble, the harness and whatever else runs; "machine cores" counts every process, so figures move between runs when others are busy.\n`
  );
}

/** bench/out/renewals.{json,md}; with `committed`, the section of bench/RESULTS.md too (the rest of the file kept). */
export function writeRenewals(report: RenewalsReport, md: string, { committed }: { committed: boolean }): void {
  const out = join(ROOT, "bench/out");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "renewals.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, "renewals.md"), md);
  if (!committed) return;
  const file = join(ROOT, "bench/RESULTS.md");
  writeFileSync(file, withSection(existsSync(file) ? readFileSync(file, "utf8") : "# Benchmark: latest results\n", "renewals", section("renewals", md)));
}
