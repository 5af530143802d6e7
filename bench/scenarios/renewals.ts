// Managed certificates (docs/acme.md) against a real ACME CA: how long a
// custom hostname created with ssl {method: "http"} takes to be `active`,
// alone and in a burst, and how many renewals a minute `npm start` sustains.
//
// pebble issues certificates that live LIFETIME s, and the server renews
// them when RENEW_BEFORE of that is left: at 0.98, a certificate is due
// about a second after it was issued, so every hostname is always due again
// and the renewals completed in the window are what the server (with pebble
// beside it) can do, not what a schedule asks of it. Each setup runs on its
// own pebble and `npm start` (fresh data directory): many zones (the zones'
// objects renew in parallel), then one zone (its object orders one step at
// a time). The audit trail says where each renewal's time went: from
// `renew_at` to its order (waiting for the zone's alarm), and from the order
// to the installation (at the CA, and the server's steps between).
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import type { Secrets } from "../lib/fixtures.ts";
import type { Log } from "../lib/lifecycle.ts";
import { cpuOf, quantile } from "../lib/load.ts";
import { sourceAt, startNpmStart } from "../lib/peers.ts";
import { type Pebble, pebbleMissing, startPebble } from "../lib/pebble.ts";
import { hostnamesClient } from "../lib/hostnames-client.ts";
import { type RenewalTimes, renewalTimes } from "../lib/renewals-audit.ts";
import { ROOT, signToken } from "../lib/scripts.ts";

/** One setup: its own pebble and server. */
export interface RenewalSetup {
  hostnames: number;
  zones: number;
  /** pebble's certificateValidityPeriod, seconds. */
  lifetimeS: number;
  /** The server's RENEW_BEFORE. */
  renewBefore: string;
  /** Seconds between the burst's last activation and the window, for the renewals to spread out. */
  warmupS: number;
  /** Seconds renewals are counted. */
  windowS: number;
  /** Hostnames created one at a time, each in an otherwise idle server, before the burst. */
  idleRuns: number;
}

const MANY: RenewalSetup = { hostnames: 400, zones: 10, lifetimeS: 60, renewBefore: "0.98", warmupS: 20, windowS: 60, idleRuns: 3 };
const ONE: RenewalSetup = { hostnames: 150, zones: 1, lifetimeS: 60, renewBefore: "0.98", warmupS: 15, windowS: 45, idleRuns: 0 };
const QUICK: RenewalSetup[] = [
  { ...MANY, hostnames: 100, zones: 10, warmupS: 10, windowS: 30, idleRuns: 1 },
  { ...ONE, hostnames: 60, warmupS: 10, windowS: 20 },
];
const KEYS: Record<string, keyof RenewalSetup> = { hostnames: "hostnames", zones: "zones", lifetime: "lifetimeS", renew_before: "renewBefore", warmup: "warmupS", window: "windowS", idle: "idleRuns" };

/** The setups: BENCH_RENEWALS="hostnames=200 zones=5 window=120 …" runs one setup of its own (for finding a ceiling). */
export function renewalSetups(quick: boolean, raw = process.env.BENCH_RENEWALS ?? ""): RenewalSetup[] {
  if (raw.trim() === "") return quick ? QUICK : [MANY, ONE];
  const setup = { ...(quick ? QUICK[0]! : MANY) };
  for (const pair of raw.split(/[\s,]+/).filter(Boolean)) {
    const [name, value] = pair.split("=");
    const key = KEYS[name ?? ""];
    if (!key || value === undefined || value === "") throw new Error(`BENCH_RENEWALS: ${pair} is not one of ${Object.keys(KEYS).join(", ")}=value`);
    if (key === "renewBefore") setup.renewBefore = value;
    else if (/^\d+$/.test(value)) setup[key] = Number(value);
    else throw new Error(`BENCH_RENEWALS: ${name} must be an integer`);
  }
  return [setup];
}

/** Milliseconds, summarised. */
export interface Spread {
  n: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}

