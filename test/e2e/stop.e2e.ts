// Stopping, whichever process is signalled (issue 23): `npm start` in the
// background as a user, Docker or pm2 runs it, and SIGTERM or SIGINT sent to
// npm's pid only (npm runs the launcher through `sh -c`, and dash neither
// passes SIGTERM on nor lets SIGINT through until its child exits), to the
// launcher's, or SIGKILL to the launcher (workerd must not outlive it).
// Each case: within 15 s the port refuses connections, every process the
// start made is gone, and DATA_DIR/server.pid is removed. Also `npm run edge
// -- sync --watch` stopped by SIGTERM at npm's pid, and `--help` of the
// token tool.
import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, inject, it } from "vitest";
import { PID_DIR, REPO_ROOT, freePort, generateSecrets, killGroup, npmRun, projectEnv, snapshotApp } from "./server";
import { runAsync } from "./tls-edge";

const root = inject("e2eRoot");
const app = snapshotApp(root);

/** Whether a pid is a live process (a zombie counts as gone: it serves nothing and holds no port). */
function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return false;
  }
}

/** Every process below `pid` (children, theirs, ...), read from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  for (let queue = [pid]; queue.length > 0; ) {
    const next = children.get(queue.shift()!) ?? [];
    out.push(...next);
    queue.push(...next);
  }
  return out;
}

/** Whether a TCP connection to 127.0.0.1:port is refused (nothing listens). */
function refused(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      done(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => done(error.code === "ECONNREFUSED"));
  });
}

/** Waits until `test` holds, up to `ms`; answers the time it took, or null. */
async function within(ms: number, test: () => boolean | Promise<boolean>): Promise<number | null> {
  const start = Date.now();
  for (;;) {
    if (await test()) return Date.now() - start;
    if (Date.now() - start > ms) return null;
    await sleep(50);
  }
}

interface Started {
  npm: ChildProcess & { pid: number };
  port: number;
  dataDir: string;
  out: () => string;
}

const started: number[] = [];
afterAll(() => started.forEach((pgid) => killGroup(pgid, "SIGKILL")));

/** Spawns `npm start -- --port N --data-dir DIR` (its own process group) and waits for /readyz. */
async function npmStart(name: string): Promise<Started> {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const dataDir = join(dir, "data");
  const npm = spawn("npm", ["start", "--silent", "--", "--port", String(port), "--data-dir", dataDir], {
    cwd: app,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
    env: projectEnv(app, { ...generateSecrets() }),
  }) as ChildProcess & { pid: number };
  started.push(npm.pid);
  mkdirSync(join(root, PID_DIR), { recursive: true });
  writeFileSync(join(root, PID_DIR, String(npm.pid)), "");
  let out = "";
  npm.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  npm.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString()));
  const ready = await within(120_000, async () => {
    try {
      return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
    } catch {
      return false;
    }
  });
  expect(ready, out).not.toBeNull();
  return { npm, port, dataDir, out: () => out };
}

/** The launcher's and workerd's pids, as server.pid names them. */
function serverPids(dataDir: string): { launcher: number; workerd: number } {
  const [launcher, workerd] = readFileSync(join(dataDir, "server.pid"), "utf8").trim().split("\n").map(Number);
  return { launcher: launcher!, workerd: workerd! };
}

