// npm run bench: throughput and latency of the Custom CSR API in workerd as
// production runs it, beside cfssl's newkey, the runtime's floor, and
// `wrangler dev`. Writes bench/out/{results.json,results.md,list-latency.svg}
// and bench/RESULTS.md. Bounded: every load has a fixed duration; all
// processes and temp dirs are removed on exit.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpus, totalmem } from "node:os";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDevVars } from "../scripts/dev-vars.mjs";
import { signToken } from "../scripts/sign-token.mjs";
import { load } from "./lib/load.mjs";
import { freePort, waitForHttp } from "./lib/net.mjs";
import { listChart, markdown } from "./lib/report.mjs";
import { buildWorker, startWorkerd, stopProcess } from "./lib/workerd.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const OUT = join(ROOT, "bench/out");
const QUICK = process.argv.includes("--quick"); // smaller scopes and shorter runs, for trying the harness
const DURATION = QUICK ? 3 : 8;
const LIST_SIZES = QUICK ? [100, 1000] : [100, 10_000, 100_000];

const work = mkdtempSync(join(tmpdir(), "csr-bench-"));
const cleanups = [];
async function cleanup() {
  for (const fn of cleanups.reverse()) await fn().catch(() => {});
  rmSync(work, { recursive: true, force: true });
}
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => cleanup().then(() => process.exit(130)));

const log = (...args) => console.error("[bench]", ...args);
const compatibilityDate = /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync(join(ROOT, "wrangler.toml"), "utf8"))[1];
const BODY = {
  common_name: "app.customer-one.com",
  country: "US",
  state: "California",
  locality: "San Francisco",
  organization: "Customer One",
  sans: ["app.customer-one.com", "www.customer-one.com"],
};

const rows = [];
function record(name, path, result) {
  rows.push({ name, path, ...result });
  log(`${name}: ${result.rps.toFixed(1)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms, non-2xx ${result.non2xx + result.errors}`);
  return result;
}

