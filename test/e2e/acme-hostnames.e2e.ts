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
import { X509Certificate, createPublicKey } from "node:crypto";
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { OPENSSL } from "./checkers";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Listening, startChallengeProxy, startDohResolver } from "./acme-support";
import { AcmeZone, keyMatches } from "./acme-zone";
import { scopeId } from "./credentials";
import { type Pebble, startPebble } from "./pebble";
import { type TestServer, freePort, startServer } from "./server";

// Pebble's certificates live this long here, so that a renewal (at a third of the lifetime left) comes within the test.
const LIFETIME_S = 90;

let pebble: Pebble;
let doh: Listening & { caFile: string };
let proxy: Listening;
let server: TestServer;
let zone: AcmeZone;
/** The custom CSR's hostname of the test that issues it, renewed in the last test. */
let csrHostname: { id: string; serial: string; key: string; csr: string } | null = null;
const run = promisify(execFile);

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

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
    zone = new AcmeZone(server, pebble, scopeId("acme"), "acme-edge-1");
    await zone.registerEdge();
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await proxy?.close();
    await doh?.close();
    await pebble?.stop();
  });

  it("http: validated through the edge's proxied challenge location, issued, delivered sealed, and renewed by itself with a fresh key", async () => {
    const host = "shop.customer-http.com";
    const created = await zone.client.customHostnames.create({ zone_id: zone.zone, hostname: host, ssl: { method: "http", type: "dv" } });
    expect(created.ssl).toMatchObject({ method: "http", type: "dv", certificate_authority: "pebble" });
    expect(["initializing", "pending_validation"]).toContain(created.ssl?.status);

    const active = await zone.until(created.id, "http-01 issuance", (h) => h.ssl?.status === "active");
    expect(active.ssl, JSON.stringify(active.ssl?.validation_errors)).toMatchObject({ status: "active", hosts: [host] });
    expect(active.ssl?.validation_errors, JSON.stringify(active.ssl?.validation_errors)).toBeUndefined();
    expect(active.ssl?.issuer).toMatch(/Pebble Intermediate CA/);
    expect(Date.parse(active.ssl!.expires_on!) - Date.now()).toBeLessThanOrEqual(LIFETIME_S * 1000);

    const first = await zone.delivered(created.id);
    expect(keyMatches(first.chain, first.key)).toBe(true);
    expect(await zone.verifyChain(first.chain, host)).toContain("OK");

    // The challenge answer is withdrawn once validated: nothing stays published.
    const tokenPath = `${proxy.url}/.well-known/acme-challenge/anything`;
    expect((await fetch(tokenPath, { headers: { host } })).status).toBe(404);

    // Renewal: due when a third of the 90 s lifetime is left, ordered by the alarm, a new serial and a new key.
    const renewed = await zone.until(created.id, "automatic renewal", (h) => h.ssl?.serial_number !== active.ssl?.serial_number && h.ssl?.status === "active", LIFETIME_S * 1000);
    expect(Date.parse(renewed.ssl!.expires_on!)).toBeGreaterThan(Date.parse(active.ssl!.expires_on!));
    const second = await zone.delivered(created.id);
    expect(keyMatches(second.chain, second.key)).toBe(true);
    expect(second.key).not.toBe(first.key);
    expect(await zone.verifyChain(second.chain, host)).toContain("OK");

    // Every step is an audit entry: the order, the challenge answered, the finalize, the installation; then the renewal's
    // (whose challenge pebble may skip when it reuses a valid authorization).
    const entries = await zone.certificateSteps(created.id);
    const steps = entries.map((e) => `${e.action.type}:${e.metadata?.purpose ?? (e.metadata?.renewed ? "renew" : "issue")}`);
    expect(steps.slice(0, 4)).toEqual(["order:issue", "validate:issue", "finalize:issue", "create:issue"]);
    expect(steps.slice(4).filter((s) => s !== "validate:renew")).toEqual(["order:renew", "finalize:renew", "update:renew"]);
    expect(entries.every((e) => e.action.result && e.metadata?.hostname === host)).toBe(true);
    expect(entries[0]!.metadata).toMatchObject({ ca: "pebble", identifiers: [host], order_url: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+\//) });
  }, 180_000);

  it("txt: the record to publish is shown; nothing is asked of the CA until it is published; then issued, wildcard included", async () => {
    const host = "customer-txt.com";
    const created = await zone.client.customHostnames.create({ zone_id: zone.zone, hostname: host, ssl: { method: "txt", type: "dv", wildcard: true } });
    const pending = await zone.until(created.id, "validation records", (h) => (h.ssl?.validation_records ?? []).length === 2);
    const records = pending.ssl!.validation_records!;
    for (const record of records) expect(record).toMatchObject({ txt_name: `_acme-challenge.${host}`, txt_value: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(new Set(records.map((r) => r.txt_value)).size).toBe(2);

    // Not published: the order waits (no challenge answered, so pebble never saw a failed validation).
    await sleep(6_000);
    expect((await zone.client.customHostnames.get(created.id, { zone_id: zone.zone })).ssl?.status).toBe("pending_validation");
    expect(pebble.logTail(200)).not.toMatch(/customer-txt\.com.*(?:invalid|unauthorized)/i);

    for (const record of records) await pebble.setTxt(record.txt_name!, record.txt_value!);
    const active = await zone.until(created.id, "dns-01 issuance", (h) => h.ssl?.status === "active");
    expect(active.ssl?.hosts?.sort()).toEqual([`*.${host}`, host].sort());
    const bundle = await zone.delivered(created.id);
    expect(keyMatches(bundle.chain, bundle.key)).toBe(true);
    expect(await zone.verifyChain(bundle.chain, `www.${host}`)).toContain("OK");
  }, 120_000);

  it("a custom CSR's certificate by ACME: refused unless the CSR is for this hostname only; issued for the CSR's own key", async () => {
    const host = "csr.customer-http.com";
    const csrFor = (sans: string[]) =>
      zone.client.customCsrs.create({ zone_id: zone.zone, common_name: sans[0]!, sans, key_type: "p256v1", country: "DE", state: "Berlin", locality: "Berlin", organization: "Customer" });
    const refusal = async (ssl: Record<string, unknown>) =>
      zone.client.customHostnames.create({ zone_id: zone.zone, hostname: host, ssl: ssl as never }).then(
        () => null,
        (error: { status?: number; errors?: Array<{ code: number }> }) => [error.status, error.errors?.[0]?.code],
      );
    const wider = await csrFor([host, "other.customer-http.com"]);
    expect(await refusal({ custom_csr_id: wider.id, method: "http", type: "dv" })).toEqual([400, 1455]);
    const wildcard = await csrFor([host, `*.${host}`]);
    expect(await refusal({ custom_csr_id: wildcard.id, method: "http", type: "dv" })).toEqual([400, 1452]);
    const own = await csrFor([host]);
    expect(await refusal({ custom_csr_id: own.id })).toEqual([400, 1427]);
    expect(await refusal({ custom_csr_id: own.id, method: "email", type: "dv" })).toEqual([400, 1432]);

    const created = await zone.client.customHostnames.create({ zone_id: zone.zone, hostname: host, ssl: { custom_csr_id: own.id, method: "http", type: "dv" } as never });
    expect(created.ssl).toMatchObject({ custom_csr_id: own.id, method: "http", type: "dv", certificate_authority: "pebble", status: "initializing" });
    const active = await zone.until(created.id, "a custom CSR's certificate by ACME", (h) => h.ssl?.status === "active");
    expect(active.ssl?.custom_certificate).toContain("BEGIN CERTIFICATE");
    expect(active.ssl?.issuer).toMatch(/Pebble Intermediate CA/);
    const pair = await zone.delivered(created.id);
    expect(keyMatches(pair.chain, pair.key)).toBe(true);
    // The certificate is for the key the CSR names (finalized with the CSR itself).
    writeFileSync(join(server.dir, "own.csr"), own.csr!);
    const csrKey = (await run(OPENSSL, ["req", "-in", join(server.dir, "own.csr"), "-pubkey", "-noout"])).stdout;
    expect(createPublicKey(csrKey).export({ format: "der", type: "spki" })).toEqual(new X509Certificate(pair.chain).publicKey.export({ format: "der", type: "spki" }));
    const finalize = (await zone.certificateSteps(created.id)).filter((e) => e.action.type === "finalize");
    expect(finalize.map((e) => e.metadata?.key)).toEqual(["custom_csr"]);
    // The CSR backs a hostname: it cannot be deleted (1420).
    const deleting = await zone.client.customCsrs.delete(own.id!, { zone_id: zone.zone }).then(() => null, (error: { status?: number }) => error.status);
    expect(deleting).toBe(409);
    csrHostname = { id: created.id, serial: active.ssl!.serial_number!, key: pair.key, csr: own.id! };
  });

  it("a SIGKILL while an order is in progress: the order resumes after the restart, once, and the certificate is issued", async () => {
    const host = "resume.customer-http.com";
    const created = await zone.client.customHostnames.create({ zone_id: zone.zone, hostname: host, ssl: { method: "http", type: "dv" } });
    await zone.until(created.id, "an order placed", (h) => h.ssl?.status === "pending_validation" || h.ssl?.status === "active", 30_000);
    await server.restart("SIGKILL");
    const active = await zone.until(created.id, "issuance after the restart", (h) => h.ssl?.status === "active");
    expect(active.ssl?.hosts).toEqual([host]);
    // One finalize and one certificate for the hostname: the restart resumed the order instead of issuing twice.
    const entries = await zone.certificateSteps(created.id);
    const count = (type: string) => entries.filter((e) => e.action.type === type).length;
    expect([count("finalize"), count("create"), count("update")]).toEqual([1, 1, 0]);
    expect(count("order")).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it("RENEW_KEY_REUSE=true: the renewal keeps the key in force (an operator's setting, read at the restart)", async () => {
    const host = "resume.customer-http.com";
    const [hostname] = (await zone.client.customHostnames.list({ zone_id: zone.zone, hostname: { exact: host } })).result;
    const before = await zone.delivered(hostname!.id);
    await server.restart("SIGTERM", { env: { RENEW_KEY_REUSE: "true" } });
    const renewed = await zone.until(hostname!.id, "renewal with the key kept", (h) => h.ssl?.serial_number !== hostname!.ssl?.serial_number && h.ssl?.status === "active", LIFETIME_S * 1000);
    expect(Date.parse(renewed.ssl!.expires_on!)).toBeGreaterThan(Date.parse(hostname!.ssl!.expires_on!));
    const after = await zone.delivered(hostname!.id);
    expect(after.chain).not.toBe(before.chain);
    expect(after.key).toBe(before.key);
    expect(keyMatches(after.chain, after.key)).toBe(true);
    const finalize = (await zone.audit()).filter((e) => e.resource.id === hostname!.id && e.action.type === "finalize").map((e) => e.metadata?.key);
    expect(finalize).toEqual(["fresh", "kept"]);
  }, 180_000);

  it("a txt renewal shows the new records to publish while the hostname stays active, and renews once they are published", async () => {
    const host = "customer-txt.com";
    const [hostname] = (await zone.client.customHostnames.list({ zone_id: zone.zone, hostname: { exact: host } })).result;
    const waiting = await zone.until(hostname!.id, "the renewal's records", (h) => (h.ssl?.validation_records ?? []).length === 2 && h.ssl?.serial_number === hostname!.ssl?.serial_number, LIFETIME_S * 1000);
    expect(waiting.ssl?.status).toBe("active");
    for (const record of waiting.ssl!.validation_records!) await pebble.setTxt(record.txt_name!, record.txt_value!);
    const renewed = await zone.until(hostname!.id, "the txt renewal", (h) => h.ssl?.serial_number !== hostname!.ssl?.serial_number, 60_000);
    expect(renewed.ssl?.status).toBe("active");
    expect(renewed.ssl?.validation_records).toBeUndefined();
  }, 180_000);

  it("the custom CSR's certificate renews by itself, again for the CSR's key", async () => {
    const renewed = await zone.until(csrHostname!.id, "the custom CSR's renewal", (h) => h.ssl?.serial_number !== csrHostname!.serial && h.ssl?.status === "active", LIFETIME_S * 1000);
    expect(renewed.ssl?.custom_csr_id).toBe(csrHostname!.csr);
    const pair = await zone.delivered(csrHostname!.id);
    expect(pair.key).toBe(csrHostname!.key);
    expect(keyMatches(pair.chain, pair.key)).toBe(true);
    const steps = (await zone.certificateSteps(csrHostname!.id)).map((e) => `${e.action.type}:${e.metadata?.purpose ?? (e.metadata?.renewed ? "renew" : "issue")}`);
    expect(steps.filter((s) => !s.startsWith("validate"))).toEqual(["order:issue", "finalize:issue", "create:issue", "order:renew", "finalize:renew", "update:renew"]);
    // Each installation raised its notification event in the zone (told to its account's policies, if any); an
    // expiry notice of these 75-second certificates may come between, when a renewal runs late on a busy machine.
    const events = (await zone.alerts(csrHostname!.id)).filter((type) => !/expiration_notification|\.expired$/.test(type));
    expect(events).toEqual(["ssl.custom_hostname_certificate.issuance.succeeded", "ssl.custom_hostname_certificate.renewal.succeeded"]);
  }, 120_000);
});
