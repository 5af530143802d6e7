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
import { cleanup, guard, onCleanup, tempDir } from "./lib/lifecycle.mjs";
import { combine, load } from "./lib/load.mjs";
import { ROOT, apiWorker, bundle, startWorkerd } from "./lib/workerd.mjs";
import { signToken } from "../scripts/sign-token.mjs";
import { BODY, freshSecrets } from "./lib/fixtures.mjs";

const args = process.argv.slice(2);
const base = args.find((a) => !a.startsWith("--"));
const flag = (name, fallback) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const ROUNDS = flag("rounds", 4);
const SECONDS = flag("seconds", 5);
const BURST = args.includes("--burst");
const POOL = 32;
if (!base) {
  console.error("usage: npm run bench:compare -- <commit> [--rounds=4] [--seconds=5] [--burst]");
  process.exit(2);
}


async function serve(name, config, work, secrets) {
  const module = await bundle(join(work, `${name}-build`), { config });
  const w = await startWorkerd({
    dir: join(work, `${name}-workerd`),
    // Each side bound as its own wrangler.toml says.
    workers: [await apiWorker({ module, config, secrets })],
  });
  onCleanup(w.stop);
  return w;
}

async function main() {
  guard(15 * 60 * 1000, (message) => console.error(`[compare] ${message}`));
  const work = tempDir("csr-compare-");
  const tree = join(work, "base");
  execFileSync("git", ["worktree", "add", "--detach", tree, base], { cwd: ROOT, stdio: "ignore" });
  onCleanup(() => execFileSync("git", ["worktree", "remove", "--force", tree], { cwd: ROOT, stdio: "ignore" }));
  symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));

  const secrets = freshSecrets("cmp");
  const headers = { authorization: `Bearer ${signToken(secrets.API_TOKEN_SECRET, { accounts: ["*"], zones: ["*"], ttl: 3600 })}` };
  const sides = [
    { label: `A (${base})`, server: await serve("a", join(tree, "wrangler.toml"), work, secrets) },
    { label: "B (working tree)", server: await serve("b", join(ROOT, "wrangler.toml"), work, secrets) },
  ];

  for (const side of sides) {
    const api = `http://127.0.0.1:${side.server.ports.api}/client/v4`;
    const body = { ...BODY, key_type: "p256v1" };
    const create = (id) => ({ url: `${api}/zones/${id}/custom_csrs`, method: "POST", headers, body });
    await load({ ...create("cmp-list"), connections: 8, amount: 100 });
    const made = await fetch(create("cmp-get").url, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) });
    const id = (await made.json()).result.id;
    side.targets = {
      "create p256v1": create("cmp-create"),
      "get one CSR": { url: `${api}/zones/cmp-get/custom_csrs/${id}`, headers },
      "list 50 of 100": { url: `${api}/zones/cmp-list/custom_csrs?per_page=50`, headers },
    };
  }

  if (BURST) return compareBursts(sides, secrets, headers);
  const rows = [];
  for (const scenario of Object.keys(sides[0].targets)) {
    const totals = sides.map(() => ({ requests: 0, seconds: 0, cpu: 0, failed: 0 }));
    for (let round = 0; round < ROUNDS; round++) {
      // Alternate which side goes first, so neither always follows the other.
      const order = round % 2 ? [1, 0] : [0, 1];
      for (const i of order) {
        const r = await load({ ...sides[i].targets[scenario], connections: 8, duration: SECONDS, pid: sides[i].server.pid });
        totals[i].requests += r.requests;
        totals[i].seconds += r.seconds;
        totals[i].cpu += r.cores * r.seconds;
        totals[i].failed += r.non2xx + r.errors;
      }
    }
    const [a, b] = totals.map((t) => ({ rps: t.requests / t.seconds, cpuUs: (t.cpu * 1e6) / t.requests, failed: t.failed }));
    rows.push({ scenario, a, b });
  }

  const f = (n) => Math.round(n).toLocaleString("en");
  console.log(`\n${ROUNDS} alternating rounds of ${SECONDS} s per side, 8 connections; A = ${base}, B = working tree.\n`);
  console.log("| scenario | A req/s | B req/s | B/A req/s | A CPU µs/req | B CPU µs/req | B/A CPU | failed A/B |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
  for (const { scenario, a, b } of rows) {
    console.log(
      `| ${scenario} | ${f(a.rps)} | ${f(b.rps)} | ${(b.rps / a.rps).toFixed(2)} | ${f(a.cpuUs)} | ${f(b.cpuUs)} | ${(b.cpuUs / a.cpuUs).toFixed(2)} | ${a.failed}/${b.failed} |`,
    );
  }
}