/** What one setup measured. */
export interface SetupReport {
  setup: RenewalSetup;
  /** create → active of a hostname alone, each run (the first pays the zone's ACME account). */
  idleMs: number[];
  /** create → active of the burst's hostnames, all created at once. */
  burst: Spread & { seconds: number; notActive: number };
  window: {
    seconds: number;
    renewals: number;
    perMinute: number;
    /** Renewals by zone. */
    perZone: number[];
    /** renew_at → order placed: waiting for the zone's alarm. */
    queued: Spread;
    /** order placed → certificate installed. */
    atCa: Spread;
    /** Failed steps (audit entries with result false), by message. */
    failures: Record<string, number>;
    /** Hostnames not `active` at the end (a certificate lapsed: `expired`), by status. */
    notActive: Record<string, number>;
    /** What the hostnames' validation_errors said at the end, by message (digits masked). */
    errors: Record<string, number>;
    /** Lines of the server's stderr (its error log), by event. */
    serverErrors: Record<string, number>;
  };
  /** Certificates installed (first or renewed) in each 10 s from the burst's start: the run's shape, a stall included. */
  timeline: number[];
  /** pebble's requests that never finished (see Pebble.stuckRequests): more than 0 means pebble deadlocked and the figure is not the server's. */
  pebbleStuck: number;
  /** Attempts abandoned before this one because pebble deadlocked. */
  deadlocks: number;
  /** Where the logs of pebble and the server were copied, when something failed. */
  logs: string | null;
  /** CPU cores used over the window (CPU seconds / wall seconds), CPU ms per renewal; `machine`: every process, the other users' included. */
  cpu: { server: number; pebble: number; harness: number; machine: number; serverMsPerRenewal: number | null; pebbleMsPerRenewal: number | null };
}

/** The scenario's outcome: the code it ran (a commit, or the working tree) and each setup, or why it did not run. */
export type RenewalsReport = { source: string; setups: SetupReport[] } | { skipped: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return { n: sorted.length, p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? null };
}

/** CPU seconds every CPU of the machine has been busy (not idle, not waiting for I/O), from /proc/stat. */
function machineBusySeconds(): number {
  const fields = (readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - (fields[3] ?? 0) - (fields[4] ?? 0)) / 100;
}

