// The processes measured beside the Worker: cfssl's API server (the same
// job, no storage or auth), `npm start` (what an operator runs: workerd
// behind a small launcher) and `npm run dev` (wrangler dev).
import type { ChildProcess } from "node:child_process";
import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Secrets } from "./fixtures.ts";
import type { Log } from "./lifecycle.ts";
import { errorMessage, onCleanup } from "./lifecycle.ts";
import type { Headers } from "./load.ts";
import { groupPids } from "./load.ts";
import { freePort, waitForHttp } from "./net.ts";
import { ROOT, stopProcess } from "./workerd.ts";

function which(cmd: string): string | null {
  try {
    return execFileSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

/** cfssl's path, or a note saying why the cfssl rows are missing. */
export type CfsslFound = { path: string } | { note: string };

/** A command's path, installing its Debian package when it is missing and this runs as root; else a note on the rows missing. */
export function ensureDebianTool(command: string, pkg: string, rows: string, log: Log): CfsslFound {
  const found = which(command);
  if (found) return { path: found };
  if (process.getuid?.() !== 0) return { note: `${command} is not installed and this is not root: \`apt-get install ${pkg}\` to get ${rows}.` };
  log(`${command} missing: apt-get install -y ${pkg}`);
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["update"], { stdio: "ignore", timeout: 180_000, env });
    execFileSync("apt-get", ["install", "-y", pkg], { stdio: "ignore", timeout: 300_000, env });
  } catch (error) {
    return { note: `${command} could not be installed (${errorMessage(error).split("\n")[0]}): ${rows} are missing.` };
  }
  const path = which(command);
  return path ? { path } : { note: `${command} is still not on PATH after apt-get: ${rows} are missing.` };
}

/** cfssl's path, installing Debian's golang-cfssl when running as root. */
export function ensureCfssl(log: Log): CfsslFound {
  return ensureDebianTool("cfssl", "golang-cfssl", "its rows", log);
}

/** A server process the bench started. */
export interface Peer {
  url: string;
  stop(): Promise<void>;
}

/** The pid of a child just spawned (absent only when spawning failed). */
function pidOf(child: ChildProcess, what: string): number {
  if (child.pid === undefined) throw new Error(`${what} could not be started`);
  return child.pid;
}

/** Starts `cfssl serve` on loopback. */
export async function startCfssl(path: string): Promise<Peer & { pid: number }> {
  const port = await freePort();
  const child = spawn(path, ["serve", "-address", "127.0.0.1", "-port", String(port), "-loglevel", "4"], { stdio: "ignore" });
  onCleanup(() => stopProcess(child));
  await waitForHttp(`http://127.0.0.1:${port}/api/v1/cfssl/health`, 15_000, () => child.exitCode !== null);
  return { url: `http://127.0.0.1:${port}`, pid: pidOf(child, "cfssl"), stop: () => stopProcess(child) };
}

/** Stops a process group (SIGTERM, then SIGKILL after 15 s) and waits for its leader. */
function groupStopper(child: ChildProcess, pgid: number): () => Promise<void> {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      try {
        process.kill(-pgid, "SIGTERM");
      } catch {}
      setTimeout(() => {
        try {
          process.kill(-pgid, "SIGKILL");
        } catch {}
      }, 15_000).unref();
    });
}

/** The last 3,000 characters a child wrote on stderr, as it goes. */
function stderrTail(child: ChildProcess): () => string {
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d).slice(-3000)));
  return () => stderr;
}

/**
 * `npm run dev -- --port N --persist-to DIR` (wrangler dev), with the run's
 * own secrets from an env file (so .dev.vars is neither read nor needed).
 * `pids`: the process group, for CPU accounting.
 */
