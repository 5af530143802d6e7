// Runs bundled Workers directly in workerd, as production does: no
// `wrangler dev` proxy in front. One workerd process serves every Worker of
// a bench run (the API, the floor, the seeder), each on its own port.
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { freePort, waitForHttp } from "./net.mjs";

export const ROOT = new URL("../..", import.meta.url).pathname;

/** compatibility_date from the project's wrangler.toml: the bench runs what production runs. */
export function compatibilityDate() {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const match = /^\s*compatibility_date\s*=\s*"([^"]+)"/m.exec(toml);
  if (!match) throw new Error("wrangler.toml has no compatibility_date");
  return match[1];
}

/**
 * Bundles a Worker exactly as `wrangler deploy` would upload it (dry run, no
 * network). Without `config`, the project's own wrangler.toml and src/.
 * Returns the path of the bundled entry module.
 */
export function bundle(outDir, { config } = {}) {
  const args = ["deploy", "--dry-run", "--outdir", outDir];
  if (config) args.push("--config", config);
  try {
    execFileSync(join(ROOT, "node_modules/.bin/wrangler"), args, {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_LOG: "error" },
    });
  } catch (error) {
    throw new Error(`wrangler could not bundle ${config ?? "the Worker"}:\n${String(error.stderr ?? error.message).slice(-3000)}`);
  }
  // wrangler names the bundle after the entry point (src/index.ts -> index.js).
  const modules = readdirSync(outDir).filter((f) => f.endsWith(".js"));
  if (modules.length !== 1) throw new Error(`expected one bundled module in ${outDir}, found ${modules.join(", ") || "none"}`);
  return join(outDir, modules[0]);
}

/** A bench-only Worker bundled with wrangler from a generated config (entry under bench/). */
export function bundleBenchWorker(dir, { name, main, durableObjects = [] }) {
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

const q = (s) => JSON.stringify(s);

/**
 * Writes a capnp config and starts `workerd serve`. Each worker:
 *   { name, module (path of an ES module), bindings: [{name, text} | {name, durableObject: className, service?}],
 *     durableObjects: [className], port: boolean }
 * Durable Objects get SQLite storage on local disk under `dir`.
 * Returns { ports: {name: port}, pid, stop(), logTail(), exited(), storageDir(name) }.
 */
export async function startWorkerd({ dir, workers, inspectorPort, v8Flags = [], date = compatibilityDate() }) {
  mkdirSync(dir, { recursive: true });
  const ports = {};
  const services = [];
  const sockets = [];
  const defs = [];
  for (const w of workers) {
    const moduleFile = `${w.name}-${basename(w.module)}`;
    copyFileSync(w.module, join(dir, moduleFile)); // capnp embeds are relative to the config file
    services.push(`(name = ${q(w.name)}, worker = .${w.name}Worker)`);
    if (w.port !== false) {
      ports[w.name] = await freePort();
      sockets.push(`(name = ${q(w.name)}, address = "127.0.0.1:${ports[w.name]}", http = (), service = ${q(w.name)})`);
    }
    const bindings = (w.bindings ?? []).map((b) =>
      "text" in b
        ? `(name = ${q(b.name)}, text = ${q(b.text)})`
        : b.service
          ? `(name = ${q(b.name)}, durableObjectNamespace = (serviceName = ${q(b.service)}, className = ${q(b.durableObject)}))`
          : `(name = ${q(b.name)}, durableObjectNamespace = ${q(b.durableObject)})`,
    );
    const fields = [
      `modules = [(name = ${q(basename(w.module))}, esModule = embed ${q(moduleFile)})]`,
      `compatibilityDate = ${q(date)}`,
      `bindings = [${bindings.join(", ")}]`,
    ];
    if (w.durableObjects?.length) {
      const disk = `${w.name}-storage`;
      mkdirSync(join(dir, disk), { recursive: true });
      services.push(`(name = ${q(disk)}, disk = (path = ${q(join(dir, disk))}, writable = true))`);
      fields.push(
        `durableObjectNamespaces = [${w.durableObjects.map((c) => `(className = ${q(c)}, uniqueKey = ${q(`${w.name}-${c}`)}, enableSql = true)`).join(", ")}]`,
        `durableObjectStorage = (localDisk = ${q(disk)})`,
      );
    }
    defs.push(`const ${w.name}Worker :Workerd.Worker = (\n  ${fields.join(",\n  ")},\n);`);
  }
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    ${services.join(",\n    ")},
  ],
  sockets = [
    ${sockets.join(",\n    ")},
  ],${v8Flags.length ? `\n  v8Flags = [${v8Flags.map(q).join(", ")}],` : ""}
);
${defs.join("\n")}
`;
  const configPath = join(dir, "config.capnp");
  writeFileSync(configPath, config);
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
