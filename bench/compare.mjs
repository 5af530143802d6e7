// npm run bench:compare -- <commit> [--rounds=4] [--seconds=5]
//
// Before/after on a noisy machine: the API as of <commit> and as in the
// working tree, each bundled by wrangler and served by its own workerd
// process, loaded in alternation (A, B, A, B, …) so that drift hits both
// alike. Prints req/s and server CPU per request for create p256v1, get and a
// list page of 50 (scope of 100), and B/A. Writes nothing outside a temp dir.
import { execFileSync } from "node:child_process";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import { cleanup, guard, onCleanup, tempDir } from "./lib/lifecycle.mjs";
import { load } from "./lib/load.mjs";
import { ROOT, apiWorker, bundle, startWorkerd } from "./lib/workerd.mjs";
import { signToken } from "../scripts/sign-token.mjs";
import { BODY, freshSecrets } from "./lib/fixtures.mjs";

const args = process.argv.slice(2);
const base = args.find((a) => !a.startsWith("--"));
const flag = (name, fallback) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const ROUNDS = flag("rounds", 4);
const SECONDS = flag("seconds", 5);
if (!base) {
  console.error("usage: npm run bench:compare -- <commit> [--rounds=4] [--seconds=5]");
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

main()
  .catch((error) => {
    console.error(error.stack ?? error);
    process.exitCode = 1;
  })
  .finally(cleanup);
