// The TLS side of the key delivery proof: the edge agent run as an edge host
// runs it (a child process of plain Node), a real nginx on loopback under its
// own prefix, and OpenSSL's s_client as the TLS client that must verify it.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { NGINX, OPENSSL } from "./checkers";
import { admin } from "./api";
import { mintToken } from "./credentials";
import { PID_DIR, REPO_ROOT, type TestServer, freePort } from "./server";

/** A finished process: exit code, output, and how long it ran. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs a program to completion without blocking the event loop (a blocked
 * loop lets the server close keep-alive sockets under the test's feet).
 */
export function runAsync(file: string, args: string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<Ran> {
  const started = performance.now();
  return new Promise((done, fail) => {
    const child = execFile(
      file,
      args,
      { encoding: "utf8", maxBuffer: 16 * 1024 * 1024, env: options.env ?? process.env, timeout: options.timeoutMs ?? 60_000, ...(options.cwd === undefined ? {} : { cwd: options.cwd }) },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== "number") return fail(error);
        done({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr, ms: performance.now() - started });
      },
    );
    // A program may exit before it reads its input (s_client on a refused handshake): the pipe is then closed,
    // and the EPIPE of writing to it says nothing about the run (its exit code does).
    child.stdin?.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") fail(error);
    });
    child.stdin?.end(options.input ?? "");
  });
}

/** The edge agent as an edge host runs it: the one file packages/edge-agent builds, Node 20 or later. */
export const EDGE_BIN = join(REPO_ROOT, "packages", "edge-agent", "dist", "edge.mjs");

let built: Promise<string> | null = null;

/**
 * Builds EDGE_BIN when its sources changed since it was built (as `npm run
 * edge` does), once per test file, with the suite's Node; answers its path.
 */
export function edgeAgentBin(): Promise<string> {
  built ??= runAsync(process.execPath, [join(REPO_ROOT, "packages", "edge-agent", "build.mjs")], { timeoutMs: 120_000 }).then((ran) => {
    if (ran.code !== 0) throw new Error(`building the edge agent failed:\n${ran.stderr}`);
    return EDGE_BIN;
  });
  return built;
}

/** The edge agent as an edge host runs it: `node edge.mjs ...` with the given Node binary. */
export async function edgeAgent(node: string, args: string[]): Promise<Ran> {
  return runAsync(node, [await edgeAgentBin(), ...args], { timeoutMs: 120_000 });
}

/** What `edge sync` needs of an enrolled edge, and `edge init`'s run (its output is searched for key material). */
export interface EnrolledEdge {
  edgeDir: string;
  tokenFile: string;
  serviceKey: string;
  init: Ran;
}

/**
 * An edge enrolled as an operator does it: `edge init` into DIR/edge-key,
 * registered through the admin API (labels DE, WEUR), whose reply carries
 * the service key the edge pins, and a delivery token for a year (as the
 * operator's tool mints it; a shorter one makes every sync warn) in
 * DIR/token, mode 0600.
 */
