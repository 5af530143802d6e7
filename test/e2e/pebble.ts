// Let's Encrypt's test CA for the end-to-end suite: Debian's `pebble` and
// `pebble-challtestsrv` (its mock DNS and management API) on loopback, each
// on free ports, with a listener certificate made here by OpenSSL (the
// package ships none; /work/notes/pebble.md). Each instance has its own
// temporary directory and process groups, registered with the global setup
// so a crashed test file leaves no CA behind.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { OPENSSL } from "./checkers";
import { freePort, killGroup, PID_DIR } from "./server";

/** Debian's binaries; E2E_PEBBLE and E2E_CHALLTESTSRV point at others. */
export const PEBBLE = process.env.E2E_PEBBLE ?? "/usr/bin/pebble";
export const CHALLTESTSRV = process.env.E2E_CHALLTESTSRV ?? "/usr/bin/pebble-challtestsrv";

/** What the request side of a fetch needs here (the ACME client passes this much, and so do tests). */
export interface FetchInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/** A fetch over node:https that trusts exactly `caPem` (so no NODE_EXTRA_CA_CERTS, no global agent change). */
export type TrustingFetch = (url: string, init?: FetchInit) => Promise<Response>;

/** Options for {@link startPebble}. */
export interface PebbleOptions {
  /** The suite's temp root (`inject("e2eRoot")`): the instance's directory goes there, and its process groups are registered for the teardown. Default: the OS temp directory, unregistered. */
  root?: string;
  /** `certificateValidityPeriod` in seconds (pebble's default is about 5 years). */
  certificateValiditySeconds?: number;
  /** EAB MAC keys by key id (base64url); when given, pebble requires External Account Binding. */
  eab?: Record<string, string>;
  /** PEBBLE_WFE_NONCEREJECT: the percentage of good nonces rejected with badNonce (default 0: deterministic; pebble's own default is 5). */
  nonceRejectPercent?: number;
  /** PEBBLE_AUTHZREUSE: the chance a new order reuses a valid authorization (default 0; about 1% still happens, an off-by-one in 2.4). */
  authzReusePercent?: number;
  /** pebble `-strict` (default true): refuses a challenge POST whose body is not exactly `{}`, and ACME v1 leftovers. */
  strict?: boolean;
}

/** A running pebble with its challenge test server. */
export interface Pebble {
  /** `https://127.0.0.1:PORT/dir`. */
  readonly directoryUrl: string;
  /** `https://127.0.0.1:PORT` (roots, intermediates, cert status). */
  readonly managementUrl: string;
  /** The port pebble's VA dials for http-01 (on whatever the name resolves to: 127.0.0.1 by default). */
  readonly httpPort: number;
  /** The port pebble's VA dials for tls-alpn-01. */
  readonly tlsPort: number;
  /** challtestsrv's mock DNS (TCP and UDP), which pebble's VA resolves with. */
  readonly dnsPort: number;
  /** challtestsrv's management API, `http://127.0.0.1:PORT`. */
  readonly challtestsrvUrl: string;
  /** The CA that signed the listener certificate of the directory and the management API (SAN IP:127.0.0.1, DNS:localhost). */
  readonly listenerCaPem: string;
  /** The listener CA's file, for tools that take a path (openssl, curl, workerd's trustedCertificates). */
  readonly listenerCaFile: string;
  /** A fetch that trusts the listener CA: give it to the ACME client. */
  readonly fetch: TrustingFetch;
  /** The instance's directory (config, certificates, logs). */
  readonly dir: string;
  /** Pebble's root (regenerated at every start, so fetched from the management API). */
  rootPem(): Promise<string>;
  /** Pebble's intermediate. */
  intermediatePem(): Promise<string>;
  /** Adds a TXT value at `host` (appends to earlier ones; a trailing dot is added, which challtestsrv needs). */
  setTxt(host: string, value: string): Promise<void>;
  /** Removes every TXT value at `host`. */
  clearTxt(host: string): Promise<void>;
  /** The A answer for names without one of their own ("" for none). */
  setDefaultIPv4(ip: string): Promise<void>;
  /** A records for one name. */
  addA(host: string, addresses: string[]): Promise<void>;
  clearA(host: string): Promise<void>;
  /** The last lines of pebble's and challtestsrv's logs, for failure messages. */
  logTail(lines?: number): string;
  /** Freezes pebble (SIGSTOP): connections are accepted by the kernel and never answered, as a CA that hangs. */
  pause(): void;
  /** Lets a paused pebble go on (SIGCONT): what it had received is then answered. */
  resume(): void;
  /** Stops both (SIGTERM, then SIGKILL after 5 s) and removes the directory unless E2E_KEEP_TMP is set. */
  stop(): Promise<void>;
}

