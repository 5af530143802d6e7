// One tenant against the others (issue 19, item 3 and item 2): a flood of
// 100 concurrent rsa2048 creates into one zone (its key pool off) while one
// connection gets a CSR of another zone; then concurrent audit-log pages of
// large entries while one connection polls /healthz, with the server's peak
// resident memory. Rows, a target row and a note for the report.
import { readFileSync } from "node:fs";
import { load } from "../lib/load.mjs";

/** workerd's resident memory now, in MiB. */
function rssMiB(pid) {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
}

/** A create body as large as the API allows: 150 SANs of 255 characters. */
function largeBody(base) {
  const label = "a".repeat(63);
  const sans = Array.from({ length: 150 }, (_, i) => `${label}.${label}.${label}.h${String(i).padStart(3, "0")}x${"b".repeat(54)}.com`);
  return { ...base, sans, key_type: "p256v1" };
}

/**
 * Runs both scenarios against the API at `api` (workerd `pid`), recording
 * rows through `record`. Answers the flood's other-scope get row, for the
 * report's target.
 */
export async function fairness({ api, adminBase, auth, admin, pid, getTarget, body, record, notes, log, quick }) {
  // 1. The flood.
  const FLOOD = 100;
  await fetch(`${adminBase}/zones/bench-flood/key_pool`, {
    method: "PUT",
    headers: { ...admin, "content-type": "application/json" },
    body: JSON.stringify({ size: 0 }),
  });
  const idle = await load({ ...getTarget, connections: 1, duration: quick ? 2 : 4 });
  const flood = load({ url: `${api}/zones/bench-flood/custom_csrs`, method: "POST", headers: auth, body: { ...body, key_type: "rsa2048" }, connections: FLOOD, amount: FLOOD });
  const [flooded, other] = await Promise.all([flood, load({ ...getTarget, connections: 1, duration: 300, stopWhen: flood })]);
  record(`flood: ${FLOOD} concurrent rsa2048 creates into one zone (pool off; ${flooded.ok} created, ${flooded.non2xx} told 429)`, `${FLOOD} conn, ${FLOOD} creates`, flooded);
  const during = record("during the flood: get in another zone", "1 conn, while the flood ran", other, idle);
  log(`flood: ${flooded.ok} created, ${flooded.non2xx} refused; other zone's get p99 ${during.p99?.toFixed(1)} ms`);

  // 2. Large audit pages, all at once.
  const ENTRIES = quick ? 200 : 1_000;
  const PAGES = 48;
  await load({ url: `${api}/zones/bench-bigaudit/custom_csrs`, method: "POST", headers: auth, body: largeBody(body), connections: 16, amount: ENTRIES });
  const base = rssMiB(pid);
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 20);
  const pages = load({ url: `${api}/zones/bench-bigaudit/audit_logs?per_page=100`, headers: auth, connections: PAGES, amount: PAGES });
  const [read, health] = await Promise.all([pages, load({ url: `${adminBase.replace(/\/admin\/v1$/, "")}/healthz`, connections: 1, duration: 300, stopWhen: pages })]);
  clearInterval(sampler);
  record(`${PAGES} concurrent audit pages of 100 entries of 150 long SANs (${read.ok} served, ${read.non2xx} told 429)`, `${PAGES} conn, ${PAGES} pages`, read);
  record("during those pages: GET /healthz", "1 conn, while the pages ran", health);
  notes.push(
    `Fairness (issue 19): ${FLOOD} concurrent rsa2048 creates into one zone with its pool off: ${flooded.ok} created, ${flooded.non2xx} refused with 429 (971, Retry-After: 1); ` +
      `a get in another zone meanwhile: p99 ${during.p99?.toFixed(1)} ms (idle ${idle.p99?.toFixed(2)} ms). ` +
      `${PAGES} concurrent audit pages of 100 entries holding 150 SANs of 255 characters each (${ENTRIES} entries): workerd's resident memory ${base.toFixed(0)} → peak ${peak.toFixed(0)} MiB; /healthz meanwhile p50 ${health.p50?.toFixed(1)} ms, p99 ${health.p99?.toFixed(1)} ms.`,
  );
  return { during, peakMiB: peak, baseMiB: base };
}
