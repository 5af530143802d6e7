// npm run bench:compare -- <commit> [--rounds=4] [--seconds=5] [--burst]
//
// Before/after on a noisy machine: the API as of <commit> and as in the
// working tree, each bundled by wrangler and served by its own workerd
// process, loaded in alternation (A, B, A, B, …) so that drift hits both
// alike. Prints req/s and server CPU per request for create p256v1, get and a
// list page of 50 (scope of 100), and B/A. With --burst, instead: rounds of
// a burst of 32 rsa2048 creates (4 connections) into a scope whose key pool
// is full, while one connection gets a CSR of that scope and one a CSR of
// another (npm run bench's pool-burst scenario), both pools full before each
// burst so that no key generation overlaps a measurement. Writes nothing
// outside a temp dir.
import { execFileSync } from "node:child_process";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import type { ApiClient } from "./lib/api-client.ts";
import { apiClient } from "./lib/api-client.ts";
import type { Secrets } from "./lib/fixtures.ts";
import { BODY, freshSecrets } from "./lib/fixtures.ts";
import { guard, onCleanup, runMain, tempDir } from "./lib/lifecycle.ts";
import type { Endpoint, Headers, LoadResult } from "./lib/load.ts";
import { combine, load } from "./lib/load.ts";
import { signToken } from "./lib/scripts.ts";
import type { Workerd } from "./lib/workerd.ts";
import { ROOT, apiWorker, bundle, startWorkerd } from "./lib/workerd.ts";

const USAGE = "usage: npm run bench:compare -- <commit> [--rounds=4] [--seconds=5] [--burst]";
const args = process.argv.slice(2);
const base = args.find((a) => !a.startsWith("--"));
const flag = (name: string, fallback: number) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const ROUNDS = flag("rounds", 4);
const SECONDS = flag("seconds", 5);
const BURST = args.includes("--burst");
const POOL = 32;
if (args.includes("--help")) {
  console.log(USAGE);
  process.exit(0);
}
if (!base) {
  console.error(USAGE);
  process.exit(2);
}

const SCENARIOS = ["create p256v1", "get one CSR", "list 50 of 100"] as const;
type Scenario = (typeof SCENARIOS)[number];

/** One side of the comparison: its server and what is loaded on it. */
interface Side {
  label: string;
  server: Workerd<"api">;
  client: ApiClient;
  targets: Record<Scenario, Endpoint>;
}

async function serve(name: string, config: string, work: string, secrets: Secrets): Promise<Workerd<"api">> {
  const module = await bundle(join(work, `${name}-build`), { config });
  const w = await startWorkerd({
    dir: join(work, `${name}-workerd`),
    // Each side bound as its own wrangler.toml says.
    workers: [await apiWorker({ module, config, secrets })],
  });
  onCleanup(w.stop);
  return w;
}

async function main(commit: string): Promise<void> {
  guard(15 * 60 * 1000, (message) => console.error(`[compare] ${String(message)}`));
  const work = tempDir("csr-compare-");
  const tree = join(work, "base");
  execFileSync("git", ["worktree", "add", "--detach", tree, commit], { cwd: ROOT, stdio: "ignore" });
  onCleanup(() => execFileSync("git", ["worktree", "remove", "--force", tree], { cwd: ROOT, stdio: "ignore" }));
  symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));

  const secrets = freshSecrets("cmp");
  const headers = { authorization: `Bearer ${signToken(secrets.API_TOKEN_SECRET, { accounts: ["*"], zones: ["*"], ttl: 3600 })}` };
  const admin = { authorization: `Bearer ${secrets.ADMIN_SECRET}` };
  const side = async (label: string, server: Workerd<"api">): Promise<Side> => {
    const fail = (what: string): never => {
      throw new Error(`${label}: ${what}; its workerd log ends:\n${server.logTail()}`);
    };
    const client = apiClient({ origin: `http://127.0.0.1:${server.ports.api}`, auth: headers, admin, body: BODY, fail });
    await load({ ...client.create("zones", "cmp-list", "p256v1"), connections: 8, amount: 100 });
    const id = await client.createOne("zones", "cmp-get");
    return {
      label,
      server,
      client,
      targets: {
        "create p256v1": client.create("zones", "cmp-create", "p256v1"),
        "get one CSR": { url: `${client.api}/zones/cmp-get/custom_csrs/${id}`, headers },
        "list 50 of 100": { url: `${client.api}/zones/cmp-list/custom_csrs?per_page=50`, headers },
      },
    };
  };
  const serverA = await serve("a", join(tree, "wrangler.toml"), work, secrets);
  const serverB = await serve("b", join(ROOT, "wrangler.toml"), work, secrets);
  const a = await side(`A (${commit})`, serverA);
  const b = await side("B (working tree)", serverB);
  if (BURST) return compareBursts(commit, [a, b], headers);

  const rows: Array<{ scenario: Scenario; a: Totals; b: Totals }> = [];
  for (const scenario of SCENARIOS) {
    const totals = [a, b].map(() => ({ requests: 0, seconds: 0, cpu: 0, failed: 0 }));
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so neither always follows the other.
      for (const i of round % 2 ? [1, 0] : [0, 1]) {
        const s = i ? b : a;
        const t = totals[i]!;
        const r = await load({ ...s.targets[scenario], connections: 8, duration: SECONDS, pid: s.server.pid });
        t.requests += r.requests;
        t.seconds += r.seconds;
        t.cpu += (r.cores ?? 0) * r.seconds;
        t.failed += r.non2xx + r.errors;
      }
    }
    const [ta, tb] = totals.map((t) => ({ rps: t.requests / t.seconds, cpuUs: (t.cpu * 1e6) / t.requests, failed: t.failed }));
    rows.push({ scenario, a: ta!, b: tb! });
  }

  const f = (n: number) => Math.round(n).toLocaleString("en");
  console.log(`\n${ROUNDS} alternating rounds of ${SECONDS} s per side, 8 connections; A = ${commit}, B = working tree.\n`);
  console.log("| scenario | A req/s | B req/s | B/A req/s | A CPU µs/req | B CPU µs/req | B/A CPU | failed A/B |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const { scenario, a: ra, b: rb } of rows) {
    console.log(
      `| ${scenario} | ${f(ra.rps)} | ${f(rb.rps)} | ${(rb.rps / ra.rps).toFixed(2)} | ${f(ra.cpuUs)} | ${f(rb.cpuUs)} | ${(rb.cpuUs / ra.cpuUs).toFixed(2)} | ${ra.failed}/${rb.failed} |`,
    );
  }
}

