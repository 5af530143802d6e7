// Runs the built Worker directly in workerd, as production does: no wrangler
// dev proxy in front. The API, the floor Worker and the bench-only seeder are
// three services of one workerd process.
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, waitForHttp } from "./net.mjs";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Bundles src/index.ts with wrangler, exactly as `wrangler deploy` would upload it. */
export function buildWorker(dir) {
  execFileSync(join(ROOT, "node_modules/.bin/wrangler"), ["deploy", "--dry-run", "--outdir", dir], {
    cwd: ROOT,
    stdio: "ignore",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  });
  return join(dir, "index.js");
}

const text = (name, value) => `(name = ${JSON.stringify(name)}, text = ${JSON.stringify(value)})`;

/** Starts workerd; returns its ports and a stop function. */
export async function startWorkerd({ dir, bundle, secrets, compatibilityDate, inspectorPort }) {
  const ports = { api: await freePort(), floor: await freePort(), seed: await freePort() };
  const storage = join(dir, "do");
  mkdirSync(storage, { recursive: true });
  const bindings = Object.entries(secrets).map(([k, v]) => text(k, v));
  // capnp embeds are read relative to the config file.
  copyFileSync(bundle, join(dir, "api.js"));
  copyFileSync(join(ROOT, "bench/floor-worker.js"), join(dir, "floor.js"));
  copyFileSync(join(ROOT, "bench/seed-worker.js"), join(dir, "seed.js"));
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "api", worker = .api),
    (name = "floor", worker = .floor),
    (name = "seed", worker = .seed),
    (name = "storage", disk = (path = ${JSON.stringify(storage)}, writable = true)),
  ],
  sockets = [
    (name = "api", address = "127.0.0.1:${ports.api}", http = (), service = "api"),
    (name = "floor", address = "127.0.0.1:${ports.floor}", http = (), service = "floor"),
    (name = "seed", address = "127.0.0.1:${ports.seed}", http = (), service = "seed"),
  ],
);
const api :Workerd.Worker = (
  modules = [(name = "index.js", esModule = embed "api.js")],
  compatibilityDate = ${JSON.stringify(compatibilityDate)},
  bindings = [${bindings.join(", ")}, (name = "TENANTS", durableObjectNamespace = "TenantStore")],
  durableObjectNamespaces = [(className = "TenantStore", uniqueKey = "custom-csr-api-TenantStore", enableSql = true)],
  durableObjectStorage = (localDisk = "storage"),
);
const floor :Workerd.Worker = (
  modules = [(name = "floor.js", esModule = embed "floor.js")],
  compatibilityDate = ${JSON.stringify(compatibilityDate)},
);
const seed :Workerd.Worker = (
  modules = [(name = "seed.js", esModule = embed "seed.js")],
  compatibilityDate = ${JSON.stringify(compatibilityDate)},
  bindings = [(name = "TENANTS", durableObjectNamespace = (serviceName = "api", className = "TenantStore"))],
);
`;
  const configPath = join(dir, "config.capnp");
  writeFileSync(configPath, config);
  const args = ["serve", configPath, "--experimental"];
  if (inspectorPort) args.push(`--inspector-addr=127.0.0.1:${inspectorPort}`);
  const child = spawn(join(ROOT, "node_modules/.bin/workerd"), args, {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  // workerd writes the Worker's request logs here: keep only the tail, for errors.
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  await waitForHttp(`http://127.0.0.1:${ports.floor}/`, 20_000).catch((e) => {
    throw new Error(`workerd did not start: ${e.message}\n${stderr.slice(-2000)}`);
  });
  return { ports, pid: child.pid, storage, stop: () => stopProcess(child), logTail: () => stderr, exited: () => child.exitCode ?? child.signalCode };
}

/** Stops a child process and waits for it to exit. */
export function stopProcess(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 5000).unref();
  });
}
