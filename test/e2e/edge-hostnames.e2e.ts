// Custom hostnames served by a real nginx through docs/nginx-edge.conf as
// written (only ports, API_HOST:8787 and paths substituted): a zone CSR made
// through the SDK and signed by a throwaway OpenSSL CA for three names, three
// custom hostnames on it (one a wildcard, one 140 characters long), an edge
// made with `edge init`, registered, given a token minted with `--ttl 365d`,
// and `edge sync --nginx-include --nginx-site` writing OUT/<hostname>.crt|.key
// and the server blocks nginx's master loads. `openssl s_client` must get each
// hostname's own leaf. Then a hostname deleted through the SDK: the next sync
// rewrites the include before removing the pair, the reload succeeds, the
// name is no longer served, and a further sync is clean. The http-01 location
// proxies to the API with Host kept. And, run as root, why the include and not
// `ssl_certificate $ssl_server_name`: nginx's workers cannot read the keys.
import { createPrivateKey } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { type IncomingHttpHeaders, createServer, request } from "node:http";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type Cloudflare from "cloudflare";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { admin } from "./api";
import { OPENSSL } from "./checkers";
import { mintToken, scopeId } from "./credentials";
import { sdkClient } from "./sdk-client";
import { type DocNginx, handshakeUntil, startDocNginx } from "./nginx-edge";
import { REPO_ROOT, type TestServer, freePort, startServer } from "./server";
import { type Ran, edgeAgent, handshake, runAsync } from "./tls-edge";

const ZONE = scopeId("edgehost");
const EDGE_ID = "fra-h1";
const ROOT_USER = process.getuid?.() === 0;

/** 140 characters: past what nginx's default server_names_hash_bucket_size holds (the doc raises it). */
const LONG = `${"l".repeat(60)}.${"o".repeat(60)}.customer-eight.com`;
/** The hostnames, the name a client asks for (SNI), the file base, and the serial of each one's own leaf. */
const HOSTS = [
  { name: "shop.customer-eight.com", sni: "shop.customer-eight.com", base: "shop.customer-eight.com", serial: "5001" },
  { name: "*.tenants.customer-eight.com", sni: "a.tenants.customer-eight.com", base: "_wildcard.tenants.customer-eight.com", serial: "5002" },
  { name: LONG, sni: LONG, base: LONG, serial: "5003" },
];
const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

let server: TestServer;
let client: Cloudflare;
let work: string;
let caFile: string;
let serviceKey: string;
let edgeDir: string;
let tokenFile: string;
let nginx: DocNginx | null = null;
let variant: DocNginx | null = null;
const ids = new Map<string, string>();
/** Every output of the agent and the tools, searched for key material at the end. */
const seen: string[] = [];

const out = () => join(work, "certs");
const includeFile = () => join(nginx!.includeDir, `${ZONE}.conf`);
const siteFile = () => nginx!.siteFile;

function recorded(ran: Ran): Ran {
  seen.push(ran.stdout, ran.stderr);
  return ran;
}

/** nginx from the doc, for this file's server (API_HOST:8787 becomes its port). */
function startDocNginxHere(prefix: string, rewrite?: (main: string) => string): Promise<DocNginx> {
  return startDocNginx({ root: inject("e2eRoot"), prefix, apiPort: Number(new URL(server.origin).port), ...(rewrite ? { rewrite } : {}) });
}

/** Issues a leaf for the CSR from the throwaway CA with the given serial (async: the SDK's keep-alive sockets stay served). */
async function issue(csrPem: string, name: string, serial: string): Promise<string> {
  const csrPath = join(work, `${name}.csr.pem`);
  const certPath = join(work, `${name}.crt.pem`);
  writeFileSync(csrPath, csrPem);
  const ran = await runAsync(OPENSSL, [
    "x509", "-req", "-in", csrPath, "-CA", caFile, "-CAkey", join(work, "ca.key"), "-set_serial", `0x${serial}`,
    "-days", "20", "-sha256", "-copy_extensions", "copy", "-out", certPath,
  ]);
  expect(ran.code, ran.stderr).toBe(0);
  return readFileSync(certPath, "utf8");
}

function sync(extra: string[] = []): Promise<Ran> {
  return edgeAgent(process.execPath, [
    "sync", "--dir", edgeDir, "--url", server.origin, "--token-file", tokenFile, "--zone", ZONE, "--out", out(),
    "--service-key", serviceKey, "--nginx-include", includeFile(), "--nginx-site", siteFile(), "--reload", nginx!.reloadCommand, ...extra,
  ]).then(recorded);
}

