// Issue 21's end-to-end proof with real parts only: a custom hostname created
// through the official SDK with `ssl: {method: "http"}` on `npm start`, whose
// zone object orders the certificate from pebble; pebble's validator fetches
// the http-01 token from a real nginx running docs/nginx-edge.conf as written
// (its port-80 server on pebble's httpPort, its challenge location proxying
// to the API with Host kept); the edge agent (`edge init`, registered,
// `edge sync --nginx-include --nginx-site --reload`) delivers the pair; and
// `openssl s_client -servername` must verify what nginx serves against
// pebble's root, with the leaf's serial the API's `ssl.serial_number`.
// Then, with pebble's certificates living LIFETIME_S seconds, the renewal:
// no API call from the test, only `edge sync --watch` running, until nginx
// serves a new serial, which must verify to pebble's root and expire later.
// The times the issue asks about (create → active, create → nginx serving,
// installed → served after the renewal) are printed.
import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate, createPublicKey } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type Cloudflare from "cloudflare";
import type { CustomHostnameGetResponse } from "cloudflare/resources/custom-hostnames/custom-hostnames";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { call } from "./api";
import { mintToken, scopeId } from "./credentials";
import { type DocNginx, handshakeUntil, startDocNginx } from "./nginx-edge";
import { type Pebble, startPebble } from "./pebble";
import { sdkClient } from "./sdk-client";
import { PID_DIR, type TestServer, freePort, killGroup, startServer } from "./server";
import { type Handshake, type Ran, edgeAgent, edgeAgentBin, enrolEdge, handshake } from "./tls-edge";

const ZONE = scopeId("acmeedge");
const EDGE = "acme-nginx-1";
// A name the service accepts as a customer's (a .test name is refused, 1409).
const HOST = "shop.customer-edge.com";
// Pebble's certificates live this long: with RENEW_BEFORE's default (a third of the lifetime left) the renewal is due
// 50 s after issuance, and the certificate in force still has 25 s to go when it is.
const LIFETIME_S = 75;
const CHALLENGE_ROUTE = "/.well-known/acme-challenge/:token";

type Hostname = CustomHostnameGetResponse;

let pebble: Pebble;
let server: TestServer;
let client: Cloudflare;
let nginx: DocNginx | null = null;
let watcher: { child: ChildProcess; exited: Promise<number | null>; stdout: () => string; stderr: () => string; pidFile: string } | null = null;
let work: string;
let rootFile: string;
let edgeDir: string;
let tokenFile: string;
let serviceKey: string;
/** Every output of the agent, searched for key material at the end. */
const seen: string[] = [];
/** What the first test leaves for the renewal. */
let first: { id: string; hostname: Hostname; served: Handshake; key: string; createdAt: number };

const out = () => join(work, "certs");
const includeFile = () => join(nginx!.includeDir, `${ZONE}.conf`);
const base = (name: string) => join(out(), name);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function recorded(ran: Ran): Ran {
  seen.push(ran.stdout, ran.stderr);
  return ran;
}

/** The flags of every `edge sync` here: the doc's include and site snippet, and the reload of this nginx. */
function syncArgs(): string[] {
  return [
    "sync", "--dir", edgeDir, "--url", server.origin, "--token-file", tokenFile, "--zone", ZONE, "--out", out(),
    "--service-key", serviceKey, "--nginx-include", includeFile(), "--nginx-site", nginx!.siteFile, "--reload", nginx!.reloadCommand,
  ];
}

/** Polls the hostname through the SDK until `done` holds (or fails with its last state and the logs). */
async function until(id: string, what: string, done: (h: Hostname) => boolean, timeoutMs = 60_000): Promise<Hostname> {
  const end = Date.now() + timeoutMs;
  let last: Hostname | null = null;
  while (Date.now() < end) {
    last = await client.customHostnames.get(id, { zone_id: ZONE });
    if (done(last)) return last;
    await sleep(200);
  }
  throw new Error(`${what}: not reached in ${timeoutMs} ms; last ${JSON.stringify(last)}\n${server.logTail(30)}\n${pebble.logTail(20)}\n${nginx?.errorLog()}`);
}

/** openssl's serial (upper-case hex) as the API writes `serial_number` (decimal, as Cloudflare does). */
const decimal = (hex: string | null) => (hex === null ? null : BigInt(`0x${hex}`).toString(10));

