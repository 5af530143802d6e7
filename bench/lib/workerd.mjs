// Runs bundled Workers directly in workerd for the benchmark: one workerd
// process serves every Worker of a run (the API, the floor, the seeder),
// each on its own port. Bundling and the config's pieces are the server's
// own (scripts/bundle.mjs, scripts/workerd-config.mjs), so the API is
// bundled and bound exactly as `npm start` serves it.
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ROOT, bundle } from "../../scripts/bundle.mjs";
import { readWorkerSpec, renderConfig, renderWorker, uniqueKey } from "../../scripts/workerd-config.mjs";
import { freePort, waitForHttp } from "./net.mjs";

export { ROOT, bundle };

/** compatibility_date from the project's wrangler.toml: the bench runs what production runs. */
export function compatibilityDate() {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const match = /^\s*compatibility_date\s*=\s*"([^"]+)"/m.exec(toml);
  if (!match) throw new Error("wrangler.toml has no compatibility_date");
  return match[1];
}

/**
 * The API Worker as `npm start` binds it, from `config` (a wrangler.toml):
 * every Durable Object class it declares, its vars, and `secrets` (the run's
 * own, which may also override vars) as text bindings.
 */
export async function apiWorker({ name = "api", module, config = join(ROOT, "wrangler.toml"), secrets }) {
  const spec = await readWorkerSpec(config);
  const values = { ...Object.fromEntries(Object.entries(spec.vars).filter(([, v]) => typeof v === "string")), ...secrets };
  return {
    name,
    module,
    date: spec.compatibilityDate,
    bindings: [
      ...spec.durableObjects.map((d) => ({ name: d.binding, durableObject: d.className })),
      ...Object.entries(values).map(([n, text]) => ({ name: n, text })),
    ],
    durableObjects: [...new Map(spec.durableObjects.map((d) => [d.className, { className: d.className, sql: d.sql }])).values()],
  };
}

/** A bench-only Worker bundled with wrangler from a generated config (entry under bench/). */
export async function bundleBenchWorker(dir, { name, main, durableObjects = [] }) {
  mkdirSync(dir, { recursive: true });
  const lines = [`name = ${JSON.stringify(name)}`, `main = ${JSON.stringify(main)}`, `compatibility_date = "${compatibilityDate()}"`, "send_metrics = false"];
  for (const { binding, className } of durableObjects) {
    lines.push("", "[[durable_objects.bindings]]", `name = "${binding}"`, `class_name = "${className}"`);
  }
  if (durableObjects.length) {
    lines.push("", "[[migrations]]", 'tag = "v1"', `new_sqlite_classes = [${durableObjects.map((d) => `"${d.className}"`).join(", ")}]`);
  }
  const config = join(dir, "wrangler.toml");
  writeFileSync(config, `${lines.join("\n")}\n`);
  return bundle(join(dir, "out"), { config });
}

/**
 * Writes a capnp config and starts `workerd serve`. Each worker:
 *   { name, module (path of an ES module), bindings: [{name, text} | {name, durableObject: className, service?}],
 *     durableObjects: [className | {className, sql}], port: boolean, date? }
 * Durable Objects get SQLite storage on local disk under `dir`.
 * Returns { ports: {name: port}, pid, stop(), logTail(), exited(), storageDir(name) }.
 */
export async function startWorkerd({ dir, workers, inspectorPort, v8Flags = [], date = compatibilityDate() }) {
  mkdirSync(dir, { recursive: true });
  const ports = {};
  const services = [];
  const sockets = [];
  const defs = {};
  for (const w of workers) {
    const moduleFile = `${w.name}-${basename(w.module)}`;
    copyFileSync(w.module, join(dir, moduleFile)); // capnp embeds are relative to the config file
    services.push({ name: w.name, worker: `${w.name}Worker` });
    if (w.port !== false) {
      ports[w.name] = await freePort();
      sockets.push({ name: w.name, address: `127.0.0.1:${ports[w.name]}`, service: w.name });
    }
    const classes = (w.durableObjects ?? []).map((d) => (typeof d === "string" ? { className: d, sql: true } : d));
    const disk = `${w.name}-storage`;
    if (classes.length) {
      mkdirSync(join(dir, disk), { recursive: true });
      services.push({ name: disk, disk: join(dir, disk) });
    }
    defs[`${w.name}Worker`] = renderWorker({
      moduleName: basename(w.module),
      moduleFile,
      compatibilityDate: w.date ?? date,
      bindings: w.bindings ?? [],
      durableObjects: classes.map((c) => ({ ...c, uniqueKey: uniqueKey(w.name, c.className) })),
      storageService: disk,
    });
  }
  const configPath = join(dir, "config.capnp");
  writeFileSync(configPath, renderConfig({ services, sockets, workers: defs, v8Flags }));
  const args = ["serve", configPath];
  if (inspectorPort) args.push(`--inspector-addr=127.0.0.1:${inspectorPort}`);
  // stdout carries the Worker's console.log lines: discarded, as a production
  // log pipeline would take them off the request path. stderr: kept, the tail only.
  const child = spawn(join(ROOT, "node_modules/.bin/workerd"), args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr = (stderr + d).slice(-4000);
  });
  const first = Object.values(ports)[0];
  await waitForHttp(`http://127.0.0.1:${first}/`, 20_000, () => child.exitCode !== null).catch((e) => {
    child.kill("SIGKILL");
    throw new Error(`workerd did not start: ${e.message}\n${stderr.slice(-2000)}`);
  });
  return {
    ports,
    pid: child.pid,
    stop: () => stopProcess(child),
    logTail: () => stderr,
    exited: () => child.exitCode ?? child.signalCode,
    storageDir: (name) => join(dir, `${name}-storage`),
  };
}

/** Stops a child process (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
export function stopProcess(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 5000).unref();
  });
}
