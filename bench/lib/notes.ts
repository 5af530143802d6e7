// The notes that close every report: how the figures were measured, and
// what this run's numbers mean for reading them.
import type { Durations } from "./bench.ts";
import type { Machine } from "./machine.ts";
import type { Row } from "./results.ts";

export function closingNotes({
  rsa,
  durations: D,
  connections: C,
  rows,
  machine,
  seconds,
}: {
  rsa: { keygen: Row; create: Row; keygenCv: number };
  durations: Durations;
  connections: number;
  rows: readonly Row[];
  machine: Machine;
  seconds: number;
}): string[] {
  const withErrors = rows.filter((r) => r.errors > 0);
  return [
    `RSA-2048 key generation time varies a lot from key to key (random prime search; here its coefficient of variation was ${rsa.keygenCv.toFixed(2)}): with ${rsa.keygen.requests} and ${rsa.create.requests} keys the rsa2048 ratio has the standard error shown, and moves by that much between runs. Keygen and create are measured in interleaved rounds so that machine drift hits both alike.`,
    `req/s and p50/p99 come from ${C} connections for a fixed time (autocannon in the harness process; keygen and create RSA-2048 in ${D.rsaRounds} interleaved rounds of ${D.rsa} s; the burst ${D.rsa} s); idle p50/p99 from one connection. Latencies are of 2xx answers, in fractional ms.`,
    "server cores = CPU time (user + system, all threads) of the server process over the load's wall time; server CPU µs/req = that CPU time per request. workerd runs all JavaScript of a process on one thread; on this 2-core machine the load generator shares the CPUs.",
    "List ratios use idle latency (one connection), which is the cost of the query itself; under load p50 is mostly queueing. The loaded ratios are shown for reference.",
    `failed = non-2xx answers plus connection errors. ${withErrors.length ? `This run: ${withErrors.map((r) => `${r.name} ${r.errors}`).join(", ")} connection error(s), ${rows.reduce((n, r) => n + r.non2xx + (r.idle?.non2xx ?? 0), 0)} non-2xx in all. ` : ""}Under long RSA loads workerd occasionally resets a connection (ECONNRESET, 0–7 per run; the same on the code before schema v3); the creates that were answered were all 201.`,
    `"workerd direct": all Workers ran in one \`workerd serve\` process (${machine.workerd}) with a generated capnp config: the wrangler dry-run bundle, bound as wrangler.toml says (scripts/workerd-config.mjs), SQLite storage on local disk, secrets as text bindings. "npm start": the same bundle and bindings in the server's own config (values from the environment), one Worker per workerd process, started by \`npm start\` (its launcher idle beside it, counted in its CPU); stdout, a JSON line per request, discarded in both.`,
    "Start-up: from spawning the command to the first 200 of a GET of an existing CSR (through authentication and the tenant object opening its database), polled every 5 ms; the build in dist/workerd already up to date. The first start of the run is reported apart (it may build).",
    `The whole run took ${(seconds / 60).toFixed(1)} minutes.`,
  ];
}