export async function startWranglerDev({ dir, secrets, log }: { dir: string; secrets: Secrets; log: Log }): Promise<Peer & { pids: () => number[] }> {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const envFile = join(dir, "bench.env");
  writeFileSync(envFile, Object.entries(secrets).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join("\n") + "\n", { mode: 0o600 });
  const args = ["run", "dev", "--", "--port", String(port), "--ip", "127.0.0.1", "--persist-to", join(dir, "state"), "--env-file", envFile];
  // Its own process group, so stopping it also stops wrangler's workerd.
  const child = spawn("npm", args, {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", BROWSER: "none" },
  });
  const stderr = stderrTail(child);
  const pgid = pidOf(child, "npm run dev");
  const stop = groupStopper(child, pgid);
  onCleanup(stop);
  log(`waiting for wrangler dev on port ${port}`);
  await waitForHttp(`http://127.0.0.1:${port}/`, 90_000, () => child.exitCode !== null).catch((e: unknown) => {
    throw new Error(`${errorMessage(e)}\n${stderr()}`);
  });
  return { url: `http://127.0.0.1:${port}`, stop, pids: () => groupPids(pgid) };
}

/**
 * `npm start -- --port N --data-dir DIR` (workerd behind the launcher), with
 * the run's secrets in the environment, as the systemd unit passes them.
 * `via: "node"` runs `node scripts/start.mjs` as the unit does. Resolves
 * once `probe` (a path, with `headers`) answers 200; `coldMs` is the time
 * from spawning to that first answer. `flags` and `env` add to the command's
 * flags and environment (vars overriding wrangler.toml's, ACME_DIRECTORIES);
 * `stderrFile` keeps all of stderr (the Worker's error lines), not only its end.
 */
export async function startNpmStart({
  dataDir,
  secrets,
  probe = "/healthz",
  headers = {},
  via = "npm",
  flags: extraFlags = [],
  env: extraEnv = {},
  stderrFile,
  root = ROOT,
}: {
  dataDir: string;
  secrets: Secrets;
  probe?: string;
  headers?: Headers;
  via?: "npm" | "node";
  flags?: string[];
  env?: Record<string, string>;
  stderrFile?: string;
  /** The checkout to run (default: this one; see sourceAt()). */
  root?: string;
}): Promise<Peer & { pids: () => number[]; coldMs: number }> {
  const port = await freePort();
  const flags = ["--port", String(port), "--host", "127.0.0.1", "--data-dir", dataDir, ...extraFlags];
  const [file, args] = via === "npm" ? ["npm", ["start", "--silent", "--", ...flags]] : [join(ROOT, "node_modules/.bin/node"), [join(root, "scripts/start.mjs"), ...flags]];
  const env = { ...process.env, ...secrets, ...extraEnv, PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH}` };
  const started = performance.now();
  // stdout (a JSON line per request) discarded, as for workerd direct.
  const child = spawn(file, args, { cwd: root, stdio: ["ignore", "ignore", "pipe"], detached: true, env });
  const stderr = stderrTail(child);
  if (stderrFile) child.stderr?.on("data", (d: Buffer) => appendFileSync(stderrFile, d));
  const pgid = pidOf(child, "npm start");
  const stop = groupStopper(child, pgid);
  onCleanup(stop);
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${stderr()}`);
    if (performance.now() - started > 60_000) throw new Error(`npm start did not answer ${probe} within 60 s:\n${stderr()}`);
    try {
      const response = await fetch(`${url}${probe}`, { headers });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 5));
  }
  return { url, stop, pids: () => groupPids(pgid), coldMs: performance.now() - started };
}

/**
 * The project's files at `commit` (git archive), in `dir`, with this
 * checkout's node_modules linked: a server built from a commit, not from a
 * working tree others may be editing. Its short hash.
 */
export function sourceAt(commit: string, dir: string): string {
  const hash = execFileSync("git", ["rev-parse", "--short", `${commit}^{commit}`], { cwd: ROOT, encoding: "utf8" }).trim();
  mkdirSync(dir, { recursive: true });
  execFileSync("tar", ["-x", "-C", dir], { input: execFileSync("git", ["archive", hash], { cwd: ROOT, maxBuffer: 256 * 1024 * 1024 }) });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"), "dir");
  return hash;
}
