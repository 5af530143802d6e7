// Starts the Worker as a real `wrangler dev` process on 127.0.0.1, with its
// own secrets, config copy and persisted state in a temp directory, so the
// developer's .dev.vars and .wrangler/ are never read or written, from a
// snapshot of src/ taken when the run starts.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, relative, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

/** The repository root (two levels above this file). */
export const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

/** Where the global setup registers every spawned server's process-group id. */
export const PID_DIR = "pids";

/** The secrets one test server runs with; tests mint credentials from them. */
export interface ServerSecrets {
  KEY_ENCRYPTION_KEYS: string;
  API_TOKEN_SECRET: string;
  ADMIN_SECRET: string;
  GLOBAL_API_KEYS: string;
}

/** A running (or stopped) test server bound to one persisted state directory. */
export interface TestServer {
  /** `http://127.0.0.1:PORT`; changes on restart. */
  readonly origin: string;
  /** `origin + /client/v4`, the SDK's baseURL. */
  readonly baseURL: string;
  readonly secrets: ServerSecrets;
  /** The directory holding config, env file, state and log. */
  readonly dir: string;
  /** Stops the process group (SIGTERM, or SIGKILL to simulate a crash); resolves once wrangler and workerd are gone. */
  stop(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** Stops (gracefully unless told otherwise), then starts again on the same persisted state (new port). */
  restart(signal?: "SIGTERM" | "SIGKILL"): Promise<void>;
  /** The last lines of the server's combined output, for failure messages. */
  logTail(lines?: number): string;
}

/** Options for {@link startServer}. */
export interface StartOptions {
  /** The suite's temp root (from the global setup); the server gets a subdirectory. */
  root: string;
  /** A short name for the subdirectory and the log. */
  name: string;
  /** Overrides of the generated secrets (e.g. a GLOBAL_API_KEYS registry). */
  secrets?: Partial<ServerSecrets>;
}

/** A free TCP port on 127.0.0.1, as chosen by the kernel. */
export async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.unref();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address ? address.port : 0;
      probe.close(() => (port ? done(port) : fail(new Error("no port"))));
    });
  });
}

/** Fresh random secrets, in the formats scripts/dev-vars.mjs generates. */
export function generateSecrets(): ServerSecrets {
  return {
    KEY_ENCRYPTION_KEYS: `e2e1:${randomBytes(32).toString("base64")}`,
    API_TOKEN_SECRET: randomBytes(32).toString("base64url"),
    ADMIN_SECRET: randomBytes(24).toString("base64url"),
    GLOBAL_API_KEYS: "[]",
  };
}

const MAIN = /^main\s*=\s*"([^"]+)"\s*$/m;

/**
 * Copies src/ once per run into `<root>/app` (node_modules linked back), so
 * every server runs the code as it was when the suite started: `wrangler dev`
 * hot-reloads on source changes, and a reload mid-request is a 503 that has
 * nothing to do with the service. Idempotent.
 */
export function snapshotApp(root: string): string {
  const app = join(root, "app");
  const config = readFileSync(join(REPO_ROOT, "wrangler.toml"), "utf8");
  const match = MAIN.exec(config);
  if (!match) throw new Error("wrangler.toml has no `main = \"...\"` line the e2e harness can rewrite");
  const main = join(app, relative(REPO_ROOT, resolve(REPO_ROOT, match[1]!)));
  if (!existsSync(main)) {
    mkdirSync(app, { recursive: true });
    cpSync(join(REPO_ROOT, "src"), join(app, "src"), { recursive: true });
    symlinkSync(join(REPO_ROOT, "node_modules"), join(app, "node_modules"), "dir");
    if (!existsSync(main)) throw new Error(`wrangler.toml's main (${match[1]}) is not under src/, which is all the snapshot copies`);
  }
  return main;
}

// wrangler.toml with `main` pointing at the snapshot, so the copy can live in
// the server's directory: the bundler's scratch files land there, not in .wrangler/.
function configCopy(main: string): string {
  return readFileSync(join(REPO_ROOT, "wrangler.toml"), "utf8").replace(MAIN, () => `main = ${JSON.stringify(main)}`);
}

// dotenv single quotes keep JSON values (GLOBAL_API_KEYS) intact.
function envFile(secrets: ServerSecrets): string {
  return `${Object.entries(secrets)
    .map(([k, v]) => {
      if (String(v).includes("'") || /[\r\n]/.test(String(v))) throw new Error(`secret ${k} cannot be quoted`);
      return `${k}='${v}'`;
    })
    .join("\n")}\n`;
}

