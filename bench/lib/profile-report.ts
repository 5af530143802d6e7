// bench:profile's report (bench/out/profile.{md,json}): slices, one
// create's commit under strace, and where each endpoint's CPU goes.
import type { Machine } from "./machine.ts";
import type { PerfProfile } from "./perf.ts";
import type { SliceTiming } from "./slices.ts";
import type { V8Profile } from "./v8-profile.ts";

/** One endpoint under load, and its profile (perf's or V8's). */
export type EndpointProfile = { name: string; rps: number; cpuUsPerRequest: number | null; cores: number | null } & (PerfProfile | V8Profile);

/** WAL writes and fsyncs per committed create of one table layout. */
export interface CommitCount {
  step: string;
  pwrite64: number;
  fsync: number;
  bytesPerRow: number;
  rowsWritten: number;
}

export interface ProfileReport {
  machine: Machine;
  date: string;
  slices: Array<SliceTiming & { where: string }>;
  commits: CommitCount[];
  profiles: EndpointProfile[];
}

export function profileMarkdown(report: ProfileReport): string {
  const lines = [`# Profile, ${report.date.slice(0, 16).replace("T", " ")} UTC`, "", `Machine: ${report.machine.summary}.`, ""];
  if (report.slices.length) {
    lines.push(
      "## Slices (µs per operation, inside workerd)",
      "",
      "Each step runs n times in a loop in the slice Worker (`worker`) or in a probe Durable Object (`object`); wall is the loop's own clock, CPU is the workerd process's user+system time over the loop (it includes V8's GC helper threads, so it can exceed wall).",
      "",
      "| where | step | wall µs | CPU µs | n | note |",
      "|---|---|---:|---:|---:|---|",
      ...report.slices.map((s) => `| ${s.where} | ${s.step} | ${s.us.toFixed(1)} | ${s.cpuUs === null ? "–" : s.cpuUs.toFixed(0)} | ${s.n} | ${s.bytesPerRow ? `${s.bytesPerRow.toFixed(0)} B and ${s.rowsWritten} rows written per create` : ""} |`),
      "",
    );
  }
  if (report.commits.length) {
    lines.push(
      "## One create's commit (strace)",
      "",
      "The SQL of one createCsr in its own transaction, 300 times over RPC, with strace counting workerd's syscalls. SQLite writes each WAL frame as two pwrite64 calls (header, then the 4 KiB page).",
      "",
      "| layout | pwrite64 per create | ≈ WAL pages per create | fsync per create | rows written per create | database bytes per create |",
      "|---|---:|---:|---:|---:|---:|",
      ...report.commits.map((c) => `| ${c.step.replace("rpc create-like write, ", "")} | ${c.pwrite64.toFixed(1)} | ${(c.pwrite64 / 2).toFixed(1)} | ${c.fsync.toFixed(2)} | ${c.rowsWritten} | ${c.bytesPerRow.toFixed(0)} |`),
      "",
    );
  }
  for (const p of report.profiles) {
    lines.push(`## ${p.name}: ${p.rps.toFixed(0)} req/s at 8 connections, ${p.cpuUsPerRequest?.toFixed(0) ?? "–"} µs of workerd CPU per request`, "");
    if ("categories" in p) {
      lines.push("| where the CPU goes | share | µs per request | of which in the kernel |", "|---|---:|---:|---:|");
      for (const c of p.categories) {
        lines.push(`| ${c.name} | ${(100 * c.share).toFixed(1)}% | ${p.cpuUsPerRequest ? (c.share * p.cpuUsPerRequest).toFixed(0) : "–"} | ${(100 * c.kernel).toFixed(1)}% |`);
      }
      lines.push("", "JavaScript functions, inclusive (their callees, native ones included):", "", "| function | share | µs per request |", "|---|---:|---:|");
      for (const f of p.jsFunctions.slice(0, 15)) lines.push(`| ${f.name} | ${(100 * f.share).toFixed(1)}% | ${p.cpuUsPerRequest ? (f.share * p.cpuUsPerRequest).toFixed(0) : "–"} |`);
    } else {
      lines.push("| function (self time, V8 sampling) | share |", "|---|---:|");
      for (const f of p.self.slice(0, 20)) lines.push(`| ${f.name} | ${(100 * f.share).toFixed(1)}% |`);
    }
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}
