// Runs bundled Workers directly in workerd for the benchmark: one workerd
// process serves every Worker of a run (the API, the floor, the seeder),
// each on its own port. Bundling and the config's pieces are the server's
// own (scripts/bundle.mjs, scripts/workerd-config.mjs), so the API is
// bundled and bound exactly as `npm start` serves it.
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import type { Secrets } from "./fixtures.ts";
import { errorMessage } from "./lifecycle.ts";
import { freePort, waitForHttp } from "./net.ts";
import type { Binding, Service, Socket } from "./scripts.ts";
import { ROOT, bundle, readWorkerSpec, renderConfig, renderWorker, uniqueKey } from "./scripts.ts";

export { ROOT, bundle };

/** compatibility_date from the project's wrangler.toml: the bench runs what production runs. */
export function compatibilityDate(): string {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const match = /^\s*compatibility_date\s*=\s*"([^"]+)"/m.exec(toml);
  if (!match?.[1]) throw new Error("wrangler.toml has no compatibility_date");
  return match[1];
}

/** A Durable Object class a Worker exports: by name (SQLite-backed), or with its storage kind. */
export type DurableObjectClass = string | { className: string; sql: boolean };

/** One Worker of a workerd process, served on a port of its own. */
export interface WorkerDef<Name extends string = string> {
  name: Name;
  /** Path of the Worker's ES module, loaded as it is. */
  module: string;
  bindings?: Binding[];
  durableObjects?: DurableObjectClass[];
  /** Its compatibility date, when not the project's. */
  date?: string;
}

/** A running workerd process. */
export interface Workerd<Name extends string> {
  ports: Record<Name, number>;
  pid: number;
  stop(): Promise<void>;
  /** The last few KiB of workerd's stderr. */
  logTail(): string;
  /** Exit code or signal, null while it runs. */
  exited(): number | NodeJS.Signals | null;
  /** Where the Durable Objects of Worker `name` keep their SQLite files. */
  storageDir(name: Name): string;
}

/**
 * The API Worker as `npm start` binds it, from `config` (a wrangler.toml):
 * every Durable Object class it declares, its vars, and `secrets` (the run's
 * own, which may also override vars) as text bindings.
 */
export async function apiWorker({ module, config = join(ROOT, "wrangler.toml"), secrets }: { module: string; config?: string; secrets: Secrets }): Promise<WorkerDef<"api">> {
  const spec = await readWorkerSpec(config);
  const values: Record<string, unknown> = { ...Object.fromEntries(Object.entries(spec.vars).filter(([, v]) => typeof v === "string")), ...secrets };
  return {
    name: "api",
    module,
    date: spec.compatibilityDate,
    bindings: [
      ...spec.durableObjects.map((d) => ({ name: d.binding, durableObject: d.className })),
      ...Object.entries(values).map(([n, text]) => ({ name: n, text: String(text) })),
    ],
    durableObjects: [...new Map(spec.durableObjects.map((d) => [d.className, { className: d.className, sql: d.sql }])).values()],
  };
}

/** A bench-only Worker bundled with wrangler from a generated config (entry under bench/). */
export async function bundleBenchWorker(
  dir: string,
  { name, main, durableObjects = [] }: { name: string; main: string; durableObjects?: Array<{ binding: string; className: string }> },
): Promise<string> {
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
 * Writes a capnp config and starts `workerd serve`, every Worker on a port
 * of its own. Durable Objects get SQLite storage on local disk under `dir`.
 */
export async function startWorkerd<Name extends string>({
  dir,
  workers,
  inspectorPort,
  v8Flags = [],
  date = compatibilityDate(),
}: {
  dir: string;
  workers: ReadonlyArray<WorkerDef<Name>>;
  inspectorPort?: number | undefined;
  v8Flags?: string[];
  date?: string;
}): Promise<Workerd<Name>> {
  mkdirSync(dir, { recursive: true });
  const ports = new Map<Name, number>();
  const services: Service[] = [];
  const sockets: Socket[] = [];
  const defs: Record<string, string> = {};
  for (const w of workers) {
    const moduleFile = `${w.name}-${basename(w.module)}`;
    copyFileSync(w.module, join(dir, moduleFile)); // capnp embeds are relative to the config file
    services.push({ name: w.name, worker: `${w.name}Worker` });
    const port = await freePort();
    ports.set(w.name, port);
    sockets.push({ name: w.name, address: `127.0.0.1:${port}`, service: w.name });
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
  child.stderr.on("data", (d: Buffer) => {
    stderr = (stderr + d).slice(-4000);
  });
  const first = [...ports.values()][0];
  await waitForHttp(`http://127.0.0.1:${first}/`, 20_000, () => child.exitCode !== null).catch((e: unknown) => {
    child.kill("SIGKILL");
    throw new Error(`workerd did not start: ${errorMessage(e)}\n${stderr.slice(-2000)}`);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error("workerd has no pid");
  return {
    // Every Worker of `workers` was given a port above.
    ports: Object.fromEntries(ports) as Record<Name, number>,
    pid,
    stop: () => stopProcess(child),
    logTail: () => stderr,
    exited: () => child.exitCode ?? child.signalCode,
    storageDir: (name) => join(dir, `${name}-storage`),
  };
}

/** Stops a child process (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
export function stopProcess(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 5000).unref();
  });
}