/** One plain-HTTP request to nginx's port-80 stand-in, with the Host a client would send. */
function get(port: number, path: string, host: string, method = "GET"): Promise<{ status: number; headers: IncomingHttpHeaders; text: string }> {
  return new Promise((done, fail) => {
    const req = request({ host: "127.0.0.1", port, path, method, headers: { host }, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => done({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.once("error", fail);
    req.end();
  });
}

/** The uids of a process's children (nginx's workers). */
function childUids(pid: number): number[] {
  const uids: number[] = [];
  for (const entry of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const status = readFileSync(join("/proc", entry, "status"), "utf8");
      if (Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]) === pid) uids.push(Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]));
    } catch {
      // gone meanwhile
    }
  }
  return uids;
}

const files = () => readdirSync(out()).filter((f) => !f.startsWith(".")).sort();
const state = () => JSON.parse(readFileSync(join(out(), `.edge-sync-${ZONE}.json`), "utf8")) as { reload_pending: boolean; nginx_include: string };

describe("custom hostnames on a real nginx, through docs/nginx-edge.conf", () => {
  beforeAll(async () => {
    server = await startServer({ root: inject("e2eRoot"), name: "edge-hostnames" });
    client = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] }) });
    work = join(server.dir, "edge");
    mkdirSync(work, { recursive: true });
    caFile = join(work, "ca.pem");
    const ca = await runAsync(OPENSSL, [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(work, "ca.key"),
      "-out", caFile, "-subj", "/O=Edge Hostnames CA/CN=edge hostnames e2e throwaway CA", "-days", "30",
    ]);
    expect(ca.code, ca.stderr).toBe(0);
    const key = await admin<{ service_key: Record<string, string> }>(server.origin, server.secrets.ADMIN_SECRET, "GET", "/service_key");
    expect(key.status, key.text).toBe(200);
    serviceKey = JSON.stringify(key.body!.result.service_key);
  });

  afterAll(async () => {
    await variant?.stop();
    await nginx?.stop();
    await server?.stop();
  });

  it("delivers each custom hostname as OUT/<hostname>.crt|.key (0600) and nginx serves each its own leaf", async () => {
    // One zone CSR for the three names, signed three times: each hostname gets its own leaf (serial) on the one key.
    const csr = await client.customCsrs.create({
      zone_id: ZONE, common_name: HOSTS[0]!.name, country: "DE", state: "Hessen", locality: "Frankfurt",
      organization: "Customer Eight", sans: HOSTS.map((h) => h.name), key_type: "p256v1",
    });
    for (const host of HOSTS) {
      const leaf = await issue(csr.csr!, host.serial, host.serial);
      const created = await client.customHostnames.create({
        zone_id: ZONE, hostname: host.name, ssl: { custom_csr_id: csr.id!, custom_certificate: leaf + readFileSync(caFile, "utf8") },
      });
      expect(created).toMatchObject({ hostname: host.name, status: "active", ssl: { status: "active", custom_csr_id: csr.id } });
      ids.set(host.name, created.id);
    }

    // The edge: its key, its registration, and a token for a year from the operator's tool.
    edgeDir = join(work, "edge-key");
    const init = recorded(await edgeAgent(process.execPath, ["init", "--dir", edgeDir]));
    expect(init.code, init.stderr).toBe(0);
    const jwk = JSON.parse(init.stdout.trim().split("\n").at(-1)!) as Record<string, string>;
    const registered = await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/edges/${EDGE_ID}`, { public_key: jwk, labels: { country: "DE", region: "WEUR" } });
    expect(registered.status, registered.text).toBe(201);
    const minted = await runAsync(process.execPath, [join(REPO_ROOT, "scripts", "token.mjs"), "--edge", EDGE_ID, "--zone", ZONE, "--ttl", "365d"], {
      env: { ...process.env, API_TOKEN_SECRET: server.secrets.API_TOKEN_SECRET },
    });
    expect(minted.code, minted.stderr).toBe(0);
    const claims = JSON.parse(Buffer.from(minted.stdout.trim().split(".")[1]!, "base64url").toString("utf8")) as { iat: number; exp: number; edge_id: string };
    expect([claims.edge_id, claims.exp - claims.iat]).toEqual([EDGE_ID, 365 * 86_400]);
    tokenFile = join(work, "token");
    writeFileSync(tokenFile, minted.stdout, { mode: 0o600 });

    // nginx first, from the doc: the include glob matches nothing yet, the default servers answer alone.
    nginx = await startDocNginxHere(join(work, "nginx"));
    expect((await handshake(nginx.tlsPort, HOSTS[0]!.sni, caFile)).leaf).toBeNull();

    const first = await sync();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).not.toMatch(/warning/);
    const lines = first.stdout.trim().split("\n");
    const hosts = HOSTS.map((h) => h.name).join(",");
    for (const host of HOSTS) {
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${ids.get(host.name)} written hostname=${escaped(host.name)} hosts=${escaped(hosts)} expires_on=\\S+$`)));
    }
    expect(lines).toContain(`nginx include ${includeFile()}: 3 server blocks`);
    expect(lines.at(-1)).toMatch(new RegExp(`^edge sync: zone ${ZONE}, edge ${EDGE_ID}: 3 certificates, 3 written, 0 unchanged, 0 removed, reloaded \\(\\d+ ms\\)$`));
    expect(files()).toEqual(HOSTS.flatMap((h) => [`${h.base}.crt`, `${h.base}.key`]).sort());
    expect(statSync(out()).mode & 0o777).toBe(0o700);
    const keyPem = readFileSync(join(out(), `${HOSTS[0]!.base}.key`), "utf8");
    for (const host of HOSTS) {
      expect(statSync(join(out(), `${host.base}.key`)).mode & 0o777).toBe(0o600);
      // One CSR, one key: each hostname's file holds it.
      expect(readFileSync(join(out(), `${host.base}.key`), "utf8")).toBe(keyPem);
    }
    expect(createPrivateKey(keyPem).asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(state()).toMatchObject({ reload_pending: false, nginx_include: includeFile() });

    for (const host of HOSTS) {
      const seenBy = await handshakeUntil(nginx.tlsPort, host.sni, caFile, (s) => s.serial === host.serial);
      expect(seenBy.verified, seenBy.text).toBe(true);
      expect(seenBy.serial, host.sni).toBe(host.serial);
    }
    // A name no block serves: the default server refuses the handshake, no certificate is sent.
    const unknown = await handshake(nginx.tlsPort, "elsewhere.customer-eight.com", caFile);
    expect([unknown.verified, unknown.leaf]).toEqual([false, null]);
  });

  it("a hostname deleted through the SDK: the include is rewritten before its pair goes, the reload succeeds, nginx stops serving it, and the next sync is clean", async () => {
    const gone = HOSTS[1]!;
    const before = await handshake(nginx!.tlsPort, gone.sni, caFile);
    expect(before.serial).toBe(gone.serial);
    await client.customHostnames.delete(ids.get(gone.name)!, { zone_id: ZONE });

    const pruned = await sync();
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toMatch(new RegExp(`^${ids.get(gone.name)} removed hostname=\\*\\.tenants\\.customer-eight\\.com$`, "m"));
    expect(pruned.stdout).toContain(`nginx include ${includeFile()}: 2 server blocks`);
    expect(pruned.stdout).toMatch(/2 certificates, 0 written, 2 unchanged, 1 removed, reloaded \(/);
    expect(state().reload_pending).toBe(false);
    expect(files()).toEqual([HOSTS[0]!, HOSTS[2]!].flatMap((h) => [`${h.base}.crt`, `${h.base}.key`]).sort());
    expect(readFileSync(includeFile(), "utf8")).not.toContain("tenants");

    // The removed name: refused by the default server once the reload's workers answer.
    const after = await handshakeUntil(nginx!.tlsPort, gone.sni, caFile, (s) => s.leaf === null);
    expect([after.verified, after.leaf]).toEqual([false, null]);
    for (const kept of [HOSTS[0]!, HOSTS[2]!]) {
      const seenBy = await handshake(nginx!.tlsPort, kept.sni, caFile);
      expect([seenBy.verified, seenBy.serial], kept.sni).toEqual([true, kept.serial]);
    }

    // A further sync: nothing written, nothing rendered, no reload owed. The token warning only when asked for a year ahead.
    const clean = await sync(["--token-warn", "366"]);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).not.toContain("nginx include");
    expect(clean.stdout).toMatch(/2 certificates, 0 written, 2 unchanged, 0 removed \(\d+ ms\)\n$/);
    expect(clean.stderr).toMatch(/^edge: warning: the delivery token expires at \S+, in 36[45] days: mint a new one/);
    expect(state().reload_pending).toBe(false);
    expect(nginx!.errorLog()).not.toMatch(/\[emerg\]/);
  });

  it("port 80 proxies /.well-known/acme-challenge/ to the API with Host kept, refuses other methods there, and redirects the rest to https", async () => {
    const host = HOSTS[0]!.name;
    const token = "x".repeat(43);
    const routeLines = () => server.stdout().split("\n").filter((line) => line.includes('"route":"/.well-known/acme-challenge/:token"'));
    const before = routeLines().length;
    for (const path of [`/.well-known/acme-challenge/${token}`, "/.well-known/acme-challenge/x"]) {
      const reply = await get(nginx!.httpPort, path, host);
      // The API's own answer for a token it has no challenge for: a 404 in its envelope, with its request id.
      expect(reply.status, reply.text).toBe(404);
      expect(reply.headers["content-type"]).toMatch(/^application\/json/);
      const body = JSON.parse(reply.text) as { success: boolean; errors: Array<{ code: number; message: string }>; result: unknown };
      expect(body).toMatchObject({ success: false, result: null });
      expect(body.errors[0]?.code).toEqual(expect.any(Number));
      const requestId = reply.headers["x-request-id"];
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
      // The log line is written as the reply goes.
      for (let i = 0; i < 50 && !server.stdout().includes(String(requestId)); i++) await sleep(20);
      expect(routeLines().some((line) => line.includes(String(requestId)) && line.includes('"status":404'))).toBe(true);
    }
    expect(routeLines().length).toBe(before + 2);
    // Only GET (and HEAD): a POST is refused by nginx and never reaches the API.
    expect((await get(nginx!.httpPort, `/.well-known/acme-challenge/${token}`, host, "POST")).status).toBe(403);
    await sleep(200);
    expect(routeLines().length).toBe(before + 2);
    // Everything else on port 80 goes to https, on the name asked for.
    const redirected = await get(nginx!.httpPort, "/cart?id=7", host);
    expect([redirected.status, redirected.headers.location]).toEqual([301, `https://${host}/cart?id=7`]);

    // Host kept: the same doc with a recording upstream in the API's place.
    const heard: Array<{ host: string | undefined; url: string | undefined }> = [];
    const recorder = createServer((req, res) => {
      heard.push({ host: req.headers.host, url: req.url });
      res.writeHead(200, { "content-type": "text/plain" }).end("key-authorization\n");
    });
    const recorderPort = await freePort();
    await new Promise<void>((done) => recorder.listen(recorderPort, "127.0.0.1", done));
    try {
      nginx!.writeFiles(recorderPort);
      const reloaded = await runAsync("/bin/sh", ["-c", nginx!.reloadCommand]);
      expect(reloaded.code, reloaded.stderr).toBe(0);
      let answer = await get(nginx!.httpPort, `/.well-known/acme-challenge/${token}`, `${host.toUpperCase()}:80`);
      for (const deadline = Date.now() + 20_000; answer.status !== 200 && Date.now() < deadline; ) {
        await sleep(100);
        answer = await get(nginx!.httpPort, `/.well-known/acme-challenge/${token}`, `${host.toUpperCase()}:80`);
      }
      expect([answer.status, answer.text]).toEqual([200, "key-authorization\n"]);
      // $host: the request's Host, lower-cased, without its port, as the API looks the challenge up by.
      expect(heard.at(-1)).toEqual({ host, url: `/.well-known/acme-challenge/${token}` });
    } finally {
      nginx!.writeFiles(Number(new URL(server.origin).port));
      expect((await runAsync("/bin/sh", ["-c", nginx!.reloadCommand])).code).toBe(0);
      await new Promise<void>((done) => recorder.close(() => done()));
    }
  });

  it.skipIf(!ROOT_USER)("why the include: with ssl_certificate $ssl_server_name, nginx's workers (www-data) cannot read the 0600 keys the master loads", async () => {
    // The doc's nginx serves from workers that are not root.
    const workers = childUids(nginx!.child.pid!);
    expect(workers.length).toBeGreaterThan(0);
    expect(workers.every((uid) => uid !== 0)).toBe(true);
    const served = await handshake(nginx!.tlsPort, HOSTS[0]!.sni, caFile);
    expect([served.verified, served.serial]).toEqual([true, HOSTS[0]!.serial]);

    // The same doc, the same OUT, with one server loading the pair by SNI instead of the rendered include.
    const byName = `server {
        server_name ~^.+$;
        ssl_certificate ${out()}/$ssl_server_name.crt;
        ssl_certificate_key ${out()}/$ssl_server_name.key;
        include ${join(work, "variant", "snippets", "csr-edge-site.conf")};
    }`;
    variant = await startDocNginxHere(join(work, "variant"), (main) => {
      const include = `include ${join(work, "variant", "csr-edge")}/*.conf;`;
      expect(main).toContain(include);
      return main.replace(include, byName);
    });
    const refused = await handshake(variant.tlsPort, HOSTS[0]!.sni, caFile);
    expect([refused.verified, refused.leaf]).toEqual([false, null]);
    expect(variant.errorLog()).toMatch(new RegExp(`cannot load certificate "${out()}/${HOSTS[0]!.base.replace(/\./g, "\\.")}\\.crt".*Permission denied`));
  });

  it("custody: no delivered key in the agent's or the tools' output", () => {
    const text = seen.join("\n");
    expect(text).not.toMatch(/PRIVATE KEY/);
    const pem = readFileSync(join(out(), `${HOSTS[0]!.base}.key`), "utf8");
    for (const line of pem.split("\n").filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l))) expect(text).not.toContain(line);
    expect(existsSync(tokenFile) && (statSync(tokenFile).mode & 0o777) === 0o600).toBe(true);
  });
});
