// Write amplification of one create's commit, counted with strace: WAL
// frame writes (pwrite64; SQLite writes each frame's header and page
// separately, so two per 4 KiB page) and fsyncs per committed create.
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export function straceAvailable(): boolean {
  try {
    execFileSync("strace", ["-V"], { stdio: "ignore" });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
}

/** Runs `work()` (which performs `n` commits) under `strace -c` of `pid`; returns syscalls per commit. */
export async function syscallsPer(pid: number, n: number, work: () => Promise<unknown>, dir: string, tag: string | number): Promise<{ pwrite64: number; fsync: number }> {
  const out = join(dir, `strace-${tag}.txt`);
  const child = spawn("strace", ["-f", "-c", "-e", "trace=pwrite64,write,fsync,fdatasync", "-o", out, "-p", String(pid)], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 500)); // attached
  try {
    await work();
  } finally {
    child.kill("SIGINT");
    await new Promise((r) => child.once("exit", r));
  }
  const calls = (name: string) => Number(readFileSync(out, "utf8").split("\n").map((l) => l.trim().split(/\s+/)).find((c) => c.at(-1) === name)?.[3] ?? 0);
  return { pwrite64: calls("pwrite64") / n, fsync: (calls("fsync") + calls("fdatasync")) / n };
}