/** One side's sums over its rounds of one scenario. */
interface Totals {
  rps: number;
  cpuUs: number;
  failed: number;
}

type BurstRuns = Record<"idleA" | "idleB" | "creates" | "a" | "b", LoadResult[]>;

async function compareBursts(commit: string, sides: [Side, Side], headers: Headers): Promise<void> {
  const prepared: Array<{ side: Side; getA: Endpoint; getB: Endpoint; burst: Endpoint; runs: BurstRuns }> = [];
  for (const side of sides) {
    await side.client.setKeyPool("zones", "cmp-pool", POOL);
    const getA = { url: `${side.client.api}/zones/cmp-pool/custom_csrs/${await side.client.createOne("zones", "cmp-pool")}`, headers };
    const runs: BurstRuns = { idleA: [], idleB: [], creates: [], a: [], b: [] };
    prepared.push({ side, getA, getB: side.targets["get one CSR"], burst: side.client.create("zones", "cmp-pool", "rsa2048"), runs });
  }
  // Pools fill only while their server is idle: poll both, slowly, until full.
  const poolsFull = async () => {
    for (const deadline = Date.now() + 180_000; Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 1_000));
      const available = await Promise.all(sides.map((side) => side.client.poolAvailable("zones", "cmp-pool")));
      if (available.every((n) => n >= POOL)) return;
    }
    throw new Error("the key pools did not fill within 3 minutes");
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const i of round % 2 ? [1, 0] : [0, 1]) {
      const { getA, getB, burst: burstTarget, runs } = prepared[i]!;
      await poolsFull();
      runs.idleA.push(await load({ ...getA, connections: 1, duration: 2 }));
      runs.idleB.push(await load({ ...getB, connections: 1, duration: 2 }));
      const burst = load({ ...burstTarget, connections: 4, amount: POOL });
      const [creates, a, b] = await Promise.all([
        burst,
        load({ ...getA, connections: 1, duration: 120, stopWhen: burst }),
        load({ ...getB, connections: 1, duration: 120, stopWhen: burst }),
      ]);
      runs.creates.push(creates);
      runs.a.push(a);
      runs.b.push(b);
    }
  }
  const ms = (n: number | null) => (n === null ? "–" : n.toFixed(2));
  const over = (x: number | null, y: number | null) => (x === null || y === null ? "–" : (x / y).toFixed(2));
  console.log(`\n${ROUNDS} alternating rounds per side of a burst of ${POOL} rsa2048 creates (4 connections, pool full); A = ${commit}, B = working tree.\n`);
  console.log("| side | create p50 ms | create p99 ms | get A p50 / p99 ms | get A idle p99 ms | get A p99 / idle p99 | get B p50 / p99 ms | get B idle p99 ms | get B p99 / idle p99 | failed |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const { side, runs } of prepared) {
    const creates = combine(runs.creates);
    const a = combine(runs.a);
    const b = combine(runs.b);
    const idleA = combine(runs.idleA);
    const idleB = combine(runs.idleB);
    const failed = [creates, a, b].reduce((n, r) => n + r.non2xx + r.errors, 0);
    console.log(
      `| ${side.label} | ${ms(creates.p50)} | ${ms(creates.p99)} | ${ms(a.p50)} / ${ms(a.p99)} | ${ms(idleA.p99)} | ${over(a.p99, idleA.p99)} | ` +
        `${ms(b.p50)} / ${ms(b.p99)} | ${ms(idleB.p99)} | ${over(b.p99, idleB.p99)} | ${failed} |`,
    );
  }
}

runMain(() => main(base));