/** See {@link TrustingFetch}. The whole body is read before the Response is made (tests' replies are small). */
export function fetchTrusting(caPem: string): TrustingFetch {
  return (url, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const target = new URL(url);
      if (target.protocol !== "https:") return reject(new TypeError(`fetchTrusting: ${target.protocol} is not https`));
      const body = init.body === undefined ? undefined : Buffer.from(init.body);
      const headers: Record<string, string | number> = { ...init.headers };
      if (body) headers["content-length"] = body.length;
      const request = httpsRequest(
        target,
        { method: init.method ?? "GET", headers, ca: caPem, agent: false, ...(init.signal ? { signal: init.signal } : {}) },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () => {
            const out = new Headers();
            for (const [name, value] of Object.entries(response.headers)) {
              if (value === undefined) continue;
              for (const item of Array.isArray(value) ? value : [value]) out.append(name, item);
            }
            const status = response.statusCode ?? 0;
            const nullBody = init.method === "HEAD" || [101, 204, 205, 304].includes(status);
            resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: response.statusMessage ?? "", headers: out }));
          });
        },
      );
      request.on("error", reject);
      request.end(body);
    });
}

function openssl(dir: string, args: string[]): void {
  execFileSync(OPENSSL, args, { cwd: dir, stdio: "pipe" });
}

/** A listener CA and a leaf for 127.0.0.1/localhost signed by it, as pebble.md §1 makes them. */
function makeListenerCertificates(dir: string): void {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(dir, ["req", "-x509", ...ec, "-keyout", "listener-ca.key", "-out", "listener-ca.pem", "-days", "30",
    "-subj", "/CN=Pebble listener test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  openssl(dir, ["req", ...ec, "-keyout", "listener.key", "-out", "listener.csr", "-subj", "/CN=localhost"]);
  writeFileSync(
    join(dir, "listener.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  openssl(dir, ["x509", "-req", "-in", "listener.csr", "-CA", "listener-ca.pem", "-CAkey", "listener-ca.key", "-CAcreateserial",
    "-out", "listener.pem", "-days", "30", "-extfile", "listener.ext"]);
}

interface Spawned {
  child: ChildProcess;
  exited: Promise<void>;
  pidFile: string | null;
}

function spawnLogged(file: string, args: string[], env: NodeJS.ProcessEnv, log: string, root: string | undefined): Spawned {
  const fd = openSync(log, "a");
  // Its own process group, so stop() (or the global teardown) ends all of it.
  const child = spawn(file, args, { env, stdio: ["ignore", fd, fd], detached: true });
  closeSync(fd);
  let pidFile: string | null = null;
  if (root && child.pid !== undefined) {
    mkdirSync(join(root, PID_DIR), { recursive: true });
    pidFile = join(root, PID_DIR, String(child.pid));
    writeFileSync(pidFile, "");
  }
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  return { child, exited, pidFile };
}

async function stopSpawned(spawned: Spawned): Promise<void> {
  const { child } = spawned;
  if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
    killGroup(child.pid, "SIGCONT"); // a paused process would not act on SIGTERM
    killGroup(child.pid, "SIGTERM");
    const timedOut = await Promise.race([spawned.exited.then(() => false), sleep(5_000).then(() => true)]);
    if (timedOut) {
      killGroup(child.pid, "SIGKILL");
      await spawned.exited;
    }
  }
  if (spawned.pidFile) rmSync(spawned.pidFile, { force: true });
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, alive: () => boolean, logs: () => string): Promise<T> {
  const deadline = Date.now() + 15_000;
  let last: unknown;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`${what}: the process exited\n${logs()}`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(25);
  }
  throw new Error(`${what}: not ready within 15 s (${String(last)})\n${logs()}`);
}

/**
 * Starts challtestsrv (mock DNS answering every name with 127.0.0.1 and no
 * AAAA, so pebble dials http-01 on IPv4; its own challenge servers off, so
 * the http-01 port is the test's) and pebble (VA sleeps off, resolving
 * through the mock DNS), and waits until both answer.
 */