export async function enrolEdge(server: TestServer, dir: string, edgeId: string, zone: string): Promise<EnrolledEdge> {
  const edgeDir = join(dir, "edge-key");
  const init = await edgeAgent(process.execPath, ["init", "--dir", edgeDir]);
  if (init.code !== 0) throw new Error(`edge init failed: ${init.stderr}`);
  const jwk = JSON.parse(init.stdout.trim().split("\n").at(-1)!) as Record<string, string>;
  const registered = await admin<{ service_key: Record<string, string> }>(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/edges/${edgeId}`, {
    public_key: jwk, labels: { country: "DE", region: "WEUR" },
  });
  if (registered.status !== 201) throw new Error(`registering edge ${edgeId} failed: ${registered.text}`);
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, mintToken(server.secrets.API_TOKEN_SECRET, { zones: [zone], edge: edgeId, ttl: 365 * 86_400 }), { mode: 0o600 });
  return { edgeDir, tokenFile, serviceKey: JSON.stringify(registered.body!.result.service_key), init };
}

/**
 * A Node 20 to run the agent with, to prove it runs there too (the suite
 * itself runs on Node 22): E2E_EDGE_NODE, else Debian's /usr/bin/node when it
 * is a different major version; null when there is none.
 */
export async function otherNode(): Promise<{ path: string; version: string } | null> {
  const candidate = process.env.E2E_EDGE_NODE ?? "/usr/bin/node";
  if (!existsSync(candidate)) return null;
  const ran = await runAsync(candidate, ["--version"]);
  const version = ran.stdout.trim();
  return ran.code === 0 && version !== process.version ? { path: candidate, version } : null;
}

/** One site nginx serves: a host name and its certificate files. */
export interface Site {
  host: string;
  crt: string;
  key: string;
}

/** An nginx master on 127.0.0.1:port, unprivileged-safe: its own prefix, pid, logs and temp paths. */
export interface Nginx {
  port: number;
  prefix: string;
  /** The command an operator would give the agent as --reload. */
  reloadCommand: string;
  stop(): Promise<void>;
}

function config(prefix: string, port: number, sites: Site[]): string {
  const temp = (name: string) => join(prefix, "tmp", name);
  const servers = sites
    .map(
      (s) => `  server {
    listen 127.0.0.1:${port} ssl;
    server_name ${s.host};
    ssl_certificate ${s.crt};
    ssl_certificate_key ${s.key};
    return 200 "${s.host}\\n";
  }`,
    )
    .join("\n");
  return `daemon off;
worker_processes 1;
pid ${join(prefix, "nginx.pid")};
error_log ${join(prefix, "error.log")} notice;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${temp("body")};
  proxy_temp_path ${temp("proxy")};
  fastcgi_temp_path ${temp("fastcgi")};
  uwsgi_temp_path ${temp("uwsgi")};
  scgi_temp_path ${temp("scgi")};
${servers}
}
`;
}

async function listening(port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host: "127.0.0.1", port }, () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}

/**
 * Starts nginx in the foreground (`daemon off`) as a child process in its own
 * process group, registered with the suite's reaper, serving `sites`.
 */
export async function startNginx(root: string, prefix: string, sites: Site[]): Promise<Nginx> {
  mkdirSync(join(prefix, "tmp"), { recursive: true });
  const port = await freePort();
  const conf = join(prefix, "nginx.conf");
  writeFileSync(conf, config(prefix, port, sites));
  const errorLog = join(prefix, "error.log");
  const args = ["-p", prefix, "-c", conf, "-e", errorLog];
  const test = await runAsync(NGINX, [...args, "-t"]);
  if (test.code !== 0) throw new Error(`nginx -t failed:\n${test.stderr}`);
  const child: ChildProcess = spawn(NGINX, args, { detached: true, stdio: "ignore" });
  if (child.pid === undefined) throw new Error("nginx did not start");
  const pidFile = join(root, PID_DIR, String(child.pid));
  mkdirSync(join(root, PID_DIR), { recursive: true });
  writeFileSync(pidFile, "");
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  for (let i = 0; i < 100 && !(await listening(port)); i++) await sleep(50);
  if (!(await listening(port))) throw new Error(`nginx is not listening on ${port}:\n${readFileSync(errorLog, "utf8")}`);
  return {
    port,
    prefix,
    reloadCommand: [NGINX, ...args, "-s", "reload"].join(" "),
    stop: async () => {
      try {
        process.kill(-child.pid!, "SIGQUIT");
      } catch {
        // already gone
      }
      await Promise.race([exited, sleep(5_000)]);
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // gone
      }
      rmSync(pidFile, { force: true });
    },
  };
}

/** What `openssl s_client` saw of one handshake. */
export interface Handshake {
  /** The handshake completed and the chain verified against the CA, for the host name. */
  verified: boolean;
  /** The leaf the server sent, PEM. */
  leaf: string | null;
  /** Its serial number, upper-case hex, from `openssl x509 -serial`. */
  serial: string | null;
  text: string;
}

/**
 * Connects with `openssl s_client -verify_return_error -CAfile ca.pem
 * -servername HOST -verify_hostname HOST`: a certificate that does not chain
 * to the CA, or does not name the host, fails the handshake.
 */
export async function handshake(port: number, host: string, caFile: string, extra: readonly string[] = []): Promise<Handshake> {
  const ran = await runAsync(OPENSSL, [
    "s_client", "-connect", `127.0.0.1:${port}`, "-servername", host, "-verify_hostname", host,
    "-verify_return_error", "-CAfile", caFile, "-showcerts", ...extra,
  ], { timeoutMs: 20_000 });
  const text = `${ran.stdout}\n${ran.stderr}`;
  const verified = ran.code === 0 && /Verify return code: 0 \(ok\)/.test(ran.stdout);
  const leaf = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(ran.stdout)?.[0] ?? null;
  let serial: string | null = null;
  if (leaf) {
    const x = await runAsync(OPENSSL, ["x509", "-noout", "-serial"], { input: `${leaf}\n` });
    serial = /serial=([0-9A-F]+)/.exec(x.stdout)?.[1] ?? null;
  }
  return { verified, leaf: leaf ? `${leaf}\n` : null, serial, text };
}