async function compareBursts(sides, secrets, headers) {
  const admin = { authorization: `Bearer ${secrets.ADMIN_SECRET}`, "content-type": "application/json" };
  for (const side of sides) {
    const origin = `http://127.0.0.1:${side.server.ports.api}`;
    side.poolUrl = `${origin}/admin/v1/zones/cmp-pool/key_pool`;
    await fetch(side.poolUrl, { method: "PUT", headers: admin, body: JSON.stringify({ size: POOL }) });
    const body = { ...BODY, key_type: "p256v1" };
    const made = await fetch(`${origin}/client/v4/zones/cmp-pool/custom_csrs`, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: JSON.stringify(body) });
    side.getA = { url: `${origin}/client/v4/zones/cmp-pool/custom_csrs/${(await made.json()).result.id}`, headers };
    side.getB = side.targets["get one CSR"];
    side.burst = { url: `${origin}/client/v4/zones/cmp-pool/custom_csrs`, method: "POST", headers, body: { ...BODY, key_type: "rsa2048" } };
    side.runs = { idleA: [], idleB: [], creates: [], a: [], b: [] };
  }
  // Pools fill only while their server is idle: poll both, slowly, until full.
  const poolsFull = async () => {
    for (const deadline = Date.now() + 180_000; Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 1_000));
      const available = await Promise.all(sides.map(async (side) => (await (await fetch(side.poolUrl, { headers: admin })).json()).result.available));
      if (available.every((n) => n >= POOL)) return;
    }
    throw new Error("the key pools did not fill within 3 minutes");
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const i of round % 2 ? [1, 0] : [0, 1]) {
      const side = sides[i];
      await poolsFull();
      side.runs.idleA.push(await load({ ...side.getA, connections: 1, duration: 2 }));
      side.runs.idleB.push(await load({ ...side.getB, connections: 1, duration: 2 }));
      const burst = load({ ...side.burst, connections: 4, amount: POOL });
      const [creates, a, b] = await Promise.all([
        burst,
        load({ ...side.getA, connections: 1, duration: 120, stopWhen: burst }),
        load({ ...side.getB, connections: 1, duration: 120, stopWhen: burst }),
      ]);
      side.runs.creates.push(creates);
      side.runs.a.push(a);
      side.runs.b.push(b);
    }
  }
  const ms = (n) => n.toFixed(2);
  console.log(`\n${ROUNDS} alternating rounds per side of a burst of ${POOL} rsa2048 creates (4 connections, pool full); A = ${base}, B = working tree.\n`);
  console.log("| side | create p50 ms | create p99 ms | get A p50 / p99 ms | get A idle p99 ms | get A p99 / idle p99 | get B p50 / p99 ms | get B idle p99 ms | get B p99 / idle p99 | failed |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const side of sides) {
    const [creates, a, b, idleA, idleB] = ["creates", "a", "b", "idleA", "idleB"].map((k) => combine(side.runs[k]));
    const failed = [creates, a, b].reduce((n, r) => n + r.non2xx + r.errors, 0);
    console.log(
      `| ${side.label} | ${ms(creates.p50)} | ${ms(creates.p99)} | ${ms(a.p50)} / ${ms(a.p99)} | ${ms(idleA.p99)} | ${(a.p99 / idleA.p99).toFixed(2)} | ` +
        `${ms(b.p50)} / ${ms(b.p99)} | ${ms(idleB.p99)} | ${(b.p99 / idleB.p99).toFixed(2)} | ${failed} |`,
    );
  }
}

main()
  .catch((error) => {
    console.error(error.stack ?? error);
    process.exitCode = 1;
  })
  .finally(cleanup);