export async function startPebble(options: PebbleOptions = {}): Promise<Pebble> {
  const dir = mkdtempSync(join(options.root ?? tmpdir(), "pebble-"));
  makeListenerCertificates(dir);
  const listenerCaFile = join(dir, "listener-ca.pem");
  const listenerCaPem = readFileSync(listenerCaFile, "utf8");
  const [acmePort, managementPort, httpPort, tlsPort, dnsPort, challtestsrvPort] = await Promise.all(
    Array.from({ length: 6 }, () => freePort()),
  ) as [number, number, number, number, number, number];
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${acmePort}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: join(dir, "listener.pem"),
      privateKey: join(dir, "listener.key"),
      httpPort,
      tlsPort,
      ocspResponderURL: "",
      externalAccountBindingRequired: options.eab !== undefined,
      ...(options.eab ? { externalAccountMACKeys: options.eab } : {}),
      ...(options.certificateValiditySeconds !== undefined ? { certificateValidityPeriod: options.certificateValiditySeconds } : {}),
    },
  };
  writeFileSync(join(dir, "pebble-config.json"), JSON.stringify(config, null, 2));
  const pebbleLog = join(dir, "pebble.log");
  const challLog = join(dir, "challtestsrv.log");
  const logs = (lines = 30): string =>
    `--- pebble.log ---\n${tail(pebbleLog, lines)}\n--- challtestsrv.log ---\n${tail(challLog, lines)}`;

  const chall = spawnLogged(
    CHALLTESTSRV,
    ["-http01", "", "-https01", "", "-tlsalpn01", "", "-dns01", `127.0.0.1:${dnsPort}`,
      "-management", `127.0.0.1:${challtestsrvPort}`, "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
    process.env,
    challLog,
    options.root,
  );
  const pebbleEnv: NodeJS.ProcessEnv = {
    ...process.env,
    PEBBLE_VA_NOSLEEP: "1",
    PEBBLE_WFE_NONCEREJECT: String(options.nonceRejectPercent ?? 0),
    PEBBLE_AUTHZREUSE: String(options.authzReusePercent ?? 0),
  };
  const pebbleArgs = ["-config", join(dir, "pebble-config.json"), "-dnsserver", `127.0.0.1:${dnsPort}`];
  if (options.strict ?? true) pebbleArgs.push("-strict");
  const pebble = spawnLogged(PEBBLE, pebbleArgs, pebbleEnv, pebbleLog, options.root);

  const fetch = fetchTrusting(listenerCaPem);
  const challtestsrvUrl = `http://127.0.0.1:${challtestsrvPort}`;
  const manage = async (path: string, body: unknown): Promise<void> => {
    const response = await globalThis.fetch(`${challtestsrvUrl}${path}`, { method: "POST", body: JSON.stringify(body) });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`challtestsrv ${path}: HTTP ${response.status}`);
  };
  const fqdn = (host: string): string => (host.endsWith(".") ? host : `${host}.`);
  const stop = async (): Promise<void> => {
    await Promise.all([stopSpawned(pebble), stopSpawned(chall)]);
    if (!process.env.E2E_KEEP_TMP) rmSync(dir, { recursive: true, force: true });
  };
  const alive = (spawned: Spawned) => () => spawned.child.exitCode === null && spawned.child.signalCode === null;

  const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
  const managementUrl = `https://127.0.0.1:${managementPort}`;
  try {
    await until("pebble-challtestsrv", async () => (await manage("/set-default-ipv4", { ip: "127.0.0.1" }), true), alive(chall), logs);
    await until("pebble", async () => ((await fetch(directoryUrl)).status === 200 ? true : undefined), alive(pebble), logs);
  } catch (error) {
    await stop();
    throw error;
  }
  const managementPem = async (path: string): Promise<string> => {
    const response = await fetch(`${managementUrl}${path}`);
    const text = await response.text();
    if (response.status !== 200) throw new Error(`pebble ${path}: HTTP ${response.status}`);
    return text;
  };

  return {
    directoryUrl,
    managementUrl,
    httpPort,
    tlsPort,
    dnsPort,
    challtestsrvUrl,
    listenerCaPem,
    listenerCaFile,
    fetch,
    dir,
    rootPem: () => managementPem("/roots/0"),
    intermediatePem: () => managementPem("/intermediates/0"),
    setTxt: (host, value) => manage("/set-txt", { host: fqdn(host), value }),
    clearTxt: (host) => manage("/clear-txt", { host: fqdn(host) }),
    setDefaultIPv4: (ip) => manage("/set-default-ipv4", { ip }),
    addA: (host, addresses) => manage("/add-a", { host, addresses }),
    clearA: (host) => manage("/clear-a", { host }),
    logTail: logs,
    pause: () => killGroup(pebble.child.pid!, "SIGSTOP"),
    resume: () => killGroup(pebble.child.pid!, "SIGCONT"),
    stop,
  };
}