async function main() {
  const secrets = {
    KEY_ENCRYPTION_KEYS: `bench:${randomBytes(32).toString("base64")}`,
    API_TOKEN_SECRET: randomBytes(32).toString("base64url"),
    ADMIN_SECRET: randomBytes(24).toString("base64url"),
    GLOBAL_API_KEYS: "[]",
    API_TOKEN_JWKS: "",
    DEFAULT_CSR_ACCESS: "granted",
    DEFAULT_CSR_QUOTA: "1000000",
  };
  const token = signToken(secrets.API_TOKEN_SECRET, { accounts: ["*"], zones: ["*"], ttl: 3600 });
  log("minted a bench token");
  const auth = { authorization: `Bearer ${token}` };

  log("building the Worker");
  const bundle = buildWorker(join(work, "build"));
  const w = await startWorkerd({ dir: work, bundle, secrets, compatibilityDate });
  cleanups.push(w.stop);
  const api = `http://127.0.0.1:${w.ports.api}`;
  const floorUrl = `http://127.0.0.1:${w.ports.floor}`;
  // Fills a scope to exactly `count` more CSRs. The object's own count (the
  // admin entitlement's `used`) is the truth: a batch cut off by a dropped
  // keep-alive connection is simply topped up. RSA keys take ~65 ms each and
  // block the object, so they go in small batches.
  const used = async (kind, id) =>
    (await (await fetch(`${api}/admin/v1/${kind}/${id}/stats`, { headers: { authorization: `Bearer ${secrets.ADMIN_SECRET}` } })).json()).result.csrs;
  const seed = async (kind, id, count, keyType = "p256v1") => {
    const [parallel, size] = keyType === "rsa2048" ? [1, 10] : [4, 250];
    const target = (await used(kind, id)) + count;
    for (let attempts = 0, have = target - count; have < target; attempts++) {
      if (attempts > count / size + 20) throw new Error(`seeding ${id} is not progressing; workerd ${w.exited() ?? "running"}:\n${w.logTail()}`);
      const batches = [];
      for (let j = 0, planned = have; j < parallel && planned < target; j++) {
        const n = Math.min(size, target - planned);
        planned += n;
        batches.push(fetch(`http://127.0.0.1:${w.ports.seed}/?kind=${kind}&id=${id}&count=${n}&key_type=${keyType}`).then((r) => r.text(), () => null));
      }
      await Promise.all(batches);
      have = await used(kind, id);
    }
  };
  const create = (path, keyType) => ({ url: `${api}${path}`, method: "POST", headers: auth, body: { ...BODY, key_type: keyType } });

  // The floors and the API's hot paths.
  const floor = record("floor Worker", "GET /", await load({ url: `${floorUrl}/`, duration: DURATION, pid: w.pid }));
  const keygenP256 = record("runtime keygen p256v1", "GET /keygen/p256v1", await load({ url: `${floorUrl}/keygen/p256v1`, duration: DURATION, pid: w.pid }));
  const keygenRsa = record("runtime keygen rsa2048", "GET /keygen/rsa2048", await load({ url: `${floorUrl}/keygen/rsa2048`, duration: DURATION, pid: w.pid }));
  const createP256 = record("create p256v1", "POST custom_csrs", await load({ ...create("/client/v4/zones/bench-p256/custom_csrs", "p256v1"), duration: DURATION, pid: w.pid }));
  const createRsa = record("create rsa2048", "POST custom_csrs", await load({ ...create("/client/v4/zones/bench-rsa/custom_csrs", "rsa2048"), duration: DURATION, pid: w.pid }));

  const one = await (await fetch(`${api}/client/v4/zones/bench-get/custom_csrs`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ ...BODY, key_type: "p256v1" }) })).json();
  const getUrl = `${api}/client/v4/zones/bench-get/custom_csrs/${one.result.id}`;
  const get = record("get one CSR", "GET custom_csrs/{id}", await load({ url: getUrl, headers: auth, duration: DURATION, pid: w.pid }));

  // Lists at three scope sizes, first and last page of 50.
  const listPoints = [];
  for (const size of LIST_SIZES) {
    const id = `list-${size}`;
    const started = Date.now();
    await seed("accounts", id, size);
    log(`seeded ${size} CSRs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const [page, n] of [["first", 1], ["last", Math.ceil(size / 50)]]) {
      const result = await load({ url: `${api}/client/v4/accounts/${id}/custom_csrs?per_page=50&page=${n}`, headers: auth, duration: Math.min(DURATION, 5), pid: w.pid });
      record(`list page of 50, ${page}, scope of ${size.toLocaleString("en")}`, `GET custom_csrs?page=${n}`, result);
      listPoints.push({ size, page, p50: result.p50, p99: result.p99 });
    }
  }

  // Head-of-line blocking: gets in a scope while that scope takes rsa2048 creates, and in another scope meanwhile.
  await seed("zones", "bench-hol", 10);
  const holList = await (await fetch(`${api}/client/v4/zones/bench-hol/custom_csrs?per_page=5`, { headers: auth })).json();
  const holGet = `${api}/client/v4/zones/bench-hol/custom_csrs/${holList.result[0].id}`;
  const [, sameScope, otherScope] = await Promise.all([
    load({ ...create("/client/v4/zones/bench-hol/custom_csrs", "rsa2048"), connections: 4, duration: DURATION }),
    load({ url: holGet, headers: auth, connections: 2, duration: DURATION }),
    load({ url: getUrl, headers: auth, connections: 2, duration: DURATION }),
  ]);
  record("get, same scope, during rsa2048 create burst", "GET custom_csrs/{id}", sameScope);
  record("get, other scope, during that burst", "GET custom_csrs/{id}", otherScope);

  // Bytes stored per CSR: growth of each scope's SQLite database (its own
  // page count, so WAL timing does not matter) over a batch of CSRs.
  const storage = {};
  const adminGet = async (path) =>
    (await (await fetch(`${api}/admin/v1/${path}`, { headers: { authorization: `Bearer ${secrets.ADMIN_SECRET}` } })).json()).result;
  for (const keyType of ["p256v1", "rsa2048"]) {
    const id = `bytes-${keyType}`;
    await seed("zones", id, 1, keyType);
    const base = (await adminGet(`zones/${id}/stats`)).database_bytes;
    const n = QUICK ? 100 : keyType === "rsa2048" ? 300 : 2000;
    await seed("zones", id, n, keyType);
    storage[`${keyType} (database growth / ${n} CSRs)`] = ((await adminGet(`zones/${id}/stats`)).database_bytes - base) / n;
  }

  // cfssl newkey: the same job with no storage and no authentication.
  const notes = [];
  let cfsslP256 = null;
  if (existsSync("/usr/bin/cfssl")) {
    const port = await freePort();
    const cfssl = spawn("/usr/bin/cfssl", ["serve", "-address", "127.0.0.1", "-port", String(port), "-loglevel", "2"], { stdio: "ignore" });
    cleanups.push(() => stopProcess(cfssl));
    await waitForHttp(`http://127.0.0.1:${port}/api/v1/cfssl/health`, 15_000);
    const names = [{ C: BODY.country, ST: BODY.state, L: BODY.locality, O: BODY.organization }];
    const cfsslBody = (algo, size) => ({ hosts: BODY.sans, names, CN: BODY.common_name, key: { algo, size } });
    const url = `http://127.0.0.1:${port}/api/v1/cfssl/newkey`;
    cfsslP256 = record("cfssl newkey ecdsa-256", "POST /api/v1/cfssl/newkey", await load({ url, method: "POST", body: cfsslBody("ecdsa", 256), duration: DURATION, pid: cfssl.pid }));
    record("cfssl newkey rsa-2048", "POST /api/v1/cfssl/newkey", await load({ url, method: "POST", body: cfsslBody("rsa", 2048), duration: DURATION, pid: cfssl.pid }));
    await stopProcess(cfssl);
  } else {
    notes.push("cfssl is not installed (`apt-get install golang-cfssl`): its rows are missing.");
  }

  await w.stop();

  // What a local user sees: the same Worker behind `npm start` (wrangler dev).
  if (!QUICK) {
    const port = await freePort();
    const dev = spawn("npm", ["start", "--", "--port", String(port), "--persist-to", join(work, "dev-state")], { cwd: ROOT, stdio: "ignore", detached: true });
    cleanups.push(async () => {
      try {
        process.kill(-dev.pid, "SIGTERM");
      } catch {}
    });
    const devVars = parseDevVars(readFileSync(join(ROOT, ".dev.vars"), "utf8"));
    await waitForHttp(`http://127.0.0.1:${port}/`, 60_000);
    const devAuth = { authorization: `Bearer ${signToken(devVars.API_TOKEN_SECRET, { accounts: [], zones: ["bench-dev"], ttl: 3600 })}` };
    const devCreate = { url: `http://127.0.0.1:${port}/client/v4/zones/bench-dev/custom_csrs`, method: "POST", headers: devAuth, body: { ...BODY, key_type: "p256v1" } };
    record("wrangler dev: create p256v1", "POST custom_csrs", await load({ ...devCreate, duration: DURATION }));
    const devOne = await (await fetch(devCreate.url, { method: "POST", headers: { ...devAuth, "content-type": "application/json" }, body: JSON.stringify(devCreate.body) })).json();
    record("wrangler dev: get one CSR", "GET custom_csrs/{id}", await load({ url: `${devCreate.url}/${devOne.result.id}`, headers: devAuth, duration: DURATION }));
  }

  const at = (size, page) => listPoints.find((p) => p.size === size && p.page === page);
  const small = LIST_SIZES[0];
  const large = LIST_SIZES.at(-1);
  const perCore = (r) => r.rps / r.cores;
  const ratios = [
    { name: `list p50, first page, ${large.toLocaleString("en")} / ${small}`, value: at(large, "first").p50 / Math.max(at(small, "first").p50, 1), goal: "≤ 1.5", pass: at(large, "first").p50 / Math.max(at(small, "first").p50, 1) <= 1.5 },
    { name: `list p50, last page, ${large.toLocaleString("en")} / ${small}`, value: at(large, "last").p50 / Math.max(at(small, "last").p50, 1), goal: "≤ 1.5", pass: at(large, "last").p50 / Math.max(at(small, "last").p50, 1) <= 1.5 },
    { name: "create p256v1 per core / cfssl newkey per core", value: cfsslP256 ? perCore(createP256) / perCore(cfsslP256) : null, goal: "≥ 1", pass: cfsslP256 ? perCore(createP256) / perCore(cfsslP256) >= 1 : false },
    { name: "create rsa2048 / runtime rsa2048 keygen", value: createRsa.rps / keygenRsa.rps, goal: "≥ 0.9", pass: createRsa.rps / keygenRsa.rps >= 0.9 },
    { name: "create p256v1 / runtime p256v1 keygen (for reference)", value: createP256.rps / keygenP256.rps, goal: "–", pass: true },
    { name: "get / floor Worker", value: get.rps / floor.rps, goal: "≥ 0.5", pass: get.rps / floor.rps >= 0.5 },
    { name: "get p99 same scope during burst / idle get p99", value: sameScope.p99 / Math.max(get.p99, 1), goal: "–", pass: true },
  ];
  notes.push(
    "Latency p50/p99 are integer milliseconds from autocannon (8 connections unless noted; 2 for the gets during the 4-connection create burst).",
    "cores used = CPU seconds of the server process over the run's wall time; workerd runs the JavaScript of all its services on one thread.",
    "Scopes for lists are filled through the real TenantStore.createCsr RPC by a bench-only Worker (bench/seed-worker.js), bypassing only HTTP and auth.",
  );

  const cpu = cpus();
  const machine = `${cpu.length} × ${cpu[0]?.model.trim()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, workerd from wrangler ${JSON.parse(readFileSync(join(ROOT, "node_modules/wrangler/package.json"), "utf8")).version}`;
  const date = new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC";
  const command = `npm run bench${QUICK ? " -- --quick" : ""}`;
  const md = markdown({ machine, command, date, rows, ratios, storage, notes });
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "results.json"), JSON.stringify({ machine, date, command, rows, ratios, storage, listPoints }, null, 2));
  writeFileSync(join(OUT, "results.md"), md);
  writeFileSync(join(OUT, "list-latency.svg"), listChart(listPoints));
  if (!QUICK) writeFileSync(join(ROOT, "bench/RESULTS.md"), `# Latest benchmark\n\n${md}\n![list latency](list-latency.svg)\n`);
  if (!QUICK) writeFileSync(join(ROOT, "bench/list-latency.svg"), listChart(listPoints));
  process.stdout.write(md);
}

main()
  .then(cleanup, async (error) => {
    console.error(error);
    await cleanup();
    process.exitCode = 1;
  });
