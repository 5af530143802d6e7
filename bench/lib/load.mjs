// Load from this process (workerd and cfssl run in their own), bounded in
// duration and connections, on loopback only.
import { readFileSync } from "node:fs";
import autocannon from "autocannon";

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used so far, children included. */
export function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  // utime, stime, cutime, cstime are fields 14–17 (1-based) of stat; index 11–14 here.
  return fields.slice(11, 15).reduce((sum, v) => sum + Number(v), 0) / CLOCK_TICKS;
}

/**
 * Runs one load scenario and returns rps, p50/p99 latency (ms), the share of
 * non-2xx answers, and, given a server pid, the cores it used.
 */
export async function load({ url, method = "GET", headers = {}, body, connections = 8, duration = 8, pid, requests }) {
  const before = pid ? cpuSeconds(pid) : 0;
  const started = process.hrtime.bigint();
  const result = await autocannon({
    url,
    method,
    headers: body ? { "content-type": "application/json", ...headers } : headers,
    body: body ? JSON.stringify(body) : undefined,
    connections,
    duration,
    requests,
    timeout: 30,
  });
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  const cores = pid ? (cpuSeconds(pid) - before) / wall : null;
  const total = result.requests.total || 1;
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    errorShare: (result.non2xx + result.errors + result.timeouts) / total,
    cores,
  };
}
