// Starts the Worker the way a user does: `npm start` (workerd, served
// directly) on 127.0.0.1 with its own secrets in the environment and its own
// data directory, or `npm run dev` (wrangler dev) for the smoke test. Every
// server runs from a copy of the project taken when the run starts (src/,
// scripts/, packages/, wrangler.toml, package.json; node_modules linked back), so the
// developer's .dev.vars, data/ and dist/ are never read or written and the
// whole run tests one version.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

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

/** A running (or stopped) test server bound to one data directory. */
export interface TestServer {
  /** `http://127.0.0.1:PORT`; changes on restart. */
  readonly origin: string;
  /** `origin + /client/v4`, the SDK's baseURL. */
  readonly baseURL: string;
  readonly secrets: ServerSecrets;
  /** The directory holding the data directory and the logs. */
  readonly dir: string;
  /** The data directory (`--data-dir`, or `--persist-to` for `npm run dev`). */
  readonly dataDir: string;
  /** How the last run ended: exit code and signal of the launcher (npm, or node; null while it runs). */
  readonly exit: { code: number | null; signal: NodeJS.Signals | null } | null;
  /**
   * Stops the process group (SIGTERM or SIGINT for a graceful stop, SIGKILL
   * to simulate a crash); resolves once every process of it is gone.
   */
  stop(signal?: "SIGTERM" | "SIGINT" | "SIGKILL"): Promise<void>;
  /**
   * Stops (gracefully unless told otherwise), then starts again on the same
   * data directory (new port), with some secrets changed if asked (a
   * redeploy with a rotated or a wrong key), waiting for readiness unless
   * told not to.
   */
  restart(signal?: "SIGTERM" | "SIGINT" | "SIGKILL", changes?: { secrets?: Partial<ServerSecrets>; env?: Record<string, string>; waitReady?: boolean }): Promise<void>;
  /** Resolves once the launcher has exited (with `exit` set). */
  exited(): Promise<void>;
  /** The last lines of the server's stdout and stderr, for failure messages. */
  logTail(lines?: number): string;
  /** Everything the server wrote to stdout (all runs). */
  stdout(): string;
  /** Everything the server wrote to stderr (all runs). */
  stderr(): string;
}

