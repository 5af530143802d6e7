// The machine a run was measured on, for the report.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { ROOT } from "./workerd.mjs";

const read = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
};

export function machine() {
  const cpuinfo = read("/proc/cpuinfo");
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown CPU";
  const memKb = Number(/^MemTotal:\s+(\d+)/m.exec(read("/proc/meminfo"))?.[1] ?? 0);
  const nproc = availableParallelism();
  const version = (file) => JSON.parse(read(join(ROOT, file)) || "{}").version ?? "?";
  let workerd = "?";
  try {
    workerd = execFileSync(join(ROOT, "node_modules/.bin/workerd"), ["--version"], { encoding: "utf8" }).trim();
  } catch {}
  const info = {
    nproc,
    cpu: model,
    memoryGiB: Math.round((memKb / 1024 / 1024) * 10) / 10,
    kernel: read("/proc/sys/kernel/osrelease").trim(),
    node: process.version,
    wrangler: version("node_modules/wrangler/package.json"),
    workerd,
  };
  info.summary = `${model}, ${nproc} CPUs (nproc), ${info.memoryGiB} GiB RAM, Linux ${info.kernel}, ${workerd}, wrangler ${info.wrangler}, Node ${process.version}`;
  return info;
}
