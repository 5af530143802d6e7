// npm run bench:profile -- <create-p256v1|create-rsa2048|get|list> : where the
// Worker's CPU time goes. Runs the built Worker in workerd with V8's sampling
// profiler on (via workerd's inspector), drives one scenario for a few
// seconds, and prints self time by function, heaviest first.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signToken } from "../scripts/sign-token.mjs";
import { load } from "./lib/load.mjs";
import { freePort } from "./lib/net.mjs";
import { buildWorker, startWorkerd } from "./lib/workerd.mjs";

const ROOT = new URL("..", import.meta.url).pathname;
const scenario = process.argv[2] ?? "create-p256v1";
const work = mkdtempSync(join(tmpdir(), "csr-profile-"));
const secrets = {
  KEY_ENCRYPTION_KEYS: `p:${randomBytes(32).toString("base64")}`,
  API_TOKEN_SECRET: randomBytes(32).toString("base64url"),
  ADMIN_SECRET: randomBytes(24).toString("base64url"),
  GLOBAL_API_KEYS: "[]",
  API_TOKEN_JWKS: "",
  DEFAULT_CSR_ACCESS: "granted",
  DEFAULT_CSR_QUOTA: "1000000",
};
const compatibilityDate = /compatibility_date\s*=\s*"([^"]+)"/.exec(readFileSync(join(ROOT, "wrangler.toml"), "utf8"))[1];
const auth = { authorization: `Bearer ${signToken(secrets.API_TOKEN_SECRET, { accounts: ["*"], zones: ["*"], ttl: 3600 })}` };
const BODY = { common_name: "app.customer-one.com", country: "US", state: "California", locality: "San Francisco", organization: "Customer One", sans: ["app.customer-one.com", "www.customer-one.com"] };

/** A minimal DevTools-protocol client over workerd's inspector socket. */
function inspector(url) {
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
  const ready = new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  return {
    ready,
    send: (method, params = {}) =>
      new Promise((resolve) => {
        const id = next++;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

const port = await freePort();
const w = await startWorkerd({ dir: work, bundle: buildWorker(join(work, "build")), secrets, compatibilityDate, inspectorPort: port });
try {
  const api = `http://127.0.0.1:${w.ports.api}`;
  const create = (keyType) => ({ url: `${api}/client/v4/zones/prof/custom_csrs`, method: "POST", headers: auth, body: { ...BODY, key_type: keyType } });
  const first = await (await fetch(create("p256v1").url, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ ...BODY, key_type: "p256v1" }) })).json();
  const scenarios = {
    "create-p256v1": create("p256v1"),
    "create-rsa2048": create("rsa2048"),
    get: { url: `${api}/client/v4/zones/prof/custom_csrs/${first.result.id}`, headers: auth },
    list: { url: `${api}/client/v4/zones/prof/custom_csrs?per_page=50`, headers: auth },
  };
  const target = scenarios[scenario];
  if (!target) throw new Error(`unknown scenario ${scenario}: one of ${Object.keys(scenarios).join(", ")}`);
  await load({ ...target, duration: 2 }); // warm up (and give list a few rows)

  const client = inspector(`ws://127.0.0.1:${port}/api`);
  await client.ready;
  await client.send("Profiler.enable");
  await client.send("Profiler.setSamplingInterval", { interval: 100 });
  await client.send("Profiler.start");
  const result = await load({ ...target, duration: 6, pid: w.pid });
  const { result: { profile } } = await client.send("Profiler.stop");
  client.close();

  const total = profile.samples.length;
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const counts = new Map();
  for (const id of profile.samples) {
    const frame = byNode.get(id).callFrame;
    const key = `${frame.functionName || "(anonymous)"} ${frame.url ? frame.url.split("/").pop() : ""}:${frame.lineNumber + 1}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  // Inclusive time: each sample counts once for every function on its stack.
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const inclusive = new Map();
  for (const id of profile.samples) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const name = byNode.get(at).callFrame.functionName;
      if (name && !seen.has(name)) {
        seen.add(name);
        inclusive.set(name, (inclusive.get(name) ?? 0) + 1);
      }
    }
  }
  const pct = (n) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
  console.log(`${scenario}: ${result.rps.toFixed(1)} req/s, p50 ${result.p50} ms, ${result.cores.toFixed(2)} cores; ${total} samples`);
  console.log("\nself time");
  for (const [key, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`${pct(n)}  ${key}`);
  console.log("\ninclusive time");
  for (const [key, n] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, 40)) console.log(`${pct(n)}  ${key}`);
} finally {
  await w.stop();
  rmSync(work, { recursive: true, force: true });
}
