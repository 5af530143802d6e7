// npm run bench:profile [-- --no-perf] [--no-slices] [--lists=100,10000,100000]
//
// Where the time of create p256v1, create rsa2048, get and list goes.
//  1. Slices: bench/profile/slices.ts imports the real src/ modules and times
//     each step (validation, auth, key generation, export and wrap, ASN.1,
//     SQL statements and commits, the RPC hop, JSON envelopes) in a loop
//     inside workerd: µs per operation, wall and CPU.
//  2. perf: Linux perf samples the workerd process (all threads, call graphs,
//     JavaScript names from V8's perf map) under load on each endpoint, and
//     splits the CPU per request into JavaScript, GC, SQLite, WebCrypto,
//     HTTP, RPC and runtime glue, plus the heaviest JavaScript functions.
//     Without perf (not root, or not installed) it falls back to V8's own
//     sampling profiler through workerd's inspector (JavaScript only; note
//     that with an inspector attached console.log costs far more than usual).
// Writes bench/out/profile.{md,json}. Bounded: about 3–5 minutes.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanup, guard, onCleanup, tempDir } from "./lib/lifecycle.mjs";
import { load } from "./lib/load.mjs";
import { machine as describeMachine } from "./lib/machine.mjs";
import { freePort } from "./lib/net.mjs";
import { perfAvailable, perfRecord, perfReport } from "./lib/perf.mjs";
import { bundleSlices, runSlices } from "./lib/slices.mjs";
import { straceAvailable, syscallsPer } from "./lib/syscalls.mjs";
import { ROOT, apiWorker, bundle, startWorkerd } from "./lib/workerd.mjs";
import { signToken } from "../scripts/sign-token.mjs";
import { BODY, freshSecrets } from "./lib/fixtures.mjs";

const argv = process.argv.slice(2);
const USE_PERF = !argv.includes("--no-perf") && perfAvailable();
const WITH_SLICES = !argv.includes("--no-slices");
const LIST_SIZES = (argv.find((a) => a.startsWith("--lists="))?.slice(8) ?? "100,10000,100000").split(",").map(Number);
const OUT = join(ROOT, "bench/out");
const log = (...args) => console.error(`[profile ${new Date().toISOString().slice(11, 19)}]`, ...args);

