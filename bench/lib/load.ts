// Load from this process (workerd, cfssl and wrangler run in their own),
// bounded in duration or request count, on loopback only. Latencies are
// taken from autocannon's per-response timings (fractional milliseconds), not
// its histogram, which rounds to whole milliseconds.
import { readFileSync, readdirSync } from "node:fs";
import autocannon from "autocannon";

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** Header names to values, as every request of the bench sends them. */
export type Headers = Record<string, string>;

/** One endpoint as a load hits it: a JSON `body` is sent as such. */
export interface Endpoint {
  url: string;
  method?: string;
  headers?: Headers;
  body?: unknown;
}

/** The server's process: one pid, or a function giving the pids to sum (a process group). */
export type ServerPids = number | (() => number[]);

export interface LoadOptions extends Endpoint {
  connections?: number;
  /** Seconds; a bound only when `amount` or `stopWhen` is given. */
  duration?: number;
  /** Requests in all, then stop. */
  amount?: number;
  /** Counts this server's CPU time over the load. */
  pid?: ServerPids | undefined;
  /** Another load's promise: this one stops when that one settles. */
  stopWhen?: Promise<unknown>;
}

/** One load's outcome. Latencies are of 2xx answers, in fractional ms. */
export interface LoadResult {
  /** Sorted; dropped from reports, kept for combine(). */
  latencies: number[];
  rps: number;
  p50: number | null;
  p99: number | null;
  requests: number;
  ok: number;
  non2xx: number;
  errors: number;
  connections: number;
  seconds: number;
  /** CPU time of the server over the wall time; null without a pid. */
  cores: number | null;
  cpuUsPerRequest: number | null;
}

/** The fields of /proc/<pid>/stat after the command name (field 3 onwards). */
function statFields(pid: number | string): string[] {
  return (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
}

/** CPU seconds (user + system) a process has used so far, all its threads. */
export function cpuSeconds(pid: number): number {
  const fields = statFields(pid);
  // utime and stime are fields 14 and 15 of stat (1-based): index 11 and 12 after the name.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** The pids of a process group (e.g. `npm start` with its wrangler, node and workerd children). */
export function groupPids(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(statFields(entry)[2]) === pgid) pids.push(Number(entry)); // field 5 of stat: pgrp
    } catch {}
  }
  return pids;
}

/** CPU seconds of one pid, or summed over a list (processes that are gone count as 0). */
export function cpuOf(pid: ServerPids): number {
  const pids = typeof pid === "function" ? pid() : [pid];
  let total = 0;
  for (const p of pids) {
    try {
      total += cpuSeconds(p);
    } catch {}
  }
  return total;
}

/** The q-quantile (0..1) of a sorted array, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? null;
}

/**
 * Runs one load scenario. Returns requests/s, p50/p99 latency (ms, of 2xx
 * answers), counts, and, given a server pid, the cores that process used and
 * its CPU time per request. With `stopWhen` (a promise), it stops when that
 * settles.
 */
export async function load({ url, method = "GET", headers = {}, body, connections = 8, duration = 8, amount, pid, stopWhen }: LoadOptions): Promise<LoadResult> {
  const before = pid ? cpuOf(pid) : 0;
  const started = process.hrtime.bigint();
  const latencies: number[] = [];
  const instance = autocannon({
    url,
    method,
    headers: body ? { "content-type": "application/json", ...headers } : headers,
    body: body ? JSON.stringify(body) : undefined,
    connections,
    ...(amount ? { amount } : { duration }),
    timeout: 60,
  });
  instance.on("response", (_client, status, _bytes, responseTime) => {
    if (status >= 200 && status < 300) latencies.push(responseTime);
  });
  // Another load's promise: this one runs exactly as long as that one (duration is then only a bound).
  stopWhen?.then(
    () => instance.stop(),
    () => instance.stop(),
  );
  const result = await instance;
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = pid ? cpuOf(pid) - before : null;
  latencies.sort((a, b) => a - b);
  const completed = result.requests.total;
  return {
    latencies,
    rps: completed / wall,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    requests: completed,
    ok: latencies.length,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    connections,
    seconds: wall,
    cores: cpu === null ? null : cpu / wall,
    cpuUsPerRequest: cpu === null || completed === 0 ? null : (cpu * 1e6) / completed,
  };
}

type Summed = "requests" | "non2xx" | "errors" | "seconds";

/** Merges loads of one scenario run in several rounds (interleaved with another, to cancel drift). */
export function combine(parts: readonly LoadResult[]): LoadResult {
  const first = parts[0];
  if (!first) throw new Error("combine: no rounds were run");
  const latencies = parts.flatMap((p) => p.latencies).sort((a, b) => a - b);
  const sum = (k: Summed) => parts.reduce((n, p) => n + p[k], 0);
  const seconds = sum("seconds");
  const requests = sum("requests");
  let cpu: number | null = 0;
  for (const p of parts) cpu = cpu === null || p.cores === null ? null : cpu + p.cores * p.seconds;
  return {
    latencies,
    rps: requests / seconds,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    requests,
    ok: latencies.length,
    non2xx: sum("non2xx"),
    errors: sum("errors"),
    connections: first.connections,
    seconds,
    cores: cpu === null ? null : cpu / seconds,
    cpuUsPerRequest: cpu === null || requests === 0 ? null : (cpu * 1e6) / requests,
  };
}
