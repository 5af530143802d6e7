// The processes measured beside the Worker: cfssl's API server (the same
// job, no storage or auth), `npm start` (what an operator runs: workerd
// behind a small launcher) and `npm run dev` (wrangler dev).
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { groupPids } from "./load.mjs";
import { freePort, waitForHttp } from "./net.mjs";
import { onCleanup } from "./lifecycle.mjs";
import { ROOT, stopProcess } from "./workerd.mjs";

function which(cmd) {
  try {
    return execFileSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).trim() || null;
  } catch {
    return null;
  }
}

/**
 * cfssl's path, installing Debian's golang-cfssl when running as root.
 * Returns { path } or { note } saying why the cfssl rows are missing.
 */
export function ensureCfssl(log) {
  const found = which("cfssl");
  if (found) return { path: found };
  if (process.getuid?.() !== 0) return { note: "cfssl is not installed and this is not root: `apt-get install golang-cfssl` to get its rows." };
  log("cfssl missing: apt-get install -y golang-cfssl");
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    execFileSync("apt-get", ["update"], { stdio: "ignore", timeout: 180_000, env });
    execFileSync("apt-get", ["install", "-y", "golang-cfssl"], { stdio: "ignore", timeout: 300_000, env });
  } catch (error) {
    return { note: `cfssl could not be installed (${error.message.split("\n")[0]}): its rows are missing.` };
  }
  const path = which("cfssl");
  return path ? { path } : { note: "cfssl is still not on PATH after apt-get: its rows are missing." };
}

/** Starts `cfssl serve` on loopback; returns { url, pid }. */
export async function startCfssl(path) {
  const port = await freePort();
  const child = spawn(path, ["serve", "-address", "127.0.0.1", "-port", String(port), "-loglevel", "4"], { stdio: "ignore" });
  onCleanup(() => stopProcess(child));
  await waitForHttp(`http://127.0.0.1:${port}/api/v1/cfssl/health`, 15_000, () => child.exitCode !== null);
  return { url: `http://127.0.0.1:${port}`, pid: child.pid, stop: () => stopProcess(child) };
}

/** Stops a process group (SIGTERM, then SIGKILL after 15 s) and waits for its leader. */
function groupStopper(child) {
  return () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once("exit", () => resolve());
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {}
      setTimeout(() => {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {}
      }, 15_000).unref();
    });
}

/**
 * `npm run dev -- --port N --persist-to DIR` (wrangler dev), with the run's
 * own secrets from an env file (so .dev.vars is neither read nor needed).
 * Returns { url, stop, pids } (pids: the process group, for CPU accounting).
 */
export async function startWranglerDev({ dir, secrets, log }) {
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
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-3000)));
  const stop = groupStopper(child);
  onCleanup(stop);
  log(`waiting for wrangler dev on port ${port}`);
  await waitForHttp(`http://127.0.0.1:${port}/`, 90_000, () => child.exitCode !== null).catch((e) => {
    throw new Error(`${e.message}\n${stderr}`);
  });
  return { url: `http://127.0.0.1:${port}`, stop, pids: () => groupPids(child.pid) };
}

/**
 * `npm start -- --port N --data-dir DIR` (workerd behind the launcher), with
 * the run's secrets in the environment, as the systemd unit passes them.
 * `via: "node"` runs `node scripts/start.mjs` as the unit does. Resolves
 * once `probe` (a path, with `headers`) answers 200; `coldMs` is the time
 * from spawning to that first answer. Returns { url, stop, pids, coldMs }.
 */
export async function startNpmStart({ dataDir, secrets, probe = "/healthz", headers = {}, via = "npm" }) {
  const port = await freePort();
  const flags = ["--port", String(port), "--host", "127.0.0.1", "--data-dir", dataDir];
  const [file, args] = via === "npm" ? ["npm", ["start", "--silent", "--", ...flags]] : [join(ROOT, "node_modules/.bin/node"), [join(ROOT, "scripts/start.mjs"), ...flags]];
  const env = { ...process.env, ...secrets, PATH: `${join(ROOT, "node_modules/.bin")}:${process.env.PATH}` };
  const started = performance.now();
  // stdout (a JSON line per request) discarded, as for workerd direct.
  const child = spawn(file, args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], detached: true, env });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-3000)));
  const stop = groupStopper(child);
  onCleanup(stop);
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited (${child.exitCode}):\n${stderr}`);
    if (performance.now() - started > 60_000) throw new Error(`npm start did not answer ${probe} within 60 s:\n${stderr}`);
    try {
      const response = await fetch(`${url}${probe}`, { headers });
      await response.arrayBuffer();
      if (response.status === 200) break;
    } catch {}
    await new Promise((r) => setTimeout(r, 5));
  }
  return { url, stop, pids: () => groupPids(child.pid), coldMs: performance.now() - started };
}
