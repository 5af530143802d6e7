// Dual certificates (issue 21: "P-256 by default; the operator may configure
// an RSA-2048 one beside it, as Cloudflare's dual certificates"), with real
// parts only: `npm start` with MANAGED_KEY_TYPES="p256v1,rsa2048", pebble
// as the CA (reusing valid authorizations, as Let's Encrypt does), the edge
// agent delivering both pairs, and a real nginx running docs/nginx-edge.conf
// that must serve the ECDSA certificate to a client offering ECDSA
// signatures and the RSA one to a client offering only RSA, each verified to
// pebble's root by `openssl s_client`. Then both renew by themselves, and
// with dual certificates switched off the twin goes at the next issuance,
// from the API and from the edge.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CustomHostnameGetResponse } from "cloudflare/resources/custom-hostnames/custom-hostnames";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AcmeZone, keyMatches } from "./acme-zone";
import { scopeId } from "./credentials";
import { type DocNginx, handshakeUntil, startDocNginx } from "./nginx-edge";
import { type Pebble, startPebble } from "./pebble";
import { type TestServer, freePort, startServer } from "./server";
import { type EnrolledEdge, type Handshake, type Ran, edgeAgent, enrolEdge } from "./tls-edge";

const ZONE = scopeId("acmedual");
const EDGE = "dual-nginx-1";
const HOST = "shop.customer-dual.com";
// With RENEW_BEFORE's default, the P-256 certificate is renewed 60 s after issuance, and its twin right after it.
const LIFETIME_S = 90;
const DUAL = "p256v1,rsa2048";
// What a client offers decides which certificate nginx (OpenSSL) picks: ECDSA signatures, or RSA-PSS and RSA only.
const ECDSA_CLIENT = ["-sigalgs", "ECDSA+SHA256"];
const RSA_CLIENT = ["-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"];

/** A custom hostname as the SDK returns it, with our documented `ssl.certificates` (dual certificates). */
type Certificate = { id: string; key_type: string; issuer: string; serial_number: string; signature: string; expires_on: string; uploaded_on: string };
type Hostname = CustomHostnameGetResponse & { ssl?: { certificates?: Certificate[] } };

let pebble: Pebble;
let server: TestServer;
let zone: AcmeZone;
let nginx: DocNginx;
let edge: EnrolledEdge;
let work: string;
let rootFile: string;
const seen: string[] = [];
let first: { id: string; ecdsa: Handshake; rsa: Handshake; twin: Certificate; rsaKey: string };

const out = () => join(work, "certs");
const file = (name: string) => join(out(), name);
const decimal = (hex: string | null) => (hex === null ? null : BigInt(`0x${hex}`).toString(10));
const keyType = (pem: string) => new X509Certificate(pem).publicKey.asymmetricKeyType;

async function sync(): Promise<Ran> {
  const ran = await edgeAgent(process.execPath, [
    "sync", "--dir", edge.edgeDir, "--url", server.origin, "--token-file", edge.tokenFile, "--zone", ZONE, "--out", out(),
    "--service-key", edge.serviceKey, "--nginx-include", join(nginx.includeDir, `${ZONE}.conf`), "--nginx-site", nginx.siteFile, "--reload", nginx.reloadCommand,
  ]);
  seen.push(ran.stdout, ran.stderr);
  return ran;
}

/** Polls the hostname (with its `ssl.certificates`) until `done` holds. */
const until = (id: string, what: string, done: (h: Hostname) => boolean, timeoutMs = 60_000): Promise<Hostname> =>
  zone.until(id, what, (h) => done(h as Hostname), timeoutMs, 200) as Promise<Hostname>;

/** Syncs (every second) until nginx serves what `done` wants to a client offering `offer`. */
async function servedAfterSyncs(offer: string[], done: (s: Handshake) => boolean, timeoutMs: number): Promise<Handshake> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const ran = await sync();
    expect(ran.code, ran.stderr).toBe(0);
    const s = await handshakeUntil(nginx.tlsPort, HOST, rootFile, done, 1_000, 100, offer);
    if (done(s) || Date.now() > end) return s;
  }
}