async function main() {
  const machine = describeMachine();
  const work = tempDir("csr-profile-");
  const secrets = freshSecrets("prof");
  const token = signToken(secrets.API_TOKEN_SECRET, { accounts: ["*"], zones: ["*"], ttl: 3600 });
  log(`minted an HS256 API token; perf ${USE_PERF ? "available" : "not available: V8 inspector fallback"}`);
  const text = Object.entries(secrets).map(([name, value]) => ({ name, text: value }));
  log("bundling the Worker and the slice Worker");
  const [apiModule, slicesModule] = await Promise.all([bundle(join(work, "build-api")), bundleSlices(join(work, "build-slices"))]);
  const inspectorPort = USE_PERF ? undefined : await freePort();
  const w = await startWorkerd({
    dir: join(work, "workerd"),
    inspectorPort,
    // JavaScript function names for perf; harmless otherwise.
    v8Flags: USE_PERF ? ["--perf-basic-prof-only-functions"] : [],
    workers: [
      await apiWorker({ module: apiModule, secrets }),
      { name: "floor", module: join(ROOT, "bench/floor-worker.js"), bindings: [{ name: "FLOOR", durableObject: "FloorObject" }], durableObjects: ["FloorObject"] },
      {
        name: "slices",
        module: slicesModule,
        bindings: [...text, { name: "TENANTS", durableObject: "TenantStore" }, { name: "PROBE", durableObject: "Probe" }, { name: "LEAN", durableObject: "LeanProbe" }],
        durableObjects: ["TenantStore", "Probe", "LeanProbe"],
      },
    ],
  });
  onCleanup(w.stop);
  if (USE_PERF) onCleanup(async () => rmSync(`/tmp/perf-${w.pid}.map`, { force: true }));

  const report = { machine, date: new Date().toISOString(), slices: [], profiles: [] };

  if (WITH_SLICES) {
    log("timing slices");
    report.slices = await runSlices(`http://127.0.0.1:${w.ports.slices}`, { token, pid: w.pid, listSizes: LIST_SIZES, log: (m) => log(m) });
  }

  // WAL writes and fsyncs per committed create, current schema vs the leaner layout.
  report.commits = [];
  if (straceAvailable()) {
    const base = `http://127.0.0.1:${w.ports.slices}/worker`;
    for (const step of ["rpc create-like write, current schema", "rpc create-like write, without the name and kek indexes", "rpc create-like write, lean schema (experiment)"]) {
      const run = (n) => fetch(`${base}?step=${encodeURIComponent(step)}&n=${n}`).then((r) => r.json());
      await run(20); // tables exist, pages warm
      const n = 300;
      let extra;
      const counts = await syscallsPer(w.pid, n, async () => ({ extra } = await run(n)), work, report.commits.length);
      report.commits.push({ step, ...counts, ...extra });
      log(`${step}: ${counts.pwrite64.toFixed(1)} pwrite64 and ${counts.fsync.toFixed(2)} fsync per create, ${extra.rowsWritten} rows written`);
    }
  }

  // Endpoints under load, each profiled for a few seconds after a warm-up.
  const api = `http://127.0.0.1:${w.ports.api}/client/v4`;
  const auth = { authorization: `Bearer ${token}` };
  const create = (keyType) => ({ url: `${api}/zones/prof/custom_csrs`, method: "POST", headers: auth, body: { ...BODY, key_type: keyType } });
  const made = await (await fetch(create("p256v1").url, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify(create("p256v1").body) })).json();
  for (let i = 0; i < 60; i++) {
    await fetch(`${api}/zones/prof-list/custom_csrs`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ ...BODY, key_type: "p256v1" }) });
  }
  const lean = await (await fetch(`http://127.0.0.1:${w.ports.slices}/lean-setup`)).json();
  const scenarios = [
    ["floor Worker", { url: `http://127.0.0.1:${w.ports.floor}/` }, 4],
    ["floor Worker + Durable Object RPC (noop)", { url: `http://127.0.0.1:${w.ports.floor}/do/noop` }, 4],
    ["floor Worker + Durable Object RPC (a CSR-sized record)", { url: `http://127.0.0.1:${w.ports.floor}/do/record` }, 4],
    ["floor Worker + Durable Object RPC (the record read from SQLite)", { url: `http://127.0.0.1:${w.ports.floor}/do/sql` }, 4],
    ["get one CSR", { url: `${api}/zones/prof/custom_csrs/${made.result.id}`, headers: auth }, 5],
    ["get one CSR without the router (experiment, slice Worker)", { url: `http://127.0.0.1:${w.ports.slices}${lean.path}`, headers: auth }, 5],
    ["list 50 (scope of 60)", { url: `${api}/zones/prof-list/custom_csrs?per_page=50`, headers: auth }, 5],
    ["create p256v1", create("p256v1"), 5],
    ["create rsa2048", create("rsa2048"), 10],
  ];
  for (const [name, target, seconds] of scenarios) {
    await load({ ...target, connections: 8, duration: 1 }); // warm-up
    const file = join(work, `${name.replace(/\W+/g, "-")}.perf.data`);
    let profile;
    let result;
    if (USE_PERF) {
      const recording = perfRecord(w.pid, seconds, file);
      result = await load({ ...target, connections: 8, duration: seconds, pid: w.pid });
      await recording;
      profile = perfReport(file);
    } else {
      const service = Object.entries(w.ports).find(([, port]) => target.url.includes(`:${port}/`))?.[0] ?? "api";
      const session = await startV8Profile(`ws://127.0.0.1:${inspectorPort}/${service}`);
      result = await load({ ...target, connections: 8, duration: seconds, pid: w.pid });
      profile = await session.stop();
    }
    report.profiles.push({ name, rps: result.rps, cpuUsPerRequest: result.cpuUsPerRequest, cores: result.cores, ...profile });
    log(`${name}: ${result.rps.toFixed(0)} req/s, ${result.cpuUsPerRequest?.toFixed(0)} µs CPU/req`);
  }

  mkdirSync(OUT, { recursive: true });
  const md = profileMarkdown(report, USE_PERF);
  writeFileSync(join(OUT, "profile.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(OUT, "profile.md"), md);
  process.stdout.write(md);
}

function profileMarkdown(report, perf) {
  const lines = [`# Profile, ${report.date.slice(0, 16).replace("T", " ")} UTC`, "", `Machine: ${report.machine.summary}.`, ""];
  if (report.slices.length) {
    lines.push(
      "## Slices (µs per operation, inside workerd)",
      "",
      "Each step runs n times in a loop in the slice Worker (`worker`) or in a probe Durable Object (`object`); wall is the loop's own clock, CPU is the workerd process's user+system time over the loop (it includes V8's GC helper threads, so it can exceed wall).",
      "",
      "| where | step | wall µs | CPU µs | n | note |",
      "|---|---|---:|---:|---:|---|",
      ...report.slices.map((s) => `| ${s.where} | ${s.step} | ${s.us.toFixed(1)} | ${s.cpuUs === null ? "–" : s.cpuUs.toFixed(0)} | ${s.n} | ${s.bytesPerRow ? `${s.bytesPerRow.toFixed(0)} B and ${s.rowsWritten} rows written per create` : ""} |`),
      "",
    );
  }
  if (report.commits?.length) {
    lines.push(
      "## One create's commit (strace)",
      "",
      "The SQL of one createCsr in its own transaction, 300 times over RPC, with strace counting workerd's syscalls. SQLite writes each WAL frame as two pwrite64 calls (header, then the 4 KiB page).",
      "",
      "| layout | pwrite64 per create | ≈ WAL pages per create | fsync per create | rows written per create | database bytes per create |",
      "|---|---:|---:|---:|---:|---:|",
      ...report.commits.map((c) => `| ${c.step.replace("rpc create-like write, ", "")} | ${c.pwrite64.toFixed(1)} | ${(c.pwrite64 / 2).toFixed(1)} | ${c.fsync.toFixed(2)} | ${c.rowsWritten} | ${c.bytesPerRow.toFixed(0)} |`),
      "",
    );
  }
  for (const p of report.profiles) {
    lines.push(`## ${p.name}: ${p.rps.toFixed(0)} req/s at 8 connections, ${p.cpuUsPerRequest?.toFixed(0) ?? "–"} µs of workerd CPU per request`, "");
    if (perf) {
      lines.push("| where the CPU goes | share | µs per request | of which in the kernel |", "|---|---:|---:|---:|");
      for (const c of p.categories) {
        lines.push(`| ${c.name} | ${(100 * c.share).toFixed(1)}% | ${p.cpuUsPerRequest ? (c.share * p.cpuUsPerRequest).toFixed(0) : "–"} | ${(100 * c.kernel).toFixed(1)}% |`);
      }
      lines.push("", "JavaScript functions, inclusive (their callees, native ones included):", "", "| function | share | µs per request |", "|---|---:|---:|");
      for (const f of p.jsFunctions.slice(0, 15)) lines.push(`| ${f.name} | ${(100 * f.share).toFixed(1)}% | ${p.cpuUsPerRequest ? (f.share * p.cpuUsPerRequest).toFixed(0) : "–"} |`);
    } else {
      lines.push("| function (self time, V8 sampling) | share |", "|---|---:|");
      for (const f of p.self.slice(0, 20)) lines.push(`| ${f.name} | ${(100 * f.share).toFixed(1)}% |`);
    }
    lines.push("");
  }
  return `${lines.join("\n")}\n`;
}

/** V8's sampling profiler over workerd's inspector (DevTools protocol), for machines without perf. */
async function startV8Profile(url) {
  const ws = new WebSocket(url);
  let next = 1;
  const pending = new Map();
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 100 });
  await send("Profiler.start");
  return {
    async stop() {
      const { result } = await send("Profiler.stop");
      ws.close();
      const { nodes, samples } = result.profile;
      const byId = new Map(nodes.map((n) => [n.id, n]));
      const counts = new Map();
      for (const id of samples) {
        const f = byId.get(id).callFrame;
        const key = `${f.functionName || "(anonymous)"} ${f.url ? f.url.split("/").pop() : ""}:${f.lineNumber + 1}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const total = samples.length || 1;
      return { self: [...counts].sort((a, b) => b[1] - a[1]).map(([name, n]) => ({ name, share: n / total })) };
    },
  };
}

guard(12 * 60_000, log);
main()
  .catch((error) => {
    console.error(error);
    process.exitCode = 1;
  })
  .finally(cleanup);