/** Counts of `keys`. */
function tally(keys: Iterable<string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

/** Copies a troubled setup's logs to bench/out/renewals-logs/<n>/ (git-ignored); that directory. */
function keepLogs(n: number, files: string[]): string {
  const out = join(ROOT, `bench/out/renewals-logs/${n}`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  for (const file of files) if (existsSync(file)) copyFileSync(file, join(out, basename(file)));
  return `bench/out/renewals-logs/${n}/`;
}

/**
 * Runs every setup in `work` with the run's secrets, one after the other,
 * each on its own pebble and `npm start`, stopped before the next. A note
 * instead when pebble is not installed.
 */
export async function renewals({ work, secrets, log, quick, at }: { work: string; secrets: Secrets; log: Log; quick: boolean; at?: string }): Promise<RenewalsReport> {
  const missing = pebbleMissing(log);
  if (missing) return { skipped: `Managed-certificate renewals: skipped: ${missing}` };
  // The server from a commit (--at), else from the working tree as the other scenarios run it.
  let root = ROOT;
  let source = "the working tree";
  if (at !== undefined) {
    root = join(work, "renewals-source");
    source = `commit ${sourceAt(at, root)}`;
    log(`renewals: npm start from ${source}`);
  }
  const setups: SetupReport[] = [];
  rmSync(join(ROOT, "bench/out/renewals-logs"), { recursive: true, force: true });
  for (const [n, setup] of renewalSetups(quick).entries()) setups.push(await runSetup(n, setup, { dir: join(work, `renewals-${n}`), secrets, log, root }));
  return { source, setups };
}

// pebble 2.4 can deadlock under concurrent orders (bench/README.md): a setup it happens in is run again from scratch.
const ATTEMPTS = 3;

/** pebble stopped answering (requests stuck in it): the attempt is abandoned. */
class PebbleDeadlock extends Error {}

async function runSetup(n: number, S: RenewalSetup, { dir, secrets, log, root }: { dir: string; secrets: Secrets; log: Log; root: string }): Promise<SetupReport> {
  for (let attempt = 1; ; attempt++) {
    const at = join(dir, `attempt-${attempt}`);
    mkdirSync(join(at, "pebble"), { recursive: true });
    const pebble = await startPebble({ dir: join(at, "pebble"), validitySeconds: S.lifetimeS });
    log(`renewals ${n}${attempt > 1 ? ` (attempt ${attempt})` : ""}: ${S.hostnames} hostnames over ${S.zones} zone(s); pebble certificates live ${S.lifetimeS} s, RENEW_BEFORE=${S.renewBefore}`);
    const stderrFile = join(at, "server.stderr");
    const server = await startNpmStart({
      dataDir: join(at, "data"),
      secrets,
      flags: ["--ca-file", pebble.listenerCaFile, "--allow-private-outbound"],
      env: { ACME_DIRECTORIES: JSON.stringify({ pebble: { directory: pebble.directoryUrl } }), ACME_DEFAULT_CA: "pebble", RENEW_BEFORE: S.renewBefore },
      stderrFile,
      root,
    });
    try {
      await pebble.proxyTo(server.url);
      // The last attempt is measured to its end whatever pebble does: its report then says pebble deadlocked.
      const report = await measure(n, S, { pebble, server, secrets, log, dir: at, stderrFile, abortOnDeadlock: attempt < ATTEMPTS });
      return { ...report, deadlocks: attempt - 1 };
    } catch (error) {
      if (!(error instanceof PebbleDeadlock)) throw error;
      const logs = keepLogs(n, [join(at, "pebble", "pebble.log"), join(at, "pebble", "challtestsrv.log"), stderrFile]);
      log(`renewals ${n}: ${error.message} (logs in ${logs}); the setup is run again from scratch`);
    } finally {
      await server.stop();
      await pebble.stop();
    }
  }
}

async function measure(
  n: number,
  S: RenewalSetup,
  {
    pebble,
    server,
    secrets,
    log,
    dir,
    stderrFile,
    abortOnDeadlock,
  }: { pebble: Pebble; server: { url: string; pids: () => number[] }; secrets: Secrets; log: Log; dir: string; stderrFile: string; abortOnDeadlock: boolean },
): Promise<Omit<SetupReport, "deadlocks">> {
  const watch = (): void => {
    const stuck = pebble.stuckRequests();
    if (abortOnDeadlock && stuck > 0) throw new PebbleDeadlock(`pebble deadlocked (${stuck} of its requests never finished)`);
  };
  const auth = { authorization: `Bearer ${signToken(secrets.API_TOKEN_SECRET, { accounts: [], zones: ["*"], ttl: 3600 })}` };
  const fail = (what: string): never => {
    throw new Error(`renewals: ${what}\n--- pebble ---\n${pebble.logTail(15)}`);
  };
  const api = hostnamesClient({ origin: server.url, auth, fail });

  // 1. One hostname at a time, in an otherwise idle server; deleted after, so that its renewals do not count.
  const idleMs: number[] = [];
  for (let i = 0; i < S.idleRuns; i++) {
    const started = performance.now();
    const id = await api.create("renewals-idle", `idle${i}.renewals-bench.com`);
    while ((await api.status("renewals-idle", id)) !== "active") {
      if (performance.now() - started > 60_000) fail(`idle${i} was not active within 60 s`);
      await sleep(50);
    }
    idleMs.push(performance.now() - started);
    await api.remove("renewals-idle", id);
  }
  if (idleMs.length) log(`renewals ${n}: alone, create → active ${idleMs.map((ms) => `${Math.round(ms)} ms`).join(", ")}`);

  // 2. The burst: every hostname created at once, spread over the zones; each zone listed every 250 ms.
  const zones = Array.from({ length: S.zones }, (_, k) => `renewals-z${k}`);
  const sent = new Map<string, number>();
  const burstStart = performance.now();
  const burstEpoch = Date.now();
  await Promise.all(
    Array.from({ length: S.hostnames }, async (_, i) => {
      const t = performance.now();
      sent.set(await api.create(zones[i % S.zones]!, `h${i}.renewals-bench.com`), t);
    }),
  );
  const activeMs: number[] = [];
  const seen = new Set<string>();
  while (seen.size < S.hostnames && performance.now() - burstStart < 180_000) {
    await sleep(250);
    watch();
    for (const states of await Promise.all(zones.map(api.states))) {
      const now = performance.now();
      for (const [id, { status }] of states) {
        if (status !== "active" || seen.has(id)) continue;
        seen.add(id);
        activeMs.push(now - sent.get(id)!);
      }
    }
  }
  const burst = { ...spread(activeMs), seconds: (performance.now() - burstStart) / 1000, notActive: S.hostnames - seen.size };
  log(`renewals ${n}: burst, create → active p50 ${Math.round(burst.p50 ?? 0)} ms, p99 ${Math.round(burst.p99 ?? 0)} ms; ${burst.notActive} not active`);

  // 3. Renewals counted over a window, after a warm-up that lets the first wave spread out.
  for (let waited = 0; waited < S.warmupS; waited++) {
    await sleep(1000);
    watch();
  }
  const cpu = () => ({ server: cpuOf(server.pids), pebble: cpuOf(pebble.pid), harness: process.cpuUsage(), machine: machineBusySeconds(), wall: performance.now() });
  const from = Date.now();
  const before = cpu();
  log(`renewals ${n}: counting renewals for ${S.windowS} s`);
  while (performance.now() - before.wall < S.windowS * 1000) {
    await sleep(Math.min(1000, S.windowS * 1000 - (performance.now() - before.wall)));
    watch();
  }
  const after = cpu();
  const to = Date.now();
  const pebbleStuck = pebble.stuckRequests();
  const wallS = (after.wall - before.wall) / 1000;

  // 4. The zones' audit trails: every renewal's steps, and the failures; then each hostname's state.
  const times: RenewalTimes = { renewals: 0, perZone: [], queuedMs: [], atCaMs: [], failures: {}, installs: [] };
  for (const zone of zones) renewalTimes(await api.audit(zone), from, to, times);
  const ended = (await Promise.all(zones.map(api.states))).flatMap((states) => [...states.values()]);
  const notActive = tally(ended.filter((h) => h.status !== "active").map((h) => h.status));
  const errors = tally(ended.flatMap((h) => h.errors.map((e) => e.replace(/\/[A-Za-z0-9_-]{20,}/g, "/…").replace(/\d+/g, "N"))));
  const serverErrors = tally(
    (existsSync(stderrFile) ? readFileSync(stderrFile, "utf8") : "")
      .split("\n")
      .filter(Boolean)
      .map((line) => /"event":"([^"]+)"/.exec(line)?.[1] ?? line.slice(0, 120)),
  );
  const timeline: number[] = [];
  for (const at of times.installs) {
    const bucket = Math.floor((at - burstEpoch) / 10_000);
    if (bucket < 0) continue;
    while (timeline.length <= bucket) timeline.push(0);
    timeline[bucket]!++;
  }
  const troubled = pebbleStuck > 0 || burst.notActive > 0 || [notActive, errors, serverErrors, times.failures].some((t) => Object.keys(t).length > 0);
  const logs = troubled ? keepLogs(n, [join(dir, "pebble", "pebble.log"), join(dir, "pebble", "challtestsrv.log"), stderrFile]) : null;
  const serverS = after.server - before.server;
  const pebbleS = after.pebble - before.pebble;
  const harnessS = (after.harness.user - before.harness.user + after.harness.system - before.harness.system) / 1e6;
  const report: Omit<SetupReport, "deadlocks"> = {
    setup: S,
    idleMs,
    burst,
    window: {
      seconds: wallS,
      renewals: times.renewals,
      perMinute: (times.renewals * 60) / wallS,
      perZone: times.perZone,
      queued: spread(times.queuedMs),
      atCa: spread(times.atCaMs),
      failures: times.failures,
      notActive,
      errors,
      serverErrors,
    },
    timeline,
    pebbleStuck,
    logs,
    cpu: {
      server: serverS / wallS,
      pebble: pebbleS / wallS,
      harness: harnessS / wallS,
      machine: (after.machine - before.machine) / wallS,
      serverMsPerRenewal: times.renewals ? (serverS * 1000) / times.renewals : null,
      pebbleMsPerRenewal: times.renewals ? (pebbleS * 1000) / times.renewals : null,
    },
  };
  log(
    `renewals ${n}: ${times.renewals} in ${wallS.toFixed(0)} s = ${report.window.perMinute.toFixed(0)}/min; cores: server ${report.cpu.server.toFixed(2)}, pebble ${report.cpu.pebble.toFixed(2)}, machine ${report.cpu.machine.toFixed(2)}` +
      (pebbleStuck ? `; pebble has ${pebbleStuck} stuck requests (deadlocked)` : "") +
      (logs ? `; logs in ${logs}` : ""),
  );
  return report;
}
