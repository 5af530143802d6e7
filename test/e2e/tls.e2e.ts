// TLS in front of `npm start`: Debian's nginx running docs/nginx.conf as
// the documentation ships it (only the host name, certificate paths and
// ports substituted), with a certificate from a CA made for the test.
// Requests over HTTPS reach the API unchanged; nginx's own refusals and an
// API server that is down answer in the API's envelope.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { CsrRecord, Envelope } from "./api";
import { csrBody } from "./api";
import { NGINX, OPENSSL } from "./checkers";
import { mintToken, scopeId } from "./credentials";
import { REPO_ROOT, type TestServer, freePort, killGroup, startServer } from "./server";

const root = inject("e2eRoot");
const run = promisify(execFile);
const zone = scopeId("tls");

interface HttpsReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: Envelope | null;
  protocol: string | null;
}

let server: TestServer;
let nginx: ChildProcess;
let port: number;
let ca: Buffer;
let token: string;
let dir: string;

/** One HTTPS request to nginx, trusting only the test CA, checking the name. */
function https(method: string, path: string, init: { token?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<HttpsReply> {
  return new Promise((done, fail) => {
    const headers: Record<string, string | number> = { ...init.headers };
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    if (init.body !== undefined) {
      headers["content-type"] ??= "application/json";
      headers["content-length"] = Buffer.byteLength(init.body);
    }
    const req = request({ host: "127.0.0.1", servername: "localhost", port, method, path, ca, headers, agent: false, timeout: 30_000 }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (c: Buffer) => chunks.push(c));
      response.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: Envelope | null = null;
        try {
          body = JSON.parse(text) as Envelope;
        } catch {
          body = null;
        }
        const socket = response.socket as import("node:tls").TLSSocket;
        done({ status: response.statusCode ?? 0, headers: response.headers, text, body, protocol: socket.getProtocol?.() ?? null });
      });
    });
    req.on("error", fail);
    req.end(init.body);
  });
}

