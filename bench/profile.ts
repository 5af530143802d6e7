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
import { prop } from "./lib/api-client.ts";
import { BODY, freshSecrets } from "./lib/fixtures.ts";
import { guard, onCleanup, runMain, tempDir } from "./lib/lifecycle.ts";
import type { Endpoint } from "./lib/load.ts";
import { load } from "./lib/load.ts";
import { machine as describeMachine } from "./lib/machine.ts";
import { freePort } from "./lib/net.ts";
import { perfAvailable, perfRecord, perfReport } from "./lib/perf.ts";
import type { CommitCount, EndpointProfile, ProfileReport } from "./lib/profile-report.ts";
import { profileMarkdown } from "./lib/profile-report.ts";
import { signToken } from "./lib/scripts.ts";
import { bundleSlices, runSlices, sliceWorker } from "./lib/slices.ts";
import { straceAvailable, syscallsPer } from "./lib/syscalls.ts";
import { startV8Profile } from "./lib/v8-profile.ts";
import { ROOT, apiWorker, bundle, startWorkerd } from "./lib/workerd.ts";
import type { WorkerStep } from "./profile/steps.ts";

const USAGE = `usage: npm run bench:profile [-- --no-perf] [--no-slices] [--lists=100,10000,100000]
  --no-perf    V8's sampling profiler (workerd's inspector) instead of Linux perf
  --no-slices  skip the slices (each step of the create, get and list paths, timed in workerd)
  --lists=     the table sizes of the slices' list queries`;

const argv = process.argv.slice(2);
if (argv.includes("--help")) {
  console.log(USAGE);
  process.exit(0);
}
const unknown = argv.filter((a) => a !== "--no-perf" && a !== "--no-slices" && !a.startsWith("--lists="));
if (unknown.length) {
  console.error(`unknown flag ${unknown.join(", ")}\n${USAGE}`);
  process.exit(2);
}
const USE_PERF = !argv.includes("--no-perf") && perfAvailable();
const WITH_SLICES = !argv.includes("--no-slices");
const LIST_SIZES = (argv.find((a) => a.startsWith("--lists="))?.slice(8) ?? "100,10000,100000").split(",").map(Number);
const OUT = join(ROOT, "bench/out");
const log = (...args: unknown[]) => console.error(`[profile ${new Date().toISOString().slice(11, 19)}]`, ...args);

// The create-like write under three table layouts, counted with strace.
const COMMIT_STEPS = ["rpc create-like write, current schema", "rpc create-like write, without the name and kek indexes", "rpc create-like write, lean schema (experiment)"] as const satisfies readonly WorkerStep[];