/** The certificates the server sent in a handshake (s_client -showcerts), leaf first. */
const sentChain = (seenBy: Handshake) => seenBy.text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];

/** Whether the key file holds the private key of the leaf. */
function keyMatches(leafPem: string, keyPem: string): boolean {
  const leaf = new X509Certificate(leafPem).publicKey.export({ format: "der", type: "spki" });
  return Buffer.compare(leaf, createPublicKey(keyPem).export({ format: "der", type: "spki" })) === 0;
}

/** The server's request log lines (one JSON object each) from line `from` on. */
function requestLines(from = 0): Array<{ route: string | null; method: string; status: number; principal?: unknown }> {
  return server
    .stdout()
    .split("\n")
    .slice(from)
    .filter((line) => line.startsWith("{") && line.includes('"request_id"'))
    .map((line) => JSON.parse(line) as { route: string | null; method: string; status: number; principal?: unknown });
}

/** nginx's access log lines for the challenge location, with their status. */
const challengeHits = () => nginx!.accessLog().split("\n").filter((line) => line.includes("GET /.well-known/acme-challenge/"));

/** `edge sync --watch SECONDS` as an edge host runs it: a long-lived process of its own, registered with the suite's reaper. */
async function startWatch(everySeconds: number): Promise<NonNullable<typeof watcher>> {
  const child = spawn(process.execPath, [await edgeAgentBin(), ...syncArgs(), "--watch", String(everySeconds)], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  if (child.pid === undefined) throw new Error("edge sync --watch did not start");
  const pidFile = join(inject("e2eRoot"), PID_DIR, String(child.pid));
  mkdirSync(join(inject("e2eRoot"), PID_DIR), { recursive: true });
  writeFileSync(pidFile, "");
  let [stdout, stderr] = ["", ""];
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  return { child, exited, stdout: () => stdout, stderr: () => stderr, pidFile };
}

/** Stops the watching agent (SIGTERM: it finishes a sync in progress and exits 0); answers its exit and output. */
async function stopWatch(): Promise<{ code: number | null; stdout: string; stderr: string } | null> {
  if (!watcher) return null;
  const { child, exited, pidFile, stdout, stderr } = watcher;
  watcher = null;
  killGroup(child.pid!, "SIGTERM");
  const code = await Promise.race([exited, sleep(15_000).then(() => "timeout" as const)]);
  if (code === "timeout") killGroup(child.pid!, "SIGKILL");
  rmSync(pidFile, { force: true });
  seen.push(stdout(), stderr());
  return { code: code === "timeout" ? null : code, stdout: stdout(), stderr: stderr() };
}

describe("issue 21 end to end: SDK → pebble (http-01 through the edge's nginx) → edge agent → nginx serving, and renewal by itself", () => {
  beforeAll(async () => {
    const root = inject("e2eRoot");
    pebble = await startPebble({ root, certificateValiditySeconds: LIFETIME_S });
    server = await startServer({
      root,
      name: "acme-edge",
      port: await freePort(),
      env: {
        ACME_DIRECTORIES: JSON.stringify({ pebble: { directory: pebble.directoryUrl } }),
        ACME_DEFAULT_CA: "pebble",
        ACME_RETRY_SECONDS: "2",
      },
      args: ["--ca-file", pebble.listenerCaFile, "--allow-private-outbound"],
    });
    client = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] }) });
    work = join(server.dir, "edge");
    mkdirSync(work, { recursive: true });
    rootFile = join(work, "pebble-root.pem");
    writeFileSync(rootFile, await pebble.rootPem());

    // The edge's nginx, from the doc: port 80 is what pebble's validator dials (every name resolves to 127.0.0.1).
    nginx = await startDocNginx({ root, prefix: join(work, "nginx"), apiPort: Number(new URL(server.origin).port), httpPort: pebble.httpPort });

    // The edge: its key, its registration (whose reply carries the service key the edge pins), its delivery token.
    const enrolled = await enrolEdge(server, work, EDGE, ZONE);
    recorded(enrolled.init);
    ({ edgeDir, tokenFile, serviceKey } = enrolled);
  }, 120_000);

  afterAll(async () => {
    await stopWatch();
    await nginx?.stop();
    await server?.stop();
    await pebble?.stop();
  });

  it("customHostnames.create with method http: pebble validates through nginx's port 80, issues, the agent delivers, nginx serves it verified to pebble's root", async () => {
    // Before anything: nginx refuses the name (the doc's default server, no certificate).
    expect((await handshake(nginx!.tlsPort, HOST, rootFile)).leaf).toBeNull();

    const createdAt = performance.now();
    const created = await client.customHostnames.create({ zone_id: ZONE, hostname: HOST, ssl: { method: "http", type: "dv" } });
    expect(created.ssl).toMatchObject({ method: "http", type: "dv", certificate_authority: "pebble" });
    const active = await until(created.id, "issuance", (h) => h.ssl?.status === "active");
    const activeAt = performance.now();
    expect(active.ssl, JSON.stringify(active.ssl)).toMatchObject({ status: "active", hosts: [HOST], issuer: expect.stringMatching(/Pebble Intermediate CA/) });
    expect(active.ssl?.validation_errors, JSON.stringify(active.ssl?.validation_errors)).toBeUndefined();

    // The validation went through nginx: pebble's validator's GETs are in the doc's access log with 200, and the API answered them.
    expect(challengeHits().some((line) => / 200 \d+ "-" "LetsEncrypt-Pebble-VA/.test(line)), nginx!.accessLog()).toBe(true);
    expect(requestLines().some((r) => r.route === CHALLENGE_ROUTE && r.method === "GET" && r.status === 200)).toBe(true);

    const synced = recorded(await edgeAgent(process.execPath, syncArgs()));
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stderr).toBe("");
    expect(synced.stdout).toMatch(new RegExp(`^${created.id} written hostname=${HOST.replaceAll(".", "\\.")} hosts=${HOST.replaceAll(".", "\\.")} expires_on=\\S+$`, "m"));
    expect(synced.stdout).toContain(`nginx include ${includeFile()}: 1 server block`);
    expect(synced.stdout.trim().split("\n").at(-1)).toMatch(/: 1 certificate, 1 written, 0 unchanged, 0 removed, reloaded \(\d+ ms\)$/);

    const served = await handshakeUntil(nginx!.tlsPort, HOST, rootFile, (s) => decimal(s.serial) === active.ssl?.serial_number);
    const servedAt = performance.now();
    expect(served.verified, served.text).toBe(true);
    expect(decimal(served.serial)).toBe(active.ssl?.serial_number);
    // Pebble's chain as nginx sends it: the leaf and pebble's intermediate (the root is only in the client's -CAfile).
    const chain = sentChain(served);
    expect(chain).toHaveLength(2);
    expect(new X509Certificate(chain[1]!).subject).toMatch(/Pebble Intermediate CA/);
    expect(new X509Certificate(chain[1]!).checkIssued(new X509Certificate(readFileSync(rootFile, "utf8")))).toBe(true);

    // What the agent wrote: the pair by hostname, the key 0600 and the leaf's.
    const key = readFileSync(base(`${HOST}.key`), "utf8");
    expect(statSync(out()).mode & 0o777).toBe(0o700);
    expect(statSync(base(`${HOST}.key`)).mode & 0o777).toBe(0o600);
    expect(keyMatches(served.leaf!, key)).toBe(true);
    expect(readFileSync(base(`${HOST}.crt`), "utf8")).toContain(served.leaf!.trim());

    console.log(`acme-edge: create → active ${seconds(activeAt - createdAt)}, create → nginx serving ${seconds(servedAt - createdAt)} (the sync and reload ${synced.ms.toFixed(0)} ms)`);
    first = { id: created.id, hostname: active, served, key, createdAt };
  });

  it("renewal by itself: no API call from the test, only `edge sync --watch`, and nginx serves a new serial that verifies to pebble's root and expires later", async () => {
    expect(first, "the first test issued and served the certificate").toBeDefined();
    const firstSerial = first.served.serial;
    const firstExpiry = new X509Certificate(first.served.leaf!).validToDate;
    const logFrom = server.stdout().split("\n").length - 1;
    const hitsBefore = challengeHits().length;

    // From here the test asks nothing of the API: the agent's syncs every 3 s are all that talks to it.
    watcher = await startWatch(3);
    const waitStart = performance.now();
    const renewed = await handshakeUntil(nginx!.tlsPort, HOST, rootFile, (s) => s.serial !== null && s.serial !== firstSerial, LIFETIME_S * 1000, 500);
    const renewedAt = performance.now();
    const renewedWall = Date.now();
    const agent = (await stopWatch())!;
    expect(agent.code, agent.stderr).toBe(0);
    // Every sync succeeded, and one of them wrote the renewed pair and reloaded nginx.
    expect(agent.stderr).toBe("");
    expect(agent.stdout).toMatch(new RegExp(`^${first.id} written hostname=${HOST.replaceAll(".", "\\.")} `, "m"));
    expect(agent.stdout).toMatch(/: 1 certificate, 1 written, 0 unchanged, 0 removed, reloaded \(\d+ ms\)$/m);

    expect(renewed.serial, `${renewed.text}\n${server.logTail(20)}\n${pebble.logTail(20)}`).not.toBe(firstSerial);
    expect(renewed.verified, renewed.text).toBe(true);
    expect(sentChain(renewed)).toHaveLength(2);
    expect(new X509Certificate(renewed.leaf!).validToDate.getTime()).toBeGreaterThan(firstExpiry.getTime());
    // A fresh key (RENEW_KEY_REUSE defaults to false), delivered 0600, and the leaf's.
    const key = readFileSync(base(`${HOST}.key`), "utf8");
    expect(key).not.toBe(first.key);
    expect(statSync(base(`${HOST}.key`)).mode & 0o777).toBe(0o600);
    expect(keyMatches(renewed.leaf!, key)).toBe(true);

    // What reached the API meanwhile: the agent's delivery requests, and the CA's renewal challenge through nginx.
    const meanwhile = requestLines(logFrom);
    const routes = new Set(meanwhile.map((r) => r.route));
    for (const route of routes) expect([CHALLENGE_ROUTE, "/client/v4/zones/:scopeId/key_delivery/certificates", "/client/v4/zones/:scopeId/key_delivery/certificates/:certificateId"]).toContain(route);
    expect(meanwhile.filter((r) => r.route !== CHALLENGE_ROUTE).every((r) => r.method === "GET" && r.status === 200), JSON.stringify(meanwhile)).toBe(true);

    // After the fact, through the SDK: the API's certificate is the one nginx serves.
    const after = await client.customHostnames.get(first.id, { zone_id: ZONE });
    expect([after.ssl?.status, after.ssl?.serial_number]).toEqual(["active", decimal(renewed.serial)]);
    const installed = await call<Array<{ when: string; action: { type: string }; resource: { id: string; type: string } }>>(
      server.origin, "GET", `/client/v4/zones/${ZONE}/audit_logs?per_page=100&direction=asc`, { token: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] }) },
    );
    expect(installed.status, installed.text).toBe(200);
    const update = installed.body!.result!.find((e) => e.resource.id === first.id && e.action.type === "update" && e.resource.type === "custom_hostname_certificate");
    expect(update, installed.text).toBeDefined();
    const lag = renewedWall - Date.parse(update!.when);
    console.log(
      `acme-edge: renewal served by nginx ${seconds(renewedAt - first.createdAt)} after create (${seconds(renewedAt - waitStart)} of edge-side waiting), ` +
        `${seconds(lag)} after the service installed it; the renewal's challenge ${challengeHits().length > hitsBefore ? "went through nginx again" : "was not asked (pebble reused the authorization)"}; ` +
        `${meanwhile.length} requests reached the API meanwhile (${[...routes].join(", ")})`,
    );
  });

  it("custody: every delivered key 0600, and no private key in the server's or the agent's output", () => {
    const keys = readdirSync(out()).filter((name) => name.endsWith(".key"));
    expect(keys).toEqual([`${HOST}.key`]);
    for (const name of keys) expect(statSync(base(name)).mode & 0o777).toBe(0o600);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(edgeDir, "edge-key.pem")).mode & 0o777).toBe(0o600);
    const texts = [server.stdout(), server.stderr(), seen.join("\n")];
    const body = (pem: string) => pem.split("\n").filter((line) => /^[A-Za-z0-9+/=]{40,}$/.test(line));
    for (const text of texts) {
      expect(text).not.toMatch(/PRIVATE KEY/);
      for (const pem of [readFileSync(base(`${HOST}.key`), "utf8"), first?.key ?? "", readFileSync(join(edgeDir, "edge-key.pem"), "utf8")]) {
        for (const line of body(pem)) expect(text).not.toContain(line);
      }
    }
  });
});
