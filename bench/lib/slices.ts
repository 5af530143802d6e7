// Drives bench/profile/slices.ts: the cost of each slice of the create, get
// and list paths, in microseconds per operation, measured inside workerd.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { DoStep, ListStep, WorkerStep } from "../profile/steps.ts";
import { DO_STEPS, LIST_STEPS, WORKER_STEPS } from "../profile/steps.ts";
import type { Secrets } from "./fixtures.ts";
import type { Binding } from "./scripts.ts";
import { readWorkerSpec } from "./scripts.ts";
import type { WorkerDef } from "./workerd.ts";
import { ROOT, bundleBenchWorker } from "./workerd.ts";

/** Bundles the slice Worker (it imports src/ modules) into `dir`. */
export function bundleSlices(dir: string): Promise<string> {
  return bundleBenchWorker(dir, {
    name: "bench-slices",
    main: join(ROOT, "bench/profile/slices.ts"),
    durableObjects: [
      { binding: "TENANTS", className: "TenantStore" },
      { binding: "PROBE", className: "Probe" },
      { binding: "LEAN", className: "LeanProbe" },
    ],
  });
}

/**
 * The slice Worker as workerd serves it: every Durable Object class and
 * binding of the API (as wrangler.toml declares them; TenantStore needs the
 * others), the run's secrets as text (not the API's other [vars]: their
 * defaults apply, no key pools), and the two probes.
 */
export async function sliceWorker({ module, secrets }: { module: string; secrets: Secrets }): Promise<WorkerDef<"slices">> {
  const spec = await readWorkerSpec(join(ROOT, "wrangler.toml"));
  const bindings: Binding[] = [
    ...Object.entries(secrets).map(([name, value]) => ({ name, text: value })),
    ...spec.durableObjects.map((d) => ({ name: d.binding, durableObject: d.className })),
    { name: "PROBE", durableObject: "Probe" },
    { name: "LEAN", durableObject: "LeanProbe" },
  ];
  const classes = [...new Set(spec.durableObjects.map((d) => d.className))];
  return { name: "slices", module, bindings, durableObjects: [...classes, "Probe", "LeanProbe"] };
}

/** One step's timing: µs per operation (wall, and workerd's CPU), and what the step reports besides. */
export interface SliceTiming {
  step: string;
  n: number;
  us: number;
  cpuUs: number | null;
  bytesPerRow?: number;
  rowsWritten?: number;
}

/** A slice's answer: ms for its loop of n, and, for committed writes, the growth per row. */
interface SliceAnswer {
  ms: number;
  extra?: { bytesPerRow: number; rowsWritten: number };
}

function isSliceAnswer(body: unknown): body is SliceAnswer {
  return typeof body === "object" && body !== null && "ms" in body && typeof body.ms === "number";
}

/**
 * Times one step: grows n until a loop takes ≥ `budgetMs`, then takes the
 * median of `repeats` loops. Returns µs per operation.
 */
async function timeStep(
  base: string,
  path: "/worker" | "/do",
  step: WorkerStep | DoStep | ListStep,
  { budgetMs = 250, repeats = 3, probe, token, maxN = 50_000, minN = 1, pid }: { budgetMs?: number; repeats?: number; probe?: string; token?: string; maxN?: number; minN?: number; pid?: number } = {},
): Promise<SliceTiming> {
  // Set by call(); declared wide so the closure's assignment is seen.
  let cpu = null as { ticks: number; n: number } | null;
  let extra: SliceAnswer["extra"];
  const call = async (n: number) => {
    const before = pid ? cpuTicks(pid) : 0;
    const qs = new URLSearchParams({ step, n: String(n) });
    if (probe) qs.set("probe", probe);
    if (token) qs.set("token", token);
    const response = await fetch(`${base}${path}?${qs}`);
    // A step that throws is workerd's plain-text 500 (the exception is in workerd's log).
    const text = await response.text();
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch {}
    if (!response.ok || !isSliceAnswer(body)) throw new Error(`slice ${step}: ${response.status} ${text.slice(0, 300)}`);
    if (pid) cpu = { ticks: cpuTicks(pid) - before, n };
    extra = body.extra;
    return body.ms;
  };
  let n = minN;
  let ms = await call(n);
  while (ms < budgetMs / 4 && n < maxN) {
    n = Math.min(maxN, Math.max(n * 2, Math.ceil((n * budgetMs) / Math.max(ms, 0.5))));
    ms = await call(n);
  }
  const samples = [(ms * 1000) / n];
  for (let i = 1; i < repeats; i++) samples.push(((await call(n)) * 1000) / n);
  samples.sort((a, b) => a - b);
  // CPU of the whole workerd process over the last loop (10 ms ticks): wall minus this is waiting.
  const cpuUs = cpu ? (cpu.ticks * 10_000) / cpu.n : null;
  return { step, n, us: samples[Math.floor(samples.length / 2)] ?? 0, cpuUs, ...(extra ?? {}) };
}

/** utime + stime of a process, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Every slice, plus list queries at the given scope sizes. */
export async function runSlices(
  base: string,
  { token, pid, listSizes = [100, 10_000, 100_000], log = () => {} }: { token: string; pid: number; listSizes?: number[]; log?: (message: string) => void },
): Promise<Array<SliceTiming & { where: "worker" | "object" }>> {
  const results: Array<SliceTiming & { where: "worker" | "object" }> = [];
  const push = (where: "worker" | "object", r: SliceTiming) => {
    results.push({ where, ...r });
    log(`${where}: ${r.step}: ${r.us.toFixed(1)} µs wall, ${r.cpuUs === null ? "–" : r.cpuUs.toFixed(0)} µs cpu (n=${r.n})${r.bytesPerRow ? `, ${r.bytesPerRow.toFixed(0)} B/row, ${r.rowsWritten} rows written` : ""}`);
  };
  for (const step of WORKER_STEPS) {
    const slow = /rsa2048/.test(step);
    push("worker", await timeStep(base, "/worker", step, { token, pid, budgetMs: slow ? 600 : 250, repeats: slow ? 1 : 3, minN: slow ? 8 : 1 }));
  }
  for (const step of DO_STEPS) {
    const slow = /rsa2048/.test(step) && /keygen|buildCsr/.test(step);
    push("object", await timeStep(base, "/do", step, { pid, budgetMs: slow ? 600 : 250, repeats: slow ? 1 : 3, minN: slow ? 8 : 1 }));
  }
  // Secondary indexes priced: the same insert into a table without them.
  await fetch(`${base}/drop-indexes?probe=noidx`);
  push("object", { ...(await timeStep(base, "/do", "sql insert csr+key+counter (tx)", { probe: "noidx", pid })), step: "sql insert, no secondary indexes" });
  for (const size of listSizes) {
    await fetch(`${base}/fill?probe=list-${size}&n=${size}`);
    for (const step of LIST_STEPS) {
      const r = await timeStep(base, "/do", step, { probe: `list-${size}`, pid, budgetMs: step.includes("middle") ? 400 : 250 });
      push("object", { ...r, step: `${r.step}, ${size.toLocaleString("en")} rows` });
    }
  }
  return results;
}