async function main(): Promise<void> {
  const machine = describeMachine();
  const work = tempDir("csr-profile-");
  const secrets = freshSecrets("prof");
  const token = signToken(secrets.API_TOKEN_SECRET, { accounts: ["*"], zones: ["*"], ttl: 3600 });
  log(`minted an HS256 API token; perf ${USE_PERF ? "available" : "not available: V8 inspector fallback"}`);
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
      { name: "floor", module: join(ROOT, "bench/workers/floor.js"), bindings: [{ name: "FLOOR", durableObject: "FloorObject" }], durableObjects: ["FloorObject"] },
      await sliceWorker({ module: slicesModule, secrets }),
    ],
  });
  onCleanup(w.stop);
  if (USE_PERF) onCleanup(async () => rmSync(`/tmp/perf-${w.pid}.map`, { force: true }));
  const slicesUrl = `http://127.0.0.1:${w.ports.slices}`;
  const floorUrl = `http://127.0.0.1:${w.ports.floor}`;

  const report: ProfileReport = { machine, date: new Date().toISOString(), slices: [], profiles: [], commits: [] };

  if (WITH_SLICES) {
    log("timing slices");
    report.slices = await runSlices(slicesUrl, { token, pid: w.pid, listSizes: LIST_SIZES, log: (m) => log(m) });
  }

  // WAL writes and fsyncs per committed create, current schema vs the leaner layout.
  if (straceAvailable()) {
    for (const step of COMMIT_STEPS) {
      const run = async (n: number) => {
        const body: unknown = await (await fetch(`${slicesUrl}/worker?step=${encodeURIComponent(step)}&n=${n}`)).json();
        return { bytesPerRow: Number(prop(prop(body, "extra"), "bytesPerRow")), rowsWritten: Number(prop(prop(body, "extra"), "rowsWritten")) };
      };
      await run(20); // tables exist, pages warm
      const n = 300;
      let extra = { bytesPerRow: Number.NaN, rowsWritten: Number.NaN };
      const counts = await syscallsPer(w.pid, n, async () => (extra = await run(n)), work, report.commits.length);
      const commit: CommitCount = { step, ...counts, ...extra };
      report.commits.push(commit);
      log(`${step}: ${counts.pwrite64.toFixed(1)} pwrite64 and ${counts.fsync.toFixed(2)} fsync per create, ${extra.rowsWritten} rows written`);
    }
  }

  // Endpoints under load, each profiled for a few seconds after a warm-up.
  const api = `http://127.0.0.1:${w.ports.api}/client/v4`;
  const auth = { authorization: `Bearer ${token}` };
  const create = (keyType: string): Endpoint => ({ url: `${api}/zones/prof/custom_csrs`, method: "POST", headers: auth, body: { ...BODY, key_type: keyType } });
  const post = (url: string) => fetch(url, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ ...BODY, key_type: "p256v1" }) });
  const made: unknown = await (await post(create("p256v1").url)).json();
  const madeId = prop(prop(made, "result"), "id");
  if (typeof madeId !== "string") throw new Error(`the profile's first create answered ${JSON.stringify(made)?.slice(0, 300)}`);
  for (let i = 0; i < 60; i++) await post(`${api}/zones/prof-list/custom_csrs`);
  const lean = prop(await (await fetch(`${slicesUrl}/lean-setup`)).json(), "path");
  if (typeof lean !== "string") throw new Error("the slice Worker's lean-setup answered without a path");
  const scenarios: Array<[name: string, target: Endpoint, seconds: number, service: "api" | "floor" | "slices"]> = [
    ["floor Worker", { url: `${floorUrl}/` }, 4, "floor"],
    ["floor Worker + Durable Object RPC (noop)", { url: `${floorUrl}/do/noop` }, 4, "floor"],
    ["floor Worker + Durable Object RPC (a CSR-sized record)", { url: `${floorUrl}/do/record` }, 4, "floor"],
    ["floor Worker + Durable Object RPC (the record read from SQLite)", { url: `${floorUrl}/do/sql` }, 4, "floor"],
    ["get one CSR", { url: `${api}/zones/prof/custom_csrs/${madeId}`, headers: auth }, 5, "api"],
    ["get one CSR without the router (experiment, slice Worker)", { url: `${slicesUrl}${lean}`, headers: auth }, 5, "slices"],
    ["list 50 (scope of 60)", { url: `${api}/zones/prof-list/custom_csrs?per_page=50`, headers: auth }, 5, "api"],
    ["create p256v1", create("p256v1"), 5, "api"],
    ["create rsa2048", create("rsa2048"), 10, "api"],
  ];
  for (const [name, target, seconds, service] of scenarios) {
    await load({ ...target, connections: 8, duration: 1 }); // warm-up
    const file = join(work, `${name.replace(/\W+/g, "-")}.perf.data`);
    let profile: EndpointProfile;
    if (USE_PERF) {
      const recording = perfRecord(w.pid, seconds, file);
      const result = await load({ ...target, connections: 8, duration: seconds, pid: w.pid });
      await recording;
      profile = { name, rps: result.rps, cpuUsPerRequest: result.cpuUsPerRequest, cores: result.cores, ...perfReport(file) };
    } else {
      const session = await startV8Profile(`ws://127.0.0.1:${inspectorPort}/${service}`);
      const result = await load({ ...target, connections: 8, duration: seconds, pid: w.pid });
      profile = { name, rps: result.rps, cpuUsPerRequest: result.cpuUsPerRequest, cores: result.cores, ...(await session.stop()) };
    }
    report.profiles.push(profile);
    log(`${name}: ${profile.rps.toFixed(0)} req/s, ${profile.cpuUsPerRequest?.toFixed(0)} µs CPU/req`);
  }

  mkdirSync(OUT, { recursive: true });
  const md = profileMarkdown(report);
  writeFileSync(join(OUT, "profile.json"), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(OUT, "profile.md"), md);
  process.stdout.write(md);
}

guard(12 * 60_000, log);
runMain(main);
