// The machine a run was measured on, for the report.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { ROOT } from "./scripts.ts";

export interface Machine {
  nproc: number;
  cpu: string;
  memoryGiB: number;
  kernel: string;
  node: string;
  wrangler: string;
  workerd: string;
  /** All of the above in one line. */
  summary: string;
}

const read = (path: string): string => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
};

/** The `version` of a package.json under the project root, or "?". */
function version(file: string): string {
  const manifest: unknown = JSON.parse(read(join(ROOT, file)) || "{}");
  return typeof manifest === "object" && manifest !== null && "version" in manifest && typeof manifest.version === "string" ? manifest.version : "?";
}

export function machine(): Machine {
  const cpuinfo = read("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU";
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(read("/proc/meminfo"))?.[1] ?? 0);
  const nproc = availableParallelism();
  let workerd = "?";
  try {
    workerd = execFileSync(join(ROOT, "node_modules/.bin/workerd"), ["--version"], { encoding: "utf8" }).trim();
  } catch {}
  const memoryGiB = Math.round((memKb / 1024 / 1024) * 10) / 10;
  const kernel = read("/proc/sys/kernel/osrelease").trim();
  const wrangler = version("node_modules/wrangler/package.json");
  return {
    nproc,
    cpu: model,
    memoryGiB,
    kernel,
    node: process.version,
    wrangler,
    workerd,
    summary: `${model}, ${nproc} CPUs (nproc), ${memoryGiB} GiB RAM, Linux ${kernel}, ${workerd}, wrangler ${wrangler}, Node ${process.version}`,
  };
}