describe("dual certificates: a P-256 certificate and its RSA-2048 twin, issued, delivered, served by client support, renewed, and withdrawn", () => {
  beforeAll(async () => {
    const root = inject("e2eRoot");
    pebble = await startPebble({ root, certificateValiditySeconds: LIFETIME_S, authzReusePercent: 100 });
    server = await startServer({
      root,
      name: "acme-dual",
      port: await freePort(),
      env: {
        ACME_DIRECTORIES: JSON.stringify({ pebble: { directory: pebble.directoryUrl } }),
        ACME_DEFAULT_CA: "pebble",
        ACME_RETRY_SECONDS: "2",
        MANAGED_KEY_TYPES: DUAL,
      },
      args: ["--ca-file", pebble.listenerCaFile, "--allow-private-outbound"],
    });
    zone = new AcmeZone(server, pebble, ZONE, EDGE);
    work = join(server.dir, "edge");
    mkdirSync(work, { recursive: true });
    rootFile = join(work, "pebble-root.pem");
    writeFileSync(rootFile, await pebble.rootPem());
    nginx = await startDocNginx({ root, prefix: join(work, "nginx"), apiPort: Number(new URL(server.origin).port), httpPort: pebble.httpPort });
    edge = await enrolEdge(server, work, EDGE, ZONE);
    seen.push(edge.init.stdout, edge.init.stderr);
  }, 120_000);

  afterAll(async () => {
    await nginx?.stop();
    await server?.stop();
    await pebble?.stop();
  });

  it("issues the P-256 certificate, then its RSA twin; the agent writes both pairs in one server block; nginx serves ECDSA or RSA by what the client offers", async () => {
    const createdAt = performance.now();
    const created = await zone.client.customHostnames.create({ zone_id: ZONE, hostname: HOST, ssl: { method: "http", type: "dv" } });
    const active = await until(created.id, "the P-256 certificate", (h) => h.ssl?.status === "active");
    const activeAt = performance.now();
    const both = await until(created.id, "the RSA twin", (h) => h.ssl?.certificates?.length === 2);
    const bothAt = performance.now();
    const [own, twin] = both.ssl!.certificates!;
    // The API's certificate stays the P-256 one, listed first under the hostname's id; the twin has its own id.
    expect(own).toMatchObject({ id: created.id, key_type: "p256v1", serial_number: active.ssl?.serial_number, expires_on: active.ssl?.expires_on });
    expect(twin).toMatchObject({ key_type: "rsa2048", issuer: expect.stringMatching(/Pebble Intermediate CA/) });
    expect(twin!.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(twin!.id).not.toBe(created.id);
    expect(twin!.serial_number).not.toBe(own!.serial_number);
    expect(both.ssl).toMatchObject({ status: "active", serial_number: own!.serial_number });
    expect(both.ssl?.validation_errors).toBeUndefined();

    const synced = await sync();
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toContain(`${twin!.id} written hostname=${HOST} key_type=rsa2048 hosts=${HOST} `);
    expect(synced.stdout).toMatch(/: 2 certificates, 2 written, 0 unchanged, 0 removed, reloaded \(\d+ ms\)$/m);
    expect(synced.stdout).toContain(": 1 server block");
    expect(readdirSync(out()).filter((f) => !f.startsWith(".")).sort()).toEqual([`${HOST}.crt`, `${HOST}.key`, `${HOST}.rsa.crt`, `${HOST}.rsa.key`]);
    const rsaKey = readFileSync(file(`${HOST}.rsa.key`), "utf8");
    const parsed = createPrivateKey(rsaKey);
    expect([parsed.asymmetricKeyType, parsed.asymmetricKeyDetails?.modulusLength]).toEqual(["rsa", 2048]);
    expect(statSync(file(`${HOST}.rsa.key`)).mode & 0o777).toBe(0o600);
    expect(keyMatches(readFileSync(file(`${HOST}.rsa.crt`), "utf8"), rsaKey)).toBe(true);
    expect(keyMatches(readFileSync(file(`${HOST}.crt`), "utf8"), readFileSync(file(`${HOST}.key`), "utf8"))).toBe(true);

    const ecdsa = await handshakeUntil(nginx.tlsPort, HOST, rootFile, (s) => decimal(s.serial) === own!.serial_number, 20_000, 100, ECDSA_CLIENT);
    expect(ecdsa.verified, ecdsa.text).toBe(true);
    expect(keyType(ecdsa.leaf!)).toBe("ec");
    const rsa = await handshakeUntil(nginx.tlsPort, HOST, rootFile, (s) => decimal(s.serial) === twin!.serial_number, 20_000, 100, RSA_CLIENT);
    const servedAt = performance.now();
    expect(rsa.verified, rsa.text).toBe(true);
    expect(keyType(rsa.leaf!)).toBe("rsa");

    // Every step of both orders is in the zone's audit trail, the twin's named by its key type.
    const steps = await zone.certificateSteps(created.id);
    const twinSteps = steps.filter((e) => e.metadata?.key_type === "rsa2048").map((e) => e.action.type);
    expect(twinSteps).toEqual(expect.arrayContaining(["order", "finalize", "create"]));
    console.log(
      `acme-dual: create → P-256 active ${((activeAt - createdAt) / 1000).toFixed(1)} s, → RSA twin installed ${((bothAt - createdAt) / 1000).toFixed(1)} s, ` +
        `→ nginx serving both ${((servedAt - createdAt) / 1000).toFixed(1)} s; the twin's order ${twinSteps.includes("validate") ? "was validated again" : "reused the valid authorization"}`,
    );
    // Both are in the metrics, each by its own id and expiry (the zone reports a moment after the install).
    const series = (id: string) => `custom_csr_certificate_expiry_timestamp_seconds{zone="${ZONE}",certificate_id="${id}",kind="custom_hostname",`;
    let scraped = "";
    for (let i = 0; i < 50 && !(scraped.includes(series(twin!.id)) && scraped.includes(series(created.id))); i++) {
      scraped = await (await fetch(`${server.origin}/metrics`, { headers: { authorization: `Bearer ${server.secrets.ADMIN_SECRET}` } })).text();
      await sleep(200);
    }
    const line = scraped.split("\n").find((l) => l.startsWith(series(twin!.id)));
    expect(line, scraped.slice(0, 2000)).toMatch(new RegExp(` ${Math.floor(Date.parse(twin!.expires_on) / 1000)}$`));
    first = { id: created.id, ecdsa, rsa, twin: twin!, rsaKey };
  });

  it("both renew by themselves: new serials for the ECDSA and the RSA certificate, a fresh RSA key, the twin keeping its id", async () => {
    expect(first, "the first test issued both").toBeDefined();
    const renewed = await until(
      first.id,
      "both renewals",
      (h) => h.ssl?.certificates?.length === 2 && h.ssl.certificates.every((c) => c.serial_number !== (c.key_type === "rsa2048" ? first.twin.serial_number : decimal(first.ecdsa.serial))),
      LIFETIME_S * 1000,
    );
    const [own, twin] = renewed.ssl!.certificates!;
    expect(twin!.id).toBe(first.twin.id);
    expect(Date.parse(twin!.expires_on)).toBeGreaterThan(Date.parse(first.twin.expires_on));
    const rsa = await servedAfterSyncs(RSA_CLIENT, (s) => decimal(s.serial) === twin!.serial_number, 20_000);
    expect(rsa.verified, rsa.text).toBe(true);
    expect(keyType(rsa.leaf!)).toBe("rsa");
    const ecdsa = await handshakeUntil(nginx.tlsPort, HOST, rootFile, (s) => decimal(s.serial) === own!.serial_number, 20_000, 100, ECDSA_CLIENT);
    expect(ecdsa.verified, ecdsa.text).toBe(true);
    const rsaKey = readFileSync(file(`${HOST}.rsa.key`), "utf8");
    expect(rsaKey).not.toBe(first.rsaKey);
    expect(keyMatches(readFileSync(file(`${HOST}.rsa.crt`), "utf8"), rsaKey)).toBe(true);
  });

  it("switched off (MANAGED_KEY_TYPES=p256v1): the next issuance withdraws the twin, and the agent removes its files; nginx serves ECDSA alone", async () => {
    await server.restart("SIGTERM", { env: { MANAGED_KEY_TYPES: "p256v1" } });
    const before = (await zone.get(first.id)) as Hostname;
    const twinId = before.ssl!.certificates![1]!.id;
    // Cloudflare's "PATCH with the same ssl re-triggers validation": a new P-256 certificate, and no twin beside it.
    await zone.client.customHostnames.edit(first.id, { zone_id: ZONE, ssl: { method: "http", type: "dv" } });
    const after = await until(first.id, "the re-issued certificate", (h) => h.ssl?.status === "active" && h.ssl.serial_number !== before.ssl?.serial_number && h.ssl.certificates === undefined);
    expect(after.ssl?.certificates).toBeUndefined();
    const synced = await sync();
    expect(synced.code, synced.stderr).toBe(0);
    expect(synced.stdout).toContain(`${twinId} removed hostname=${HOST}`);
    expect(readdirSync(out()).filter((f) => !f.startsWith(".")).sort()).toEqual([`${HOST}.crt`, `${HOST}.key`]);
    const ecdsa = await handshakeUntil(nginx.tlsPort, HOST, rootFile, (s) => decimal(s.serial) === after.ssl?.serial_number, 20_000, 100, ECDSA_CLIENT);
    expect(ecdsa.verified, ecdsa.text).toBe(true);
    // A client that cannot take ECDSA is refused now: nginx has no RSA certificate for the name.
    const rsa = await handshakeUntil(nginx.tlsPort, HOST, rootFile, () => false, 0, 100, RSA_CLIENT);
    expect(rsa.verified).toBe(false);
  });

  it("custody: no private key of either type in the server's output, the agent's output or the data directory's files", () => {
    const body = (pem: string) => pem.split("\n").filter((line) => /^[A-Za-z0-9+/=]{40,}$/.test(line));
    const keys = [first.rsaKey, readFileSync(file(`${HOST}.key`), "utf8")];
    const texts = [server.stdout(), server.stderr(), seen.join("\n")];
    for (const text of texts) {
      expect(text).not.toMatch(/PRIVATE KEY/);
      for (const pem of keys) for (const line of body(pem)) expect(text).not.toContain(line);
    }
    const der = (pem: string) => createPrivateKey(pem).export({ format: "der", type: "pkcs8" });
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
    for (const path of files(server.dataDir)) {
      const bytes = readFileSync(path);
      for (const pem of keys) expect(bytes.includes(der(pem)), path).toBe(false);
    }
  });
});
