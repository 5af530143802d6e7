// Managed certificates end to end: the SDK's customHostnames.create with
// ssl.method against `npm start`, whose zone object orders the certificate
// from a real ACME CA (pebble), answers http-01 through the edge's proxied
// /.well-known/acme-challenge/ location, waits for a dns-01 record to be
// published (seen through a DNS-over-HTTPS resolver over pebble's DNS),
// renews by itself when a third of a short lifetime is left, resumes an
// order after SIGKILL without ordering twice, and delivers the key sealed to
// a registered edge, where it matches the leaf and the chain verifies to
// pebble's root.
//
// npm start is given what an operator on a private network gives it: the
// CA in ACME_DIRECTORIES (environment), --ca-file for pebble's listener CA
// and the resolver's, --allow-private-outbound (both are on 127.0.0.1).
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import Cloudflare from "cloudflare";
import type { CustomHostnameGetResponse } from "cloudflare/resources/custom-hostnames/custom-hostnames";
import { compactDecrypt } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Listening, startChallengeProxy, startDohResolver } from "./acme-support";
import { admin, call } from "./api";
import { OPENSSL } from "./checkers";
import { mintToken, scopeId } from "./credentials";
import { type Pebble, startPebble } from "./pebble";
import { sdkClient } from "./sdk-client";
import { type TestServer, freePort, startServer } from "./server";

const run = promisify(execFile);
const ZONE = scopeId("acme");
const EDGE = "acme-edge-1";
// Pebble's certificates live this long here, so that a renewal (at a third of the lifetime left) comes within the test.
const LIFETIME_S = 90;

let pebble: Pebble;
let doh: Listening & { caFile: string };
let proxy: Listening;
let server: TestServer;
let client: Cloudflare;
const edgeKey = generateKeyPairSync("ec", { namedCurve: "P-256" });

type Hostname = CustomHostnameGetResponse;

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Polls the hostname until `done` holds (or fails with its last state and the logs). */
async function until(id: string, what: string, done: (h: Hostname) => boolean, timeoutMs = 60_000): Promise<Hostname> {
  const end = Date.now() + timeoutMs;
  let last: Hostname | null = null;
  while (Date.now() < end) {
    last = await client.customHostnames.get(id, { zone_id: ZONE });
    if (done(last)) return last;
    await sleep(500);
  }
  throw new Error(`${what}: not reached in ${timeoutMs} ms; last ${JSON.stringify(last)}\n${server.logTail(30)}\n${pebble.logTail(20)}`);
}

/** The certificate and key an edge receives for a hostname: the chain, and the key opened with the edge's private key. */
async function delivered(id: string): Promise<{ chain: string; key: string }> {
  const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE], edge: EDGE });
  const reply = await call<{ certificate: string; sealed_key: string; hostname?: string }>(server.origin, "GET", `/client/v4/zones/${ZONE}/key_delivery/certificates/${id}`, { token });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  const bundle = reply.body!.result!;
  const opened = await compactDecrypt(bundle.sealed_key, edgeKey.privateKey);
  return { chain: bundle.certificate, key: createPrivateKey({ key: Buffer.from(opened.plaintext), format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }).toString() };
}

/** Every audit entry's action and resource of the zone, oldest first. */
async function audit(): Promise<Array<{ action: { type: string; result: boolean }; resource: { type: string; id: string }; metadata?: Record<string, unknown> }>> {
  const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] });
  const reply = await call<Array<{ action: { type: string; result: boolean }; resource: { type: string; id: string }; metadata?: Record<string, unknown> }>>(
    server.origin,
    "GET",
    `/client/v4/zones/${ZONE}/audit_logs?per_page=100&direction=asc`,
    { token },
  );
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body!.result!;
}

/** openssl verify of the leaf against pebble's root, with the delivered chain's intermediates. */
async function verifyChain(chain: string, name: string): Promise<string> {
  const dir = server.dir;
  const blocks = chain.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  writeFileSync(join(dir, "leaf.pem"), `${blocks[0]}\n`);
  writeFileSync(join(dir, "chain.pem"), `${blocks.slice(1).join("\n")}\n`);
  writeFileSync(join(dir, "root.pem"), await pebble.rootPem());
  const { stdout } = await run(OPENSSL, ["verify", "-CAfile", join(dir, "root.pem"), "-untrusted", join(dir, "chain.pem"), "-verify_hostname", name, join(dir, "leaf.pem")]);
  return stdout;
}

