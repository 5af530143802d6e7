// npm run bench [-- --quick] [--no-dev] [--no-cfssl]
//
// Throughput and latency of the Custom CSR API as production runs it: the
// Worker bundled by wrangler (dry-run deploy) and served by the workerd
// binary with a generated capnp config, no dev proxy in front. Beside it, in
// the same run: a trivial Worker on the same runtime (the floor), the
// runtime's own key generation rate, cfssl's newkey endpoint (the same job
// without storage or auth), `npm start` (what an operator runs: its rows,
// and its cold start) and `npm run dev` (wrangler dev). Each scenario is a
// file of bench/scenarios/; this file only orchestrates them. Writes
// bench/out/{results.json,results.md,list-latency.svg}, and bench/RESULTS.md
// + bench/list-latency.svg unless --quick.
//
// Bounded: every load has a fixed duration or request count, the whole run
// is stopped after RUN_LIMIT_MS, and every process and temp dir it started
// is removed on exit, error or Ctrl-C. Loopback only.
import { join } from "node:path";
import type { Durations } from "./lib/bench.ts";
import { createBench } from "./lib/bench.ts";
import { freshSecrets } from "./lib/fixtures.ts";
import { guard, onCleanup, runMain, tempDir } from "./lib/lifecycle.ts";
import { machine as describeMachine } from "./lib/machine.ts";
import { section, withSection } from "./lib/sections.ts";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { closingNotes } from "./lib/notes.ts";
import { writeOutputs } from "./lib/outputs.ts";
import { renewalsMarkdown, writeRenewals } from "./lib/renewals-report.ts";
import { signToken } from "./lib/scripts.ts";
import { targets } from "./lib/targets.ts";
import { ROOT, apiWorker, bundle, startWorkerd } from "./lib/workerd.ts";
import { auditPages } from "./scenarios/audit-pages.ts";
import { auditTrail } from "./scenarios/audit.ts";
import { cfssl } from "./scenarios/cfssl.ts";
import { coldStart } from "./scenarios/cold-start.ts";
import { flood } from "./scenarios/flood.ts";
import { floors } from "./scenarios/floors.ts";
import { headOfLine } from "./scenarios/head-of-line.ts";
import { lists } from "./scenarios/lists.ts";
import { npmStartVsDirect } from "./scenarios/npm-start.ts";
import { poolBurst } from "./scenarios/pool-burst.ts";
import { renewals } from "./scenarios/renewals.ts";
import { fleetMetrics, metricsMarkdown } from "./scenarios/metrics.ts";
import { rsaBeyondPool } from "./scenarios/rsa.ts";
import { bytesOnDisk, growthPerCsr } from "./scenarios/storage.ts";
import { wranglerDev } from "./scenarios/wrangler-dev.ts";

const USAGE = `usage: npm run bench [-- --quick] [--no-dev] [--no-cfssl] [--no-renewals] [renewals [--at=<commit>] | metrics]
  --quick        small scopes, short loads (1–2 minutes): bench/out/ only
  --no-dev       skip the npm run dev (wrangler dev) rows
  --no-cfssl     skip the cfssl rows
  --no-renewals  skip the managed-certificate renewals (pebble, about 5 minutes)
  renewals       run only that scenario (about 5 minutes; with --quick about 2): its section of
                 bench/RESULTS.md (unless --quick) and bench/out/renewals.{json,md}
  --at=<commit>  with renewals: npm start from that commit (git archive), not the working tree
  metrics        run only GET /metrics at fleet scale (10,000 zones, 100,000 certificates; about 2 minutes):
                 its section of bench/RESULTS.md (unless --quick) and bench/out/metrics.{json,md}`;

