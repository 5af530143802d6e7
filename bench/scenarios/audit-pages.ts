// One tenant against the others (issue 19, item 2): 48 concurrent audit-log
// pages of 100 large entries (150 SANs of 255 characters each) while one
// connection polls /healthz, with workerd's peak resident memory.
import { readFileSync } from "node:fs";
import type { Bench } from "../lib/bench.ts";
import { BODY } from "../lib/body.ts";
import { load } from "../lib/load.ts";

const PAGES = 48;

/** workerd's resident memory now, in MiB. */
function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
}

/** A create body as large as the API allows: 150 SANs of 255 characters. */
function largeBody() {
  const label = "a".repeat(63);
  const sans = Array.from({ length: 150 }, (_, i) => `${label}.${label}.${label}.h${String(i).padStart(3, "0")}x${"b".repeat(54)}.com`);
  return { ...BODY, sans, key_type: "p256v1" };
}

/** The note continues the flood's (one fairness note in the report). */
export async function auditPages(bench: Bench): Promise<{ peakMiB: number; baseMiB: number; note: string }> {
  const { client, results } = bench;
  const { pid } = bench.workerd;
  const entries = bench.quick ? 200 : 1_000;
  await load({ url: `${client.api}/zones/bench-bigaudit/custom_csrs`, method: "POST", headers: bench.auth, body: largeBody(), connections: 16, amount: entries });
  const base = rssMiB(pid);
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20);
  const pages = load({ url: `${client.api}/zones/bench-bigaudit/audit_logs?per_page=100`, headers: bench.auth, connections: PAGES, amount: PAGES });
  const [read, health] = await Promise.all([pages, load({ url: `${client.origin}/healthz`, connections: 1, duration: 300, stopWhen: pages })]);
  clearInterval(sampler);
  results.record(`${PAGES} concurrent audit pages of 100 entries of 150 long SANs (${read.ok} served, ${read.non2xx} told 429)`, `${PAGES} conn, ${PAGES} pages`, read);
  results.record("during those pages: GET /healthz", "1 conn, while the pages ran", health);
  return {
    peakMiB: peak,
    baseMiB: base,
    note:
      `${PAGES} concurrent audit pages of 100 entries holding 150 SANs of 255 characters each (${entries} entries): workerd's resident memory ${base.toFixed(0)} → peak ${peak.toFixed(0)} MiB; ` +
      `/healthz meanwhile p50 ${health.p50?.toFixed(1)} ms, p99 ${health.p99?.toFixed(1)} ms.`,
  };
}