describe("npm start in the background stops, whichever process is signalled", () => {
  const cases: Array<[string, NodeJS.Signals, "npm" | "launcher", RegExp]> = [
    ["SIGTERM to npm's pid", "SIGTERM", "npm", /"event":"stopping","reason":"parent_exited"/],
    ["SIGINT to npm's pid", "SIGINT", "npm", /"event":"stopping","reason":"npm_signalled"/],
    ["SIGTERM to the launcher's pid", "SIGTERM", "launcher", /"event":"stopping","signal":"SIGTERM"/],
    ["SIGINT to the launcher's pid", "SIGINT", "launcher", /"event":"stopping","signal":"SIGINT"/],
  ];
  it.each(cases)("%s: within 15 s the port refuses, nothing of it runs, server.pid is gone, stopped cleanly", async (label, signal, target, stopping) => {
    const server = await npmStart(`stop-${signal}-${target}`);
    const { launcher, workerd } = serverPids(server.dataDir);
    const tree = descendants(server.npm.pid);
    expect(tree).toEqual(expect.arrayContaining([launcher, workerd]));
    const sent = Date.now();
    process.kill(target === "npm" ? server.npm.pid : launcher, signal);
    const took = await within(15_000, async () => !existsSync(join(server.dataDir, "server.pid")) && [server.npm.pid, ...tree].every((pid) => !alive(pid)) && (await refused(server.port)));
    expect(took, `${label}: ${tree.filter(alive).join(" ")} still running\n${server.out()}`).not.toBeNull();
    console.log(`stop latency, ${label}: ${Date.now() - sent} ms`);
    expect(server.out()).toMatch(stopping);
    expect(server.out()).toContain('"event":"stopped","clean":true');
  });

  it("SIGKILL to the launcher: workerd drains and exits within a few seconds, server.pid is removed, the directory can be served again", async () => {
    const server = await npmStart("stop-kill-launcher");
    const { launcher, workerd } = serverPids(server.dataDir);
    const tree = descendants(server.npm.pid);
    const sent = Date.now();
    process.kill(launcher, "SIGKILL");
    const took = await within(5_000, async () => !alive(workerd) && !existsSync(join(server.dataDir, "server.pid")) && (await refused(server.port)));
    expect(took, `workerd ${workerd} ${alive(workerd) ? "still runs" : "is gone"}\n${server.out()}`).not.toBeNull();
    console.log(`stop latency, SIGKILL to the launcher (workerd gone): ${Date.now() - sent} ms`);
    expect(await within(15_000, () => tree.every((pid) => !alive(pid)))).not.toBeNull();
    const again = await npmStart("stop-kill-launcher-again");
    process.kill(again.npm.pid, "SIGTERM");
    expect(await within(15_000, () => refused(again.port))).not.toBeNull();
  });
});