async function makeCertificates(): Promise<{ cert: string; key: string }> {
  const caKey = join(dir, "ca.key");
  const caCert = join(dir, "ca.pem");
  await run(OPENSSL, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", caKey, "-out", caCert, "-days", "2", "-subj", "/CN=e2e TLS test CA"]);
  const key = join(dir, "privkey.pem");
  const csr = join(dir, "server.csr");
  const cert = join(dir, "fullchain.pem");
  await run(OPENSSL, ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"]);
  const ext = join(dir, "san.ext");
  writeFileSync(ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  await run(OPENSSL, ["x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext]);
  ca = readFileSync(caCert);
  return { cert, key };
}

/** docs/nginx.conf with the documented placeholders replaced, inside a minimal main config of the test's own. */
function nginxConfig(files: { cert: string; key: string }, upstreamPort: number): string {
  const site = readFileSync(join(REPO_ROOT, "docs", "nginx.conf"), "utf8");
  const replacements: Array<[string, string]> = [
    ["server 127.0.0.1:8787;", `server 127.0.0.1:${upstreamPort};`],
    ["listen 443 ssl;", `listen 127.0.0.1:${port} ssl;`],
    ["server_name csr.example.net;", "server_name localhost;"],
    ["/etc/ssl/custom-csr-api/fullchain.pem", files.cert],
    ["/etc/ssl/custom-csr-api/privkey.pem", files.key],
  ];
  let text = site;
  for (const [from, to] of replacements) {
    expect(text, `docs/nginx.conf still has ${JSON.stringify(from)}`).toContain(from);
    text = text.replaceAll(from, to);
  }
  writeFileSync(join(dir, "site.conf"), text);
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${join(dir, "tmp", t)};`).join("\n");
  return `${process.getuid?.() === 0 ? "user root;\n" : ""}daemon off;
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} info;
events { worker_connections 256; }
http {
  access_log ${join(dir, "access.log")};
${temp}
  include ${join(dir, "site.conf")};
}
`;
}

beforeAll(async () => {
  server = await startServer({ root, name: "tls-api" });
  token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [zone] });
  dir = join(root, "tls-nginx");
  mkdirSync(join(dir, "tmp"), { recursive: true });
  port = await freePort();
  const files = await makeCertificates();
  writeFileSync(join(dir, "nginx.conf"), nginxConfig(files, Number(new URL(server.origin).port)));
  await run(NGINX, ["-t", "-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")]);
  nginx = spawn(NGINX, ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")], { detached: true, stdio: "ignore" });
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await https("GET", "/healthz")).status === 200) break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`nginx did not answer: ${(error as Error).message}\n${readFileSync(join(dir, "error.log"), "utf8").slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});

afterAll(async () => {
  if (nginx?.pid) killGroup(nginx.pid, "SIGTERM");
  await server?.stop();
});

describe("nginx with docs/nginx.conf in front of npm start", () => {
  it("serves the API over TLS 1.2+ with the proxy's certificate, unchanged: create 201, get the same bytes", async () => {
    const ready = await https("GET", "/readyz");
    expect(ready.status).toBe(200);
    expect(["TLSv1.2", "TLSv1.3"]).toContain(ready.protocol);
    const created = await https("POST", `/client/v4/zones/${zone}/custom_csrs`, { token, body: JSON.stringify(csrBody()) });
    expect(created.status, created.text).toBe(201);
    const record = (created.body as Envelope<CsrRecord>).result;
    const got = await https("GET", `/client/v4/zones/${zone}/custom_csrs/${record.id}`, { token });
    expect(got.status).toBe(200);
    expect((got.body as Envelope<CsrRecord>).result).toEqual(record);
    // The API's own headers pass through.
    expect(got.headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
    expect(got.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(got.headers["content-type"]).toMatch(/^application\/json/);
  });

  it("the audit trail records the address nginx saw, never a CF-Connecting-IP the client sent", async () => {
    const forged = await https("POST", `/client/v4/zones/${zone}/custom_csrs`, {
      token,
      body: JSON.stringify(csrBody({ key_type: "p256v1" })),
      headers: { "cf-connecting-ip": "203.0.113.99" },
    });
    expect(forged.status, forged.text).toBe(201);
    const id = (forged.body as Envelope<CsrRecord>).result.id;
    const trail = await https("GET", `/client/v4/zones/${zone}/audit_logs?action.type=create&per_page=1`, { token });
    const [entry] = (trail.body as Envelope<Array<{ resource: { id: string }; actor: { ip?: string } }>>).result;
    expect(entry!.resource.id).toBe(id);
    expect(entry!.actor.ip).toBe("127.0.0.1");
  });

  it("refusals keep the API's envelope: the API's 401 and 413, and nginx's own 413 past 1 MiB", async () => {
    const unauthorized = await https("GET", `/client/v4/zones/${zone}/custom_csrs`, { token: "nope" });
    expect({ status: unauthorized.status, codes: unauthorized.body?.errors.map((e) => e.code) }).toEqual({ status: 401, codes: [1001] });
    const large = await https("POST", `/client/v4/zones/${zone}/custom_csrs`, { token, body: " ".repeat(70 * 1024) });
    expect({ status: large.status, codes: large.body?.errors.map((e) => e.code) }).toEqual({ status: 413, codes: [1433] });
    // The Worker's answer, not nginx's: its request id is in the header and in the error itself.
    expect(large.headers["x-request-id"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect((large.body?.errors[0] as { request_id?: string } | undefined)?.request_id).toBe(large.headers["x-request-id"]);
    const huge = await https("POST", `/client/v4/zones/${zone}/custom_csrs`, { token, body: Buffer.alloc(2 * 1024 * 1024, 0x20) });
    expect(huge.status).toBe(413);
    expect(huge.headers["content-type"]).toBe("application/json");
    expect(huge.body).toEqual({ success: false, errors: [{ code: 1433, message: "The request body is too large. The limit is 64 KiB." }], messages: [], result: null });
  });

  it("an edge's http-01 proxy reaches the API through the front with the customer's Host: the API's own 404 for an unknown token", async () => {
    const reply = await https("GET", "/.well-known/acme-challenge/no-such-token", { headers: { host: "shop.customer-one.com" } });
    expect(reply.status).toBe(404);
    // The API's answer (its request id), for the hostname in Host: no challenge is pending for it.
    expect(reply.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
    expect(reply.body?.success).toBe(false);
    // The request log line is written as the reply goes: it may reach the file a moment later.
    for (let i = 0; i < 40 && !server.stdout().includes('"route":"/.well-known/acme-challenge/:token"'); i++) await new Promise((done) => setTimeout(done, 50));
    expect(server.stdout()).toContain('"route":"/.well-known/acme-challenge/:token"');
    const post = await https("POST", "/.well-known/acme-challenge/no-such-token", { headers: { host: "shop.customer-one.com" }, body: "{}" });
    expect(post.status).toBe(403);
  });

  it("while the API server is down, nginx answers 503 in the envelope (1504), and the API's answers come back with it", async () => {
    await server.stop();
    const down = await https("GET", "/readyz");
    expect(down.status).toBe(503);
    expect(down.headers["content-type"]).toBe("application/json");
    expect(down.body).toEqual({ success: false, errors: [{ code: 1504, message: "The API server is not reachable. Try again shortly." }], messages: [], result: null });
    // nginx keeps its upstream address; the server must come back on the same port.
    const upstreamPort = Number(readFileSync(join(dir, "site.conf"), "utf8").match(/server 127\.0\.0\.1:(\d+);/)![1]);
    const again = await startServer({ root, name: "tls-api-again", dataDir: server.dataDir, secrets: server.secrets, port: upstreamPort });
    try {
      expect((await https("GET", "/readyz")).status).toBe(200);
    } finally {
      await again.stop();
    }
  });
});