/** Starts a server; throws (after cleaning up the process) when it does not become ready. */
export async function startServer(options: StartOptions): Promise<TestServer> {
  const dir = join(options.root, options.name);
  mkdirSync(dir, { recursive: true });
  const secrets: ServerSecrets = { ...generateSecrets(), ...options.secrets };
  const configPath = join(dir, "wrangler.toml");
  const envPath = join(dir, "e2e.env");
  writeFileSync(configPath, configCopy(snapshotApp(options.root)));
  writeFileSync(envPath, envFile(secrets), { mode: 0o600 });
  const logPath = join(dir, "server.log");

  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let port = 0;

  const launch = async (): Promise<void> => {
    port = await freePort();
    const inspectorPort = await freePort();
    const log = createWriteStream(logPath, { flags: "a" });
    log.write(`\n=== start on port ${port} at ${new Date().toISOString()}\n`);
    const wrangler = join(REPO_ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
    // detached: its own process group, so stop() reaches workerd too.
    const proc = spawn(
      process.execPath,
      [
        wrangler,
        "dev",
        "--config",
        configPath,
        "--env-file",
        envPath,
        "--persist-to",
        join(dir, "state"),
        "--ip",
        "127.0.0.1",
        "--port",
        String(port),
        "--inspector-port",
        String(inspectorPort),
        "--inspector-ip",
        "127.0.0.1",
        "--show-interactive-dev-session=false",
        "--live-reload=false",
        // "log" (not "info"): the Worker's own console lines reach server.log,
        // where the custody checks look for key material.
        "--log-level",
        "log",
      ],
      {
        cwd: dir,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          WRANGLER_SEND_METRICS: "false",
          WRANGLER_LOG_PATH: join(dir, "wrangler-logs"),
          CLOUDFLARE_INCLUDE_PROCESS_ENV: "false",
          NO_COLOR: "1",
          FORCE_COLOR: "0",
        },
      },
    );
    proc.stdout?.pipe(log, { end: false });
    proc.stderr?.pipe(log, { end: false });
    if (proc.pid === undefined) throw new Error("wrangler did not start");
    const pidFile = join(options.root, PID_DIR, String(proc.pid));
    mkdirSync(join(options.root, PID_DIR), { recursive: true });
    writeFileSync(pidFile, "");
    child = proc;
    exited = new Promise((done) => {
      proc.once("exit", () => {
        rmSync(pidFile, { force: true });
        log.end();
        done();
      });
    });
    try {
      await waitReady(`http://127.0.0.1:${port}`, proc);
    } catch (error) {
      await stop("SIGKILL");
      throw new Error(`${(error as Error).message}\n--- server log ---\n${tail(logPath, 60)}`);
    }
  };

  const stop = async (signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> => {
    const proc = child;
    if (!proc || proc.pid === undefined) return;
    child = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      killGroup(proc.pid, signal);
      const gone = await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]);
      if (!gone) killGroup(proc.pid, "SIGKILL");
    }
    await exited;
    // workerd may outlive wrangler briefly; the group must be empty before the
    // same state directory is opened again.
    for (let i = 0; i < 50 && groupAlive(proc.pid); i++) await sleep(100);
    if (groupAlive(proc.pid)) killGroup(proc.pid, "SIGKILL");
  };

  await launch();
  return {
    get origin() {
      return `http://127.0.0.1:${port}`;
    },
    get baseURL() {
      return `http://127.0.0.1:${port}/client/v4`;
    },
    secrets,
    dir,
    stop,
    restart: async (signal = "SIGTERM") => {
      await stop(signal);
      await launch();
    },
    logTail: (lines = 40) => tail(logPath, lines),
  };
}

/** Signals a whole process group, ignoring one that is already gone. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: nothing left to stop.
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

function tail(path: string, lines: number): string {
  if (!existsSync(path)) return "(no log)";
  return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
}

// Ready means the Worker itself answers: an unknown route is its JSON 404.
async function waitReady(origin: string, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`wrangler dev exited early (code ${proc.exitCode}, signal ${proc.signalCode})`);
    }
    try {
      const response = await fetch(`${origin}/client/v4/__e2e_ready`, { signal: AbortSignal.timeout(2_000) });
      const type = response.headers.get("content-type") ?? "";
      await response.arrayBuffer();
      if (response.status === 404 && type.startsWith("application/json")) return;
    } catch {
      // Not listening yet.
    }
    await sleep(250);
  }
  throw new Error(`wrangler dev did not become ready on ${origin} within 120 s`);
}