describe("npm run edge -- sync --watch", () => {
  it("stops within a few seconds of SIGTERM at npm's pid", async () => {
    const dir = join(root, "edge-watch");
    mkdirSync(dir, { recursive: true });
    const port = await freePort(); // nothing listens there: every sync fails, and the watch goes on
    const npm = spawn("npm", ["run", "--silent", "edge", "--", "sync", "--watch", "60", "--dir", join(dir, "edge"), "--url", `http://127.0.0.1:${port}`, "--token", "t", "--zone", "z", "--out", join(dir, "out")], {
      cwd: app,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: projectEnv(app),
    }) as ChildProcess & { pid: number };
    started.push(npm.pid);
    let out = "";
    npm.stdout!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    npm.stderr!.on("data", (chunk: Buffer) => (out += chunk.toString()));
    expect(await within(60_000, () => /next try in 60 s/.test(out)), out).not.toBeNull();
    const tree = descendants(npm.pid);
    const agent = tree.find((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("edge.mjs"));
    expect(agent, tree.join(" ")).toBeDefined();
    const sent = Date.now();
    process.kill(npm.pid, "SIGTERM");
    expect(await within(5_000, () => [npm.pid, ...tree].every((pid) => !alive(pid))), out).not.toBeNull();
    console.log(`stop latency, npm run edge -- sync --watch, SIGTERM to npm's pid: ${Date.now() - sent} ms`);
  });
});

describe("npm run token", () => {
  it("--help prints the usage on stdout and exits 0; a bad flag stays a usage error (exit 2)", async () => {
    const help = await npmRun(app, "token", ["--help"]);
    expect([help.code, help.stderr]).toEqual([0, ""]);
    expect(help.stdout).toMatch(/^usage:\n {2}npm run --silent token -- /);
    const bad = await npmRun(app, "token", ["--zone", "z", "--bogus"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^token: unknown argument --bogus\nusage:/);
  });

  it("with API_TOKEN_SECRET in the environment and no .dev.vars, signs and creates no file", async () => {
    const bare = snapshotApp(root, "token-app");
    rmSync(join(bare, ".dev.vars"), { force: true });
    const before = readdirSync(bare).sort();
    const minted = await npmRun(bare, "token", ["--zone", "z"], { API_TOKEN_SECRET: generateSecrets().API_TOKEN_SECRET });
    expect(minted.code, minted.stderr).toBe(0);
    expect(minted.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    expect(readdirSync(bare).sort()).toEqual(before);
  });

  it("--secret-file takes the secret from an environment file, a bare secret, or stdin, never from the command line; it verifies", async () => {
    const bare = snapshotApp(root, "token-secret-file");
    rmSync(join(bare, ".dev.vars"), { force: true });
    const secret = generateSecrets().API_TOKEN_SECRET;
    const verify = (token: string) => {
      const [header, payload, signature] = token.trim().split(".");
      return createHmac("sha256", secret).update(`${header}.${payload}`).digest("base64url") === signature;
    };
    const envFile = join(bare, "token.env");
    writeFileSync(envFile, `# the signer's secret\nAPI_TOKEN_SECRET=${secret}\n`, { mode: 0o600 });
    const fromEnvFile = await npmRun(bare, "token", ["--zone", "z", "--secret-file", envFile]);
    expect([fromEnvFile.code, fromEnvFile.stderr]).toEqual([0, ""]);
    expect(verify(fromEnvFile.stdout)).toBe(true);
    // A bare secret, readable by others: used, with a warning.
    const bareFile = join(bare, "token.secret");
    writeFileSync(bareFile, `${secret}\n`, { mode: 0o644 });
    const fromBare = await npmRun(bare, "token", ["--zone", "z", "--secret-file", bareFile]);
    expect(fromBare.code).toBe(0);
    expect(verify(fromBare.stdout)).toBe(true);
    expect(fromBare.stderr).toBe(`token: warning: ${bareFile} can be read by other users (chmod 600 it)\n`);
    // Standard input; it wins over a different secret in the environment.
    const piped = await runAsync("npm", ["run", "--silent", "token", "--", "--zone", "z", "--secret-file", "-"], { input: `API_TOKEN_SECRET=${secret}\n`, env: projectEnv(bare, { API_TOKEN_SECRET: "another-secret" }), cwd: bare });
    expect(piped.code, piped.stderr).toBe(0);
    expect(verify(piped.stdout)).toBe(true);
    // The README's way to read one value from .dev.vars (as npm start writes it: single-quoted values), run as written there.
    const snippet = /`(ADMIN_SECRET=\$\(sed [^`]+\))`/.exec(readFileSync(join(REPO_ROOT, "README.md"), "utf8"))?.[1];
    expect(snippet, "the README's .dev.vars snippet").toBeDefined();
    writeFileSync(join(bare, ".dev.vars"), `# Local development secrets: never commit this file.\nADMIN_SECRET='a+b/c=d'\nAPI_TOKEN_SECRET='${secret}'\n`, { mode: 0o600 });
    const read = await runAsync("bash", ["-c", `${snippet} && printf %s "$ADMIN_SECRET"`], { cwd: bare });
    expect([read.code, read.stdout]).toEqual([0, "a+b/c=d"]);
    rmSync(join(bare, ".dev.vars"));
    // A file without it: refused, naming the file, nothing printed.
    writeFileSync(envFile, "OTHER=1\nMORE=2\n");
    const missing = await npmRun(bare, "token", ["--zone", "z", "--secret-file", envFile]);
    expect([missing.code, missing.stdout]).toEqual([1, ""]);
    expect(missing.stderr).toContain(`--secret-file ${envFile} holds no API_TOKEN_SECRET= line`);
  });
});