/** Whether the private key is the leaf's. */
function keyMatches(chain: string, keyPem: string): boolean {
  const leaf = new X509Certificate(chain);
  const fromKey = createPublicKey(keyPem).export({ format: "der", type: "spki" });
  return Buffer.compare(leaf.publicKey.export({ format: "der", type: "spki" }), fromKey) === 0;
}

describe("managed certificates: ACME issuance and renewal from pebble", () => {
  beforeAll(async () => {
    const root = inject("e2eRoot");
    pebble = await startPebble({ root, certificateValiditySeconds: LIFETIME_S });
    doh = await startDohResolver(join(root, "acme-doh"), pebble.dnsPort);
    server = await startServer({
      root,
      name: "acme-hostnames",
      // A fixed port, kept across the restart: the SDK client and the edge's proxy keep their address.
      port: await freePort(),
      env: {
        ACME_DIRECTORIES: JSON.stringify({ pebble: { directory: pebble.directoryUrl } }),
        ACME_DEFAULT_CA: "pebble",
        ACME_DNS_RESOLVER: doh.url,
        ACME_RETRY_SECONDS: "2",
      },
      args: ["--ca-file", pebble.listenerCaFile, "--ca-file", doh.caFile, "--allow-private-outbound"],
    });
    proxy = await startChallengeProxy(pebble.httpPort, () => server.origin);
    client = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] }) });
    const jwk = edgeKey.publicKey.export({ format: "jwk" });
    const registered = await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/edges/${EDGE}`, { public_key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }, labels: { country: "DE", region: "EU" } });
    expect(registered.status, JSON.stringify(registered.body)).toBe(201);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    await doh?.close();
    await pebble?.stop();
  });

  it("http: validated through the edge's proxied challenge location, issued, delivered sealed, and renewed by itself with a fresh key", async () => {
    const host = "shop.customer-http.com";
    const created = await client.customHostnames.create({ zone_id: ZONE, hostname: host, ssl: { method: "http", type: "dv" } });
    expect(created.ssl).toMatchObject({ method: "http", type: "dv", certificate_authority: "pebble" });
    expect(["initializing", "pending_validation"]).toContain(created.ssl?.status);

    const active = await until(created.id, "http-01 issuance", (h) => h.ssl?.status === "active");
    expect(active.ssl, JSON.stringify(active.ssl?.validation_errors)).toMatchObject({ status: "active", hosts: [host] });
    expect(active.ssl?.validation_errors, JSON.stringify(active.ssl?.validation_errors)).toBeUndefined();
    expect(active.ssl?.issuer).toMatch(/Pebble Intermediate CA/);
    expect(Date.parse(active.ssl!.expires_on!) - Date.now()).toBeLessThanOrEqual(LIFETIME_S * 1000);

    const first = await delivered(created.id);
    expect(keyMatches(first.chain, first.key)).toBe(true);
    expect(await verifyChain(first.chain, host)).toContain("OK");

    // The challenge answer is withdrawn once validated: nothing stays published.
    const tokenPath = `${proxy.url}/.well-known/acme-challenge/anything`;
    expect((await fetch(tokenPath, { headers: { host } })).status).toBe(404);

    // Renewal: due when a third of the 90 s lifetime is left, ordered by the alarm, a new serial and a new key.
    const renewed = await until(created.id, "automatic renewal", (h) => h.ssl?.serial_number !== active.ssl?.serial_number && h.ssl?.status === "active", LIFETIME_S * 1000);
    expect(Date.parse(renewed.ssl!.expires_on!)).toBeGreaterThan(Date.parse(active.ssl!.expires_on!));
    const second = await delivered(created.id);
    expect(keyMatches(second.chain, second.key)).toBe(true);
    expect(second.key).not.toBe(first.key);
    expect(await verifyChain(second.chain, host)).toContain("OK");

    // Every step is an audit entry: the order, the challenge answered, the finalize, the installation; then the renewal's
    // (whose challenge pebble may skip when it reuses a valid authorization).
    const entries = (await audit()).filter((e) => e.resource.id === created.id && e.resource.type === "custom_hostname_certificate");
    const steps = entries.map((e) => `${e.action.type}:${e.metadata?.purpose ?? (e.metadata?.renewed ? "renew" : "issue")}`);
    expect(steps.slice(0, 4)).toEqual(["order:issue", "validate:issue", "finalize:issue", "create:issue"]);
    expect(steps.slice(4).filter((s) => s !== "validate:renew")).toEqual(["order:renew", "finalize:renew", "update:renew"]);
    expect(entries.every((e) => e.action.result && e.metadata?.hostname === host)).toBe(true);
    expect(entries[0]!.metadata).toMatchObject({ ca: "pebble", identifiers: [host], order_url: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+\//) });
  }, 180_000);

  it("txt: the record to publish is shown; nothing is asked of the CA until it is published; then issued, wildcard included", async () => {
    const host = "customer-txt.com";
    const created = await client.customHostnames.create({ zone_id: ZONE, hostname: host, ssl: { method: "txt", type: "dv", wildcard: true } });
    const pending = await until(created.id, "validation records", (h) => (h.ssl?.validation_records ?? []).length === 2);
    const records = pending.ssl!.validation_records!;
    for (const record of records) expect(record).toMatchObject({ txt_name: `_acme-challenge.${host}`, txt_value: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(new Set(records.map((r) => r.txt_value)).size).toBe(2);

    // Not published: the order waits (no challenge answered, so pebble never saw a failed validation).
    await sleep(6_000);
    expect((await client.customHostnames.get(created.id, { zone_id: ZONE })).ssl?.status).toBe("pending_validation");
    expect(pebble.logTail(200)).not.toMatch(/customer-txt\.com.*(?:invalid|unauthorized)/i);

    for (const record of records) await pebble.setTxt(record.txt_name!, record.txt_value!);
    const active = await until(created.id, "dns-01 issuance", (h) => h.ssl?.status === "active");
    expect(active.ssl?.hosts?.sort()).toEqual([`*.${host}`, host].sort());
    const bundle = await delivered(created.id);
    expect(keyMatches(bundle.chain, bundle.key)).toBe(true);
    expect(await verifyChain(bundle.chain, `www.${host}`)).toContain("OK");
  }, 120_000);

  it("a SIGKILL while an order is in progress: the order resumes after the restart, once, and the certificate is issued", async () => {
    const host = "resume.customer-http.com";
    const created = await client.customHostnames.create({ zone_id: ZONE, hostname: host, ssl: { method: "http", type: "dv" } });
    await until(created.id, "an order placed", (h) => h.ssl?.status === "pending_validation" || h.ssl?.status === "active", 30_000);
    await server.restart("SIGKILL");
    const active = await until(created.id, "issuance after the restart", (h) => h.ssl?.status === "active");
    expect(active.ssl?.hosts).toEqual([host]);
    // One finalize and one certificate for the hostname: the restart resumed the order instead of issuing twice.
    const entries = (await audit()).filter((e) => e.resource.id === created.id && e.resource.type === "custom_hostname_certificate");
    const count = (type: string) => entries.filter((e) => e.action.type === type).length;
    expect([count("finalize"), count("create"), count("update")]).toEqual([1, 1, 0]);
    expect(count("order")).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it("RENEW_KEY_REUSE=true: the renewal keeps the key in force (an operator's setting, read at the restart)", async () => {
    const host = "resume.customer-http.com";
    const [hostname] = (await client.customHostnames.list({ zone_id: ZONE, hostname: { exact: host } })).result;
    const before = await delivered(hostname!.id);
    await server.restart("SIGTERM", { env: { RENEW_KEY_REUSE: "true" } });
    const renewed = await until(hostname!.id, "renewal with the key kept", (h) => h.ssl?.serial_number !== hostname!.ssl?.serial_number && h.ssl?.status === "active", LIFETIME_S * 1000);
    expect(Date.parse(renewed.ssl!.expires_on!)).toBeGreaterThan(Date.parse(hostname!.ssl!.expires_on!));
    const after = await delivered(hostname!.id);
    expect(after.chain).not.toBe(before.chain);
    expect(after.key).toBe(before.key);
    expect(keyMatches(after.chain, after.key)).toBe(true);
    const finalize = (await audit()).filter((e) => e.resource.id === hostname!.id && e.action.type === "finalize").map((e) => e.metadata?.key);
    expect(finalize).toEqual(["fresh", "kept"]);
  }, 180_000);
});
