// Drives bench/profile/slices.ts: the cost of each slice of the create, get
// and list paths, in microseconds per operation, measured inside workerd.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, bundleBenchWorker } from "./workerd.mjs";

/** Bundles the slice Worker (it imports src/ modules) into `dir`. */
export function bundleSlices(dir) {
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

// Slices, by where they run; `budget` is the target ms per timed loop.
export const WORKER_STEPS = [
  "noop",
  "new Request (GET, auth header)",
  "handle(): 404, no route",
  "handle(): get",
  "handle(): list 50",
  "handle(): create p256v1",
  "new URL + path regex",
  "authenticate (cached token)",
  "verifyJwt HS256 (uncached)",
  "readJson (Request + stream + parse)",
  "request.text() + JSON.parse (experiment)",
  "JSON.parse body",
  "parseCsrInput (validation, tldts)",
  "envelope: success(record), built not sent",
  "envelope: pageOf(50 records), built not sent",
  "Response.json(record) (floor-style reply)",
  "response.headers.set on a built Response",
  "console.log(JSON access line)",
  "stub: idFromName + get",
  "rpc noop",
  "rpc echo one record",
  "rpc echo 50 records",
  "rpc read one row",
  "rpc write one row (commit)",
  "rpc create-like write, current schema",
  "rpc create-like write, without the name and kek indexes",
  "rpc create-like write, lean schema (experiment)",
  "rpc TenantStore.getCsr",
  "rpc TenantStore.listCsrs (50)",
  "rpc TenantStore.createCsr p256v1",
  "rpc TenantStore.createCsr rsa2048",
];

export const DO_STEPS = [
  "keygen p256v1",
  "keygen rsa2048",
  "export spki p256v1",
  "export spki rsa2048",
  "export pkcs8 p256v1",
  "export pkcs8 rsa2048",
  "sign p256v1 (420 B)",
  "sign rsa2048 (420 B)",
  "aes-gcm encrypt 138 B",
  "wrapPrivateKey p256v1",
  "wrapPrivateKey rsa2048",
  "unwrap a pooled rsa2048 key (+ spki import)",
  "asn1 subject Name",
  "asn1 SAN extension",
  "der subject Name (hand-written, experiment)",
  "der SAN extension (hand-written, experiment)",
  "p1363ToDer",
  "toPem (430 B)",
  "buildCsr p256v1 (all)",
  "buildCsr rsa2048 (all)",
  "randomUUID",
  "sql count (SELECT counters)",
  "sql insert csr+key+counter (tx)",
  "sql get by id",
  "JSON.stringify 50 records",
  "toRecord x50",
  "raw page 50 + recordJson (what listCsrs does)",
];

/**
 * Times one step: grows n until a loop takes ≥ `budgetMs`, then takes the
 * median of `repeats` loops. Returns µs per operation.
 */
async function timeStep(base, path, step, { budgetMs = 250, repeats = 3, probe, token, maxN = 50_000, minN = 1, pid } = {}) {
  let cpu = null;
  let extra;
  const call = async (n) => {
    const before = pid ? cpuTicks(pid) : 0;
    const qs = new URLSearchParams({ step, n: String(n) });
    if (probe) qs.set("probe", probe);
    if (token) qs.set("token", token);
    const response = await fetch(`${base}${path}?${qs}`);
    const body = await response.json();
    if (!response.ok || typeof body.ms !== "number") throw new Error(`slice ${step}: ${JSON.stringify(body).slice(0, 300)}`);
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
  return { step, n, us: samples[Math.floor(samples.length / 2)], cpuUs, ...(extra ?? {}) };
}

/** utime + stime of a process, in clock ticks (1/100 s). */
function cpuTicks(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** Every slice, plus list queries at the given scope sizes. */
export async function runSlices(base, { token, pid, listSizes = [100, 10_000, 100_000], log = () => {} }) {
  const results = [];
  const push = (where, r) => {
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
    for (const step of ["sql list page 50, first", "sql list page 50, last", "sql list page 50, middle", "sql list page 50, csr column only (experiment)", "sql list page 50, 14 columns via raw() (experiment)"]) {
      const r = await timeStep(base, "/do", step, { probe: `list-${size}`, pid, budgetMs: step.includes("middle") ? 400 : 250 });
      push("object", { ...r, step: `${r.step}, ${size.toLocaleString("en")} rows` });
    }
  }
  return results;
}
