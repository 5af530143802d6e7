// Managed certificates when things go wrong, against a real pebble that
// requires External Account Binding: an account binds with the configured
// credentials and fails, saying why, without them; a challenge that fails is
// shown as Cloudflare shows it and passes once fixed; a CA that hangs is
// waited out with a backoff and the order resumes when it answers; a SIGKILL
// between validation and the certificate's download issues one certificate.
// Then custody: the managed keys, the ACME account keys and the EAB secret
// are in no response, log line or storage file in the clear.
import { X509Certificate, randomBytes } from "node:crypto";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Listening, startChallengeProxy, startDohResolver } from "./acme-support";
import { AcmeZone, type Hostname, keyMatches } from "./acme-zone";
import { admin, call } from "./api";
import { mintToken, scopeId } from "./credentials";
import { sdkClient } from "./sdk-client";
import { WebhookReceiver } from "./webhook-receiver";
import { type Pebble, startPebble } from "./pebble";
import { type TestServer, freePort, startServer } from "./server";

const EAB_KID = "kid-e2e";
const EAB_HMAC = randomBytes(32).toString("base64url");

let pebble: Pebble;
let proxy: Listening;
let doh: Listening & { caFile: string };
let server: TestServer;
let zone: AcmeZone;
/** The zone's account's webhook receiver: the hostname certificate events (docs/notifications.md). */
let receiver: WebhookReceiver;
const ACCOUNT = scopeId("faultsacct");
/** Every private key an edge received in this file, as PKCS#8 DER. */
const deliveredKeys: Buffer[] = [];

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const messages = (h: Hostname) => (h.ssl?.validation_errors ?? []).map((e) => e.message ?? "").join(" | ");