/** Options for {@link startServer}. */
export interface StartOptions {
  /** The suite's temp root (from the global setup); the server gets a subdirectory. */
  root: string;
  /** A short name for the subdirectory and the logs. */
  name: string;
  /** Overrides of the generated secrets (e.g. a GLOBAL_API_KEYS registry). */
  secrets?: Partial<ServerSecrets>;
  /** `npm start` (default) or `npm run dev` (wrangler dev). */
  command?: "start" | "dev";
  /** The project copy to run (default: the run's shared one, `<root>/app`). */
  app?: string;
  /** A data directory other than `<dir>/data` (`npm start`) / `<dir>/state` (`npm run dev`); null for the command's default. */
  dataDir?: string | null;
  /** More flags after `--`. */
  args?: string[];
  /** A fixed port instead of a free one (kept across restarts). */
  port?: number;
  /** More environment for the server (vars overriding wrangler.toml's, the optional secret ACME_DIRECTORIES). */
  env?: Record<string, string>;
  /** Whether to put the secrets in the environment (default true); false leaves them to .dev.vars. */
  secretsInEnv?: boolean;
  /** Wait for GET /readyz to answer 200 (default true). */
  waitReady?: boolean;
  /**
   * `npm` (default: `npm start`, as a user types it) or `node` (`node
   * scripts/start.mjs`, as the systemd unit runs it: npm dies of a signal it
   * receives, so only this way is the launcher's own exit code seen).
   */
  launcher?: "npm" | "node";
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

// What a user's checkout holds that the servers need (packages/cli: the scripts' flag parser); node_modules is linked.
const PROJECT_FILES = ["src", "scripts", "packages", "wrangler.toml", "package.json", "package-lock.json", "tsconfig.json", "worker-configuration.d.ts"];

/**
 * Copies the project into `<root>/<name>` once (node_modules linked back), so
 * every server of the run runs the code as it was when the suite started.
 * Idempotent; returns the copy's directory.
 */
export function snapshotApp(root: string, name = "app"): string {
  const app = join(root, name);
  if (!existsSync(join(app, "package.json"))) {
    mkdirSync(app, { recursive: true });
    for (const entry of PROJECT_FILES) cpSync(join(REPO_ROOT, entry), join(app, entry), { recursive: true });
    symlinkSync(join(REPO_ROOT, "node_modules"), join(app, "node_modules"), "dir");
  }
  return app;
}

/** The project's Node 22 and tools first on PATH, as `npm run` arranges. */
export function projectEnv(app: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${join(app, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
    WRANGLER_SEND_METRICS: "false",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    ...extra,
  };
  // The developer's own secrets must not leak into a test server.
  for (const name of ["KEY_ENCRYPTION_KEYS", "API_TOKEN_SECRET", "ADMIN_SECRET", "GLOBAL_API_KEYS", "LOG_LEVEL"]) {
    if (!(name in extra)) delete env[name];
  }
  return env;
}

/** Runs `npm run <script> -- args` in `app` to completion; never throws on a non-zero exit. */
export async function npmRun(app: string, script: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)("npm", ["run", "--silent", script, "--", ...args], {
      cwd: app,
      env: projectEnv(app, env),
      maxBuffer: 64 * 1024 * 1024,
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== "number") throw error;
    return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** Builds the copy's dist/workerd once, up front, so no test's server start includes the build. */
export async function buildApp(app: string): Promise<void> {
  await promisify(execFile)(join(app, "node_modules", ".bin", "node"), [join(app, "scripts", "build.mjs")], {
    cwd: app,
    env: projectEnv(app),
    timeout: 180_000,
  });
}

/** Starts a server; throws (after cleaning up the process) when it does not become ready. */
export async function startServer(options: StartOptions): Promise<TestServer> {
  const dir = join(options.root, options.name);
  mkdirSync(dir, { recursive: true });
  const app = options.app ?? snapshotApp(options.root);
  const command = options.command ?? "start";
  let secrets: ServerSecrets = { ...generateSecrets(), ...options.secrets };
  let waitForReady = options.waitReady !== false;
  let extraEnv = { ...options.env };
  const dataDir = options.dataDir === undefined ? join(dir, command === "start" ? "data" : "state") : options.dataDir;
  const stdoutPath = join(dir, "stdout.log");
  const stderrPath = join(dir, "stderr.log");

  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let exit: TestServer["exit"] = null;
  let port = 0;

  const launch = async (): Promise<void> => {
    port = options.port ?? (await freePort());
    const out = createWriteStream(stdoutPath, { flags: "a" });
    const err = createWriteStream(stderrPath, { flags: "a" });
    const location = dataDir === null ? [] : [command === "start" ? "--data-dir" : "--persist-to", dataDir];
    const flags =
      command === "start"
        ? ["--port", String(port), "--host", "127.0.0.1", ...location, ...(options.args ?? [])]
        : [
            "--port", String(port), "--ip", "127.0.0.1", ...location,
            "--inspector-port", String(await freePort()), "--inspector-ip", "127.0.0.1",
            "--show-interactive-dev-session=false", "--live-reload=false", ...(options.args ?? []),
          ];
    const env = { ...extraEnv, ...(options.secretsInEnv === false ? {} : secrets) };
    if (command === "dev" && options.secretsInEnv !== false) {
      // wrangler dev reads secrets from .dev.vars or an env file, not the environment.
      const envFile = join(dir, "dev.env");
      writeFileSync(envFile, `${Object.entries(secrets).map(([k, v]) => `${k}='${v}'`).join("\n")}\n`, { mode: 0o600 });
      flags.push("--env-file", envFile);
    }
    // detached: its own process group, so stop() reaches npm, node and workerd alike.
    // --silent: npm's own "> node scripts/start.mjs" header and warnings stay
    // out of the server's stdout and stderr, which the tests read.
    const [file, args] =
      options.launcher === "node" && command === "start"
        ? [join(app, "node_modules", ".bin", "node"), [join(app, "scripts", "start.mjs"), ...flags]]
        : ["npm", [...(command === "start" ? ["start"] : ["run", "dev"]), "--silent", "--", ...flags]];
    const proc = spawn(file, args, {
      cwd: app,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: projectEnv(app, { ...env, WRANGLER_LOG_PATH: join(dir, "wrangler-logs"), CI: "1" }),
    });
    proc.stdout?.pipe(out);
    proc.stderr?.pipe(err);
    if (proc.pid === undefined) throw new Error(`npm ${command} did not start`);
    const pidFile = join(options.root, PID_DIR, String(proc.pid));
    mkdirSync(join(options.root, PID_DIR), { recursive: true });
    writeFileSync(pidFile, "");
    child = proc;
    exit = null;
    exited = new Promise((done) => {
      proc.once("exit", (code, signal) => {
        exit = { code, signal };
        rmSync(pidFile, { force: true });
        done();
      });
    });
    if (!waitForReady) return;
    try {
      await waitReady(`http://127.0.0.1:${port}`, proc);
    } catch (error) {
      await stop("SIGKILL");
      throw new Error(`${(error as Error).message}\n--- server log ---\n${logTail(60)}`);
    }
  };

  const stop = async (signal: "SIGTERM" | "SIGINT" | "SIGKILL" = "SIGTERM"): Promise<void> => {
    const proc = child;
    if (!proc || proc.pid === undefined) return;
    child = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      killGroup(proc.pid, signal);
      const gone = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
      if (!gone) killGroup(proc.pid, "SIGKILL");
    }
    await exited;
    // A child may outlive npm briefly; the group must be empty before the
    // same data directory is opened again.
    for (let i = 0; i < 100 && groupAlive(proc.pid); i++) await sleep(100);
    if (groupAlive(proc.pid)) killGroup(proc.pid, "SIGKILL");
  };

  const read = (path: string): string => (existsSync(path) ? readFileSync(path, "utf8") : "");
  const logTail = (lines = 40): string =>
    `--- stdout ---\n${read(stdoutPath).split("\n").slice(-lines).join("\n")}\n--- stderr ---\n${read(stderrPath).split("\n").slice(-lines).join("\n")}`;

  await launch();
  return {
    get origin() {
      return `http://127.0.0.1:${port}`;
    },
    get baseURL() {
      return `http://127.0.0.1:${port}/client/v4`;
    },
    get exit() {
      return exit;
    },
    get secrets() {
      return secrets;
    },
    dir,
    dataDir: dataDir ?? join(app, command === "start" ? "data" : ".wrangler/state"),
    stop,
    restart: async (signal = "SIGTERM", changes = {}) => {
      await stop(signal);
      secrets = { ...secrets, ...changes.secrets };
      extraEnv = { ...extraEnv, ...changes.env };
      waitForReady = changes.waitReady ?? options.waitReady !== false;
      await launch();
    },
    exited: () => exited,
    logTail,
    stdout: () => read(stdoutPath),
    stderr: () => read(stderrPath),
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

// Ready means the Worker itself answers its readiness check.
async function waitReady(origin: string, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`the server exited early (code ${proc.exitCode}, signal ${proc.signalCode})`);
    }
    try {
      const response = await fetch(`${origin}/readyz`, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  throw new Error(`the server did not become ready on ${origin} within 120 s`);
}