const FLAGS = ["--quick", "--no-dev", "--no-cfssl", "--no-renewals"];
// Scenarios that can run alone, by name.
const ALONE = ["renewals", "metrics"];
const argv = process.argv.slice(2);
if (argv.includes("--help")) {
  console.log(USAGE);
  process.exit(0);
}
const AT = argv.find((a) => a.startsWith("--at="))?.slice("--at=".length);
const unknown = argv.filter((a) => !FLAGS.includes(a) && !ALONE.includes(a) && !a.startsWith("--at="));
if (unknown.length) {
  console.error(`unknown flag or scenario ${unknown.join(", ")}\n${USAGE}`);
  process.exit(2);
}
const QUICK = argv.includes("--quick");
const WITH_DEV = !argv.includes("--no-dev");
const WITH_CFSSL = !argv.includes("--no-cfssl");
const WITH_RENEWALS = !argv.includes("--no-renewals");
const SELECTED = argv.filter((a) => ALONE.includes(a));
if (AT !== undefined && (!SELECTED.includes("renewals") || AT === "")) {
  console.error(`--at=<commit> goes with renewals run alone\n${USAGE}`);
  process.exit(2);
}
const RUN_LIMIT_MS = 40 * 60_000;

// Seconds per load: saturated (C connections) for req/s and loaded
// latency, then one connection for idle latency. RSA loads run longer: a
// 2048-bit key takes 50–150 ms and varies a lot from key to key.
const D: Durations = QUICK ? { load: 3, idle: 2, rsa: 4, rsaRounds: 1 } : { load: 8, idle: 4, rsa: 25, rsaRounds: 3 };
const C = 8;
// Seeding: creates over HTTP (the real path) while they keep this pace;
// below it, the rest goes through the bench-only RPC seeder.
const HTTP_SEED_BUDGET_S = QUICK ? 60 : 240;

const log = (...args: unknown[]) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...args);

async function main(): Promise<void> {
  const started = Date.now();
  const machine = describeMachine();
  log(machine.summary);
  const work = tempDir("csr-bench-");

  // Fresh secrets for this run only; never printed.
  const secrets = freshSecrets("bench");
  const token = signToken(secrets.API_TOKEN_SECRET, { accounts: ["*"], zones: ["*"], ttl: 3 * 3600 });
  log("minted an HS256 API token for this run");

  log("bundling the Worker (wrangler deploy --dry-run)");
  const apiModule = await bundle(join(work, "build"));
  const workerd = await startWorkerd({
    dir: join(work, "workerd"),
    workers: [
      await apiWorker({ module: apiModule, secrets }),
      { name: "floor", module: join(ROOT, "bench/workers/floor.js"), bindings: [{ name: "FLOOR", durableObject: "FloorObject" }], durableObjects: ["FloorObject"] },
      { name: "seed", module: join(ROOT, "bench/workers/seed.js"), bindings: [{ name: "TENANTS", durableObject: "TenantStore", service: "api" }] },
    ],
  });
  onCleanup(workerd.stop);
  const bench = createBench({ quick: QUICK, durations: D, connections: C, work, secrets, token, workerd, httpSeedBudgetSeconds: HTTP_SEED_BUDGET_S, log });
  const { results } = bench;

  // The floors, the runtime's key generation, and the API's hot paths,
  // workerd direct and through `npm start`.
  const floorRows = await floors(bench);
  const rsa = await rsaBeyondPool(bench);
  const npmStartData = await coldStart(bench);
  // One CSR to get: the get rows' target, and scope B's of the burst and flood scenarios.
  const getOne = { url: `${bench.client.api}/zones/bench-get/custom_csrs/${await bench.client.createOne("zones", "bench-get")}`, headers: bench.auth };
  const paired = await npmStartVsDirect(bench, npmStartData, getOne);
  // Lists and the audit trail at growing sizes.
  const listRows = await lists(bench);
  const audit = await auditTrail(bench);
  // One scope's RSA creates against the other scopes' gets.
  const pool = await poolBurst(bench, getOne);
  await headOfLine(bench, getOne);
  // One tenant against the others; one note for both.
  const flooded = await flood(bench, getOne);
  const pages = await auditPages(bench);
  results.notes.push(`${flooded.note} ${pages.note}`);
  // Bytes stored; the files are read once workerd has closed them.
  await growthPerCsr(bench);
  await workerd.stop();
  await bytesOnDisk(bench);
  // The peers: cfssl, and wrangler dev (not with --quick).
  const cfsslP256 = WITH_CFSSL ? await cfssl(bench) : null;
  const devGet = WITH_DEV && !QUICK ? await wranglerDev(bench) : null;
  // Managed certificates against pebble: their own pebble and npm start.
  const renewed = WITH_RENEWALS ? await renewals({ work, secrets, log, quick: QUICK }) : null;
  const renewedMd = renewed ? renewalsMarkdown(renewed, { command: `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`, date: stamp(), machine }) : null;
  if (renewed && renewedMd) writeRenewals(renewed, renewedMd, { committed: false });

  const ratios = targets({
    floors: floorRows,
    rsa,
    direct: { create: paired.create.direct, get: paired.get.direct },
    npmStart: { create: paired.create.start, get: paired.get.start },
    lists: listRows,
    audit,
    pool,
    flood: flooded.during,
    cfsslP256,
    devGet,
  });
  const seconds = (Date.now() - started) / 1000;
  results.notes.push(...closingNotes({ rsa, durations: D, connections: C, rows: results.rows, machine, seconds }));

  const md = writeOutputs(
    {
      date: stamp(),
      command: `npm run bench${argv.length ? ` -- ${argv.join(" ")}` : ""}`,
      machine,
      rows: results.rows,
      targets: ratios,
      startup: results.startup,
      storage: results.storage,
      seeding: results.seeding,
      listPoints: listRows.points,
      notes: results.notes,
      ...(renewedMd ? { sections: { renewals: section("renewals", renewedMd) } } : {}),
    },
    { committed: !QUICK },
  );
  process.stdout.write(md);
  log(`done in ${(seconds / 60).toFixed(1)} min; wrote bench/out/${QUICK ? "" : " and bench/RESULTS.md"}`);
}