describe("managed certificates: faults, against a pebble that requires EAB", () => {
  beforeAll(async () => {
    const root = inject("e2eRoot");
    pebble = await startPebble({ root, eab: { [EAB_KID]: EAB_HMAC } });
    doh = await startDohResolver(join(root, "faults-doh"), pebble.dnsPort);
    server = await startServer({
      root,
      name: "acme-faults",
      port: await freePort(),
      env: {
        ACME_DIRECTORIES: JSON.stringify({
          pebble: { directory: pebble.directoryUrl, eab_kid: EAB_KID, eab_hmac_key: EAB_HMAC },
          pebble_without_eab: { directory: pebble.directoryUrl },
        }),
        ACME_DEFAULT_CA: "pebble",
        ACME_RETRY_SECONDS: "1",
        ACME_DNS_RESOLVER: doh.url,
      },
      args: ["--ca-file", pebble.listenerCaFile, "--ca-file", doh.caFile, "--allow-private-outbound"],
    });
    proxy = await startChallengeProxy(pebble.httpPort, () => server.origin);
    zone = new AcmeZone(server, pebble, scopeId("faults"), "faults-edge-1");
    await zone.registerEdge();
    // The zone's account is told of its hostnames' certificate events, through a real receiver.
    receiver = await new WebhookReceiver().start();
    expect((await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/zones/${zone.zone}/account`, { account_id: ACCOUNT })).status).toBe(200);
    const alerting = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { accounts: [ACCOUNT], groups: ["Notifications Write"] }) }).alerting;
    const webhook = await alerting.destinations.webhooks.create({ account_id: ACCOUNT, name: "certificates", url: receiver.url });
    await alerting.policies.create({
      account_id: ACCOUNT, name: "Hostname certificates", alert_type: "custom_ssl_certificate_event_type", enabled: true, mechanisms: { webhooks: [{ id: webhook.id! }] },
    });
  }, 120_000);

  afterAll(async () => {
    pebble?.resume();
    await receiver?.stop();
    await server?.stop();
    await proxy?.close();
    await doh?.close();
    await pebble?.stop();
  });

  it("EAB: the account binds with the configured credentials; a CA configured without them says what the CA said", async () => {
    const bound = await zone.client.customHostnames.create({ zone_id: zone.zone, hostname: "bound.customer-eab.com", ssl: { method: "http", type: "dv" } });
    const unbound = await zone.client.customHostnames.create({
      zone_id: zone.zone,
      hostname: "unbound.customer-eab.com",
      ssl: { method: "http", type: "dv", certificate_authority: "pebble_without_eab" } as never,
    });
    const active = await zone.until(bound.id, "issuance with EAB", (h) => h.ssl?.status === "active");
    deliveredKeys.push((await zone.delivered(bound.id)).der);
    expect(active.ssl?.certificate_authority).toBe("pebble");

    const refused = await zone.until(unbound.id, "the CA's refusal shown", (h) => messages(h) !== "", 30_000);
    expect(messages(refused)).toMatch(/externalAccountRequired/);
    expect(refused.ssl?.status).not.toBe("active");
    const failed = (await zone.certificateSteps(unbound.id)).filter((e) => e.action.type === "order" && !e.action.result);
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed[0]!.action.info).toMatch(/externalAccountRequired/);
    await zone.client.customHostnames.delete(unbound.id, { zone_id: zone.zone });
  });

  it("a challenge that fails: the CA's error in validation_errors while the status stays pending_validation; fixed, it is issued", async () => {
    const host = "moved.customer-faults.com";
    // The name points where no edge listens: pebble's validator is refused.
    await pebble.addA(`${host}.`, ["127.0.0.2"]);
    const created = await zone.client.customHostnames.create({ zone_id: zone.zone, hostname: host, ssl: { method: "http", type: "dv" } });
    const failing = await zone.until(created.id, "the failed validation shown", (h) => messages(h) !== "", 30_000, 100);
    expect(failing.ssl?.status).toBe("pending_validation");
    expect(messages(failing)).toMatch(/127\.0\.0\.2|connection refused|Connection refused/);
    expect(failing.ssl?.validation_errors?.[0]).toEqual({ message: expect.any(String) });
    const failed = (await zone.certificateSteps(created.id)).filter((e) => e.action.type === "order" && !e.action.result);
    expect(failed[0]).toMatchObject({ metadata: { stage: "validation", given_up: false } });

    await pebble.clearA(`${host}.`);
    const active = await zone.until(created.id, "issuance once the name points at the edge", (h) => h.ssl?.status === "active");
    expect(active.ssl?.validation_errors).toBeUndefined();
    deliveredKeys.push((await zone.delivered(created.id)).der);

    // The account heard both, as Cloudflare's SSL for SaaS webhooks say them: the failed validation, then the issuance.
    const events = () => receiver.alerts().filter((r) => (r.body.data as { id?: string }).id === created.id);
    const type = (r: { body: Record<string, unknown> }) => (r.body.data as { metadata: { event: { type: string } } }).metadata.event.type;
    await receiver.until("the hostname's certificate events", () => events().some((r) => type(r) === "ssl.custom_hostname_certificate.issuance.succeeded"), 30_000, () => server.logTail(20));
    expect(events().map(type)).toEqual(["ssl.custom_hostname_certificate.validation.failed", "ssl.custom_hostname_certificate.issuance.succeeded"]);
    expect(events()[0]!.body).toMatchObject({ alert_type: "custom_ssl_certificate_event_type", data: { hostname: host, certificate_id: created.id, ssl: { status: "pending_validation" } } });
    expect(events()[1]!.body.data).toMatchObject({ hostname: host, ssl: { status: "active", serial_number: active.ssl?.serial_number } });
  });

  it("the CA hangs: the status stays truthful, validation_errors says so; an edit meanwhile starts the order over; it resumes when the CA answers", async () => {
    pebble.pause();
    let created: Hostname | null = null;
    try {
      created = await zone.client.customHostnames.create({ zone_id: zone.zone, hostname: "patient.customer-faults.com", ssl: { method: "http", type: "dv" } });
      // The client's timeout is 15 s: then the error is recorded and the order waits for its next try.
      const waiting = await zone.until(created.id, "the unreachable CA shown", (h) => messages(h) !== "", 45_000);
      // The customer switches to DNS validation while the order waits: the order starts over for txt.
      await zone.client.customHostnames.edit(created.id, { zone_id: zone.zone, ssl: { method: "txt", type: "dv" } });
      expect(messages(waiting)).toBe("the certificate authority could not be reached, or did not answer in time");
      // The operator's CA (its address) is not shown to the tenant; the log has it.
      expect(messages(waiting)).not.toContain("127.0.0.1");
      for (let i = 0; i < 40 && !server.stderr().includes("acme_refused"); i++) await sleep(50);
      expect(server.stderr()).toContain("acme_refused");
      expect(["initializing", "pending_validation"]).toContain(waiting.ssl?.status);
    } finally {
      pebble.resume();
    }
    const pending = await zone.until(created!.id, "the txt record to publish", (h) => (h.ssl?.validation_records ?? []).some((r) => r.txt_value), 90_000);
    expect(pending.ssl?.method).toBe("txt");
    // The customer publishes what the hostname shows (the CA is asked once the resolver sees it); should an order
    // fail meanwhile, the next one shows a new value, published in its turn.
    const published = new Set<string>();
    const active = await zone.until(
      created!.id,
      "issuance once the CA answers",
      (h) => {
        for (const r of h.ssl?.validation_records ?? []) {
          if (r.txt_value && !published.has(r.txt_value)) {
            published.add(r.txt_value);
            // The record replaced, not added to: one value per name here (and a DNS answer stays small).
            void pebble.clearTxt(r.txt_name!).then(() => pebble.setTxt(r.txt_name!, r.txt_value!));
          }
        }
        return h.ssl?.status === "active";
      },
      90_000,
      200,
    );
    expect(active.ssl?.validation_errors).toBeUndefined();
    // No http-01 validation ran for it: the order in progress was replaced, not finished.
    const validated = (await zone.certificateSteps(created!.id)).filter((e) => e.action.type === "validate").map((e) => e.metadata?.challenge);
    expect(validated.every((c) => c === "dns-01")).toBe(true);
  }, 180_000);

  it("a SIGKILL between validation and the download, with the CA frozen: after the restart one certificate is issued and installed", async () => {
    const created = await zone.client.customHostnames.create({ zone_id: zone.zone, hostname: "finalize.customer-faults.com", ssl: { method: "http", type: "dv" } });
    const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [zone.zone] });
    // Polled directly (a few ms a read): the window from pending_issuance to the installed certificate is about half a second.
    let status = "";
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const reply = await call<Hostname>(server.origin, "GET", `/client/v4/zones/${zone.zone}/custom_hostnames/${created.id}`, { token });
      status = reply.body?.result?.ssl?.status ?? "";
      if (status === "pending_issuance" || status === "active") break;
      await sleep(20);
    }
    expect(status, "the order went past pending_issuance before it was seen").toBe("pending_issuance");
    pebble.pause();
    try {
      await server.restart("SIGKILL");
    } finally {
      pebble.resume();
    }
    const active = await zone.until(created.id, "issuance after the restart", (h) => h.ssl?.status === "active");
    const steps = await zone.certificateSteps(created.id);
    const count = (type: string) => steps.filter((e) => e.action.type === type && e.action.result).length;
    expect([count("finalize"), count("create"), count("update")]).toEqual([1, 1, 0]);
    const pair = await zone.delivered(created.id);
    expect(keyMatches(pair.chain, pair.key)).toBe(true);
    expect(active.ssl?.serial_number).toBe(BigInt(`0x${new X509Certificate(pair.chain).serialNumber}`).toString());
    deliveredKeys.push(pair.der);
  }, 120_000);

  it("custody: no managed key, ACME account key or EAB secret in a response, a log line or a storage file in the clear", async () => {
    expect(deliveredKeys.length).toBeGreaterThanOrEqual(3);
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else files.push(path);
      }
    };
    walk(server.dataDir);
    expect(files.some((f) => f.endsWith(".sqlite"))).toBe(true);
    const stored = Buffer.concat(files.map((f) => readFileSync(f)));
    const logs = Buffer.from(server.stdout() + server.stderr());
    const secrets: Array<[string, Buffer]> = [
      ["the EAB HMAC key (text)", Buffer.from(EAB_HMAC)],
      ["the EAB HMAC key (bytes)", Buffer.from(EAB_HMAC, "base64url")],
      ["a PEM private key", Buffer.from("PRIVATE KEY-----")],
    ];
    for (const der of deliveredKeys) {
      secrets.push(["a managed key (PKCS#8 DER)", der]);
      // The P-256 private scalar: the 32 bytes after the OCTET STRING header inside the PKCS#8's ECPrivateKey.
      const at = der.indexOf(Buffer.from([0x04, 0x20]), 30);
      expect(at, "the private scalar's OCTET STRING in the PKCS#8").toBeGreaterThan(30);
      secrets.push(["a managed key's private scalar", der.subarray(at + 2, at + 34)]);
    }
    for (const [what, bytes] of secrets) {
      expect(stored.includes(bytes), `${what} in the data directory`).toBe(false);
      expect(logs.includes(bytes), `${what} in the server's logs`).toBe(false);
    }
    // An account key in JWK form would carry a private member "d".
    expect(stored.includes(Buffer.from('"d":"')), "a private JWK in storage").toBe(false);
    // Every hostname as the API shows it, and the zone's audit trail: no secret either.
    const listed = JSON.stringify(await zone.client.customHostnames.list({ zone_id: zone.zone }));
    const trail = JSON.stringify(await zone.audit());
    for (const text of [listed, trail]) {
      expect(text).not.toContain(EAB_HMAC);
      expect(text).not.toContain("PRIVATE KEY");
    }
  });
});