const stamp = () => `${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC`;

/**
 * `npm run bench -- renewals`: that scenario alone, with its own servers:
 * bench/out/renewals.{json,md}, and its section of bench/RESULTS.md unless --quick.
 */
async function alone(): Promise<void> {
  const started = Date.now();
  const machine = describeMachine();
  log(machine.summary);
  const work = tempDir("csr-bench-");
  if (SELECTED.includes("metrics")) {
    const report = await fleetMetrics({ work, secrets: freshSecrets("bench"), log, quick: QUICK });
    const md = metricsMarkdown(report, { command: `npm run bench -- ${argv.join(" ")}`, date: stamp(), machine });
    const out = join(ROOT, "bench/out");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "metrics.json"), `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(join(out, "metrics.md"), md);
    if (!QUICK) {
      const file = join(ROOT, "bench/RESULTS.md");
      writeFileSync(file, withSection(existsSync(file) ? readFileSync(file, "utf8") : "# Benchmark: latest results\n", "metrics", section("metrics", md)));
    }
    process.stdout.write(md);
    log(`done in ${((Date.now() - started) / 60000).toFixed(1)} min; wrote bench/out/metrics.{json,md}${QUICK ? "" : " and its section of bench/RESULTS.md"}`);
    return;
  }
  const report = await renewals({ work, secrets: freshSecrets("bench"), log, quick: QUICK, ...(AT === undefined ? {} : { at: AT }) });
  const md = renewalsMarkdown(report, { command: `npm run bench -- ${argv.join(" ")}`, date: stamp(), machine });
  writeRenewals(report, md, { committed: !QUICK });
  process.stdout.write(md);
  log(`done in ${((Date.now() - started) / 60000).toFixed(1)} min; wrote bench/out/renewals.{json,md}${QUICK ? "" : " and its section of bench/RESULTS.md"}`);
}

guard(RUN_LIMIT_MS, log);
runMain(SELECTED.length ? alone : main);
