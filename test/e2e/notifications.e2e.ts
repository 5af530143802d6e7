// Issue 22's notifications with real parts only: `npm start`, the official
// SDK's `alerting` calls unchanged, and a real HTTP receiver on loopback.
// A destination is checked with a test message at creation (and refused on
// a server that does not allow private outbound addresses); a policy of
// `custom_ssl_certificate_event_type` filtered to one zone; a custom
// certificate uploaded 20 days from its expiry is notified at once with
// Cloudflare's webhook payload and the secret in `cf-webhook-auth`, once;
// another zone's is not; a failing destination is retried with backoff, and
// a SIGKILL while an alert is due neither loses nor repeats it; the history
// lists each delivery with its outcome.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import Cloudflare from "cloudflare";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { admin, call, csrBody } from "./api";
import { mintToken, policiesFor, scopeId, signHs256 } from "./credentials";
import { opensslCa } from "./openssl-ca";
import { sdkClient } from "./sdk-client";
import { type TestServer, freePort, startServer } from "./server";
import { WebhookReceiver } from "./webhook-receiver";

const ACCOUNT = scopeId("notify");
const ZONE = scopeId("notifyzone");
const OTHER_ZONE = scopeId("notifyother");
const SECRET = "receiver-shared-secret-7f3a";

let server: TestServer;
let receiver: WebhookReceiver;
let client: Cloudflare;
let ca: ReturnType<typeof opensslCa>;
let webhookId: string;
let policyId: string;

/** A token for the account with Cloudflare's Notifications Write, and SSL and Certificates Write on both zones. */
function operatorToken(): string {
  const iat = Math.floor(Date.now() / 1000);
  const policies = [...policiesFor({ zones: [ZONE, OTHER_ZONE] }), ...policiesFor({ accounts: [ACCOUNT], groups: ["Notifications Write"] })];
  return signHs256(server.secrets.API_TOKEN_SECRET, { alg: "HS256", typ: "JWT" }, { jti: crypto.randomUUID(), iat, exp: iat + 3600, policies });
}

/** A custom certificate on `zone` that expires `days` from now, uploaded through the SDK; answers its id. */
async function uploadExpiring(zone: string, name: string, days: number): Promise<string> {
  const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [zone] });
  const csr = await call<{ id: string; csr: string }>(server.origin, "POST", `/client/v4/zones/${zone}/custom_csrs`, { token, json: csrBody({ common_name: name, sans: [name] }) });
  expect(csr.status, csr.text).toBe(201);
  const certificate = ca.issue(csr.body!.result!.csr, name, days);
  const uploaded = await client.customCertificates.create({ zone_id: zone, certificate, custom_csr_id: csr.body!.result!.id } as Parameters<Cloudflare["customCertificates"]["create"]>[0]);
  return uploaded.id!;
}

/** The account's history through the SDK (every page, as `for await` walks them), once it has `count` entries. */
async function historyOf(account: string, count: number): Promise<unknown[]> {
  for (const end = Date.now() + 10_000; ; ) {
    const history: unknown[] = [];
    for await (const entry of client.alerting.history.list({ account_id: account, per_page: 5 })) history.push(entry);
    if (history.length >= count || Date.now() > end) return history;
    await new Promise((done) => setTimeout(done, 200));
  }
}

describe("notifications: Cloudflare's alerting API, a real webhook receiver, expiry notices", () => {
  beforeAll(async () => {
    const root = inject("e2eRoot");
    receiver = await new WebhookReceiver().start();
    ca = opensslCa(`${root}/notify-ca`);
    server = await startServer({ root, name: "notifications", port: await freePort(), args: ["--allow-private-outbound"], env: { NOTIFICATION_RETRY_SECONDS: "1" } });
    client = sdkClient(server.baseURL, { apiToken: operatorToken() });
    for (const zone of [ZONE, OTHER_ZONE]) {
      const linked = await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/zones/${zone}/account`, { account_id: ACCOUNT });
      expect(linked.status, linked.text).toBe(200);
    }
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
    await receiver?.stop();
  });

  it("a webhook destination is created once its test message got a 2xx; its secret is sent as cf-webhook-auth and never shown", async () => {
    receiver.status = 503;
    await expect(client.alerting.destinations.webhooks.create({ account_id: ACCOUNT, name: "ops", url: receiver.url, secret: SECRET })).rejects.toMatchObject({
      status: 400,
      errors: [expect.objectContaining({ code: 17451, message: expect.stringContaining("HTTP 503") })],
    });
    expect(await client.alerting.destinations.webhooks.list({ account_id: ACCOUNT })).toMatchObject({ result: [] });

    receiver.status = 204;
    const created = await client.alerting.destinations.webhooks.create({ account_id: ACCOUNT, name: "ops", url: receiver.url, secret: SECRET });
    webhookId = created.id!;
    const tests = receiver.received.filter((r) => typeof r.body.text === "string" && r.body.alert_type === undefined);
    expect(tests).toHaveLength(2);
    expect(tests[1]).toMatchObject({ method: "POST", path: "/hooks/certificates", headers: { "cf-webhook-auth": SECRET, "content-type": "application/json" } });
    expect(tests[1]!.body.text).toMatch(/test message/);

    const got = await client.alerting.destinations.webhooks.get(webhookId, { account_id: ACCOUNT });
    expect(got).toMatchObject({ id: webhookId, name: "ops", url: receiver.url, type: "generic", last_success: expect.any(String) });
    expect(JSON.stringify(got)).not.toContain(SECRET);
    // The secret is in no log line and no storage file in the clear.
    expect(`${server.stdout()}${server.stderr()}`).not.toContain(SECRET);
    const files = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
    for (const path of files(server.dataDir)) expect(readFileSync(path).includes(Buffer.from(SECRET)), path).toBe(false);
  });

  it("a policy of custom_ssl_certificate_event_type for one zone: a certificate 20 days from expiry is notified at once, Cloudflare's payload, once", async () => {
    const policy = await client.alerting.policies.create({
      account_id: ACCOUNT,
      name: "Expiring certificates",
      alert_type: "custom_ssl_certificate_event_type",
      enabled: true,
      mechanisms: { webhooks: [{ id: webhookId }] },
      filters: { zones: [ZONE] },
    });
    policyId = policy.id!;
    expect(await client.alerting.policies.get(policyId, { account_id: ACCOUNT })).toMatchObject({
      id: policyId, alert_type: "custom_ssl_certificate_event_type", enabled: true, mechanisms: { webhooks: [{ id: webhookId }] }, filters: { zones: [ZONE] },
    });

    receiver.status = 200;
    const uploadedAt = Date.now();
    const other = await uploadExpiring(OTHER_ZONE, "shop.other-notify.com", 20);
    const certificateId = await uploadExpiring(ZONE, "shop.customer-notify.com", 20);
    await receiver.until("the expiry alert", () => receiver.alerts().length >= 1, 30_000, () => server.logTail(30));
    const [alert] = receiver.alerts();
    const latency = alert!.at - uploadedAt;
    expect(alert!.headers["cf-webhook-auth"]).toBe(SECRET);
    expect(alert!.body).toMatchObject({
      name: "Expiring certificates",
      policy_id: policyId,
      policy_name: "Expiring certificates",
      account_id: ACCOUNT,
      alert_type: "custom_ssl_certificate_event_type",
      alert_correlation_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      alert_event: "ALERT_STATE_EVENT_START",
      ts: expect.any(Number),
      text: expect.stringContaining(certificateId),
      data: {
        certificate_id: certificateId,
        zone_id: ZONE,
        hosts: ["shop.customer-notify.com"],
        days_til_expiration: 20,
        metadata: { event: { type: "ssl.custom_certificate.upcoming_expiration_notification" } },
      },
    });
    // Once: nothing more for this certificate, and nothing for the other zone's (the policy's zones filter).
    await new Promise((done) => setTimeout(done, 3_000));
    expect(receiver.alerts()).toHaveLength(1);
    expect(JSON.stringify(receiver.alerts())).not.toContain(other);

    const history = await historyOf(ACCOUNT, 1);
    expect(history).toEqual([expect.objectContaining({ policy_id: policyId, alert_type: "custom_ssl_certificate_event_type", mechanism: receiver.url, mechanism_type: "webhook", name: "Expiring certificates" })]);
    expect(JSON.parse((history[0] as { alert_body: string }).alert_body)).toMatchObject({ certificate_id: certificateId });
    console.log(`notifications: upload → alert received ${latency} ms`);
  });

  it("a failing destination is retried with backoff; a SIGKILL while an alert is due neither loses it nor sends it twice", async () => {
    receiver.status = 500;
    const before = receiver.alerts().length;
    const certificateId = await uploadExpiring(ZONE, "api.customer-notify.com", 5);
    // Refused twice (1 s, then 2 s later), then the server is killed with the alert still due.
    await receiver.until("two refused attempts", () => receiver.alerts().length >= before + 2, 30_000, () => server.logTail(30));
    await server.restart("SIGKILL");
    receiver.status = 200;
    const mineNow = () => receiver.alerts().filter((r) => (r.body.data as { certificate_id?: string }).certificate_id === certificateId);
    await receiver.until("the alert after the restart", () => mineNow().some((r) => r.status === 200), 60_000, () => server.logTail(30));
    await new Promise((done) => setTimeout(done, 3_000));
    const mine = mineNow();
    expect(mine.filter((r) => r.status === 200)).toHaveLength(1);
    expect(mine.at(-1)!.status).toBe(200);
    // Every attempt carried the same event (one correlation id); the last was answered 200 and nothing came after it.
    expect(new Set(mine.map((r) => r.body.alert_correlation_id)).size).toBe(1);
    expect(mine[0]!.body.data).toMatchObject({ days_til_expiration: 5, metadata: { event: { type: "ssl.custom_certificate.upcoming_expiration_notification" } } });
    const history = (await historyOf(ACCOUNT, 2)) as Array<{ alert_body: string; outcome: { state: string; attempts: number } }>;
    const entry = history.find((h) => h.alert_body.includes(certificateId))!;
    expect(entry.outcome).toMatchObject({ state: "sent", attempts: mine.length });
    expect(mine.length).toBeGreaterThanOrEqual(3);
  });

  it("ours: an account's RSA key pool found empty, and an edge that never synced past its policy's max_age_minutes, are told once each", async () => {
    receiver.status = 200;
    const account = mintToken(server.secrets.API_TOKEN_SECRET, { accounts: [ACCOUNT] });
    const pool = await client.alerting.policies.create({ account_id: ACCOUNT, name: "Pool", alert_type: "custom_csr_key_pool_empty" as never, enabled: true, mechanisms: { webhooks: [{ id: webhookId }] } });
    // An edge registered and never synced, watched with the shortest max age.
    const { publicKey } = generateKeyPairSync("x25519");
    const registered = await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", "/edges/notify-edge-1", { public_key: publicKey.export({ format: "jwk" }), labels: { country: "DE", region: "WEUR" } });
    expect(registered.status, registered.text).toBe(201);
    const edgePolicy = await client.alerting.policies.create({
      account_id: ACCOUNT, name: "Edges", alert_type: "custom_csr_edge_stale" as never, enabled: true, mechanisms: { webhooks: [{ id: webhookId }] },
      filters: { edges: ["notify-edge-1"], max_age_minutes: ["1"] } as never,
    });
    const watchedAt = Date.now();

    // The account's pool set running, then RSA creates straight away: one finds it empty (the key made on demand).
    expect((await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/accounts/${ACCOUNT}/key_pool`, { size: 2 })).status).toBe(200);
    for (let i = 0; i < 3; i++) {
      const made = await call(server.origin, "POST", `/client/v4/accounts/${ACCOUNT}/custom_csrs`, { token: account, json: csrBody({ key_type: "rsa2048" }) });
      expect(made.status, made.text).toBe(201);
    }
    const of = (type: string) => receiver.alerts().filter((r) => r.body.alert_type === type);
    await receiver.until("the empty pool", () => of("custom_csr_key_pool_empty").length > 0, 30_000, () => server.logTail(20));
    expect(of("custom_csr_key_pool_empty")[0]!.body).toMatchObject({ policy_id: pool.id, data: { scope: `accounts:${ACCOUNT}`, pool_size: 2, metadata: { event: { type: "key_pool.empty" } } } });

    await receiver.until("the stale edge", () => of("custom_csr_edge_stale").length > 0, 120_000, () => server.logTail(20));
    const stale = of("custom_csr_edge_stale")[0]!;
    expect(stale.at - watchedAt).toBeGreaterThanOrEqual(60_000);
    expect(stale.body).toMatchObject({ policy_id: edgePolicy.id, data: { edge_id: "notify-edge-1", last_sync_at: null, max_age_minutes: 1 } });
    expect(stale.body.text).toMatch(/^Edge notify-edge-1 has never synced/);
    // Once per episode, and once per hour for the pool: nothing more meanwhile.
    await new Promise((done) => setTimeout(done, 3_000));
    expect([of("custom_csr_edge_stale").length, of("custom_csr_key_pool_empty").length]).toEqual([1, 1]);
    for (const id of [pool.id!, edgePolicy.id!]) await client.alerting.policies.delete(id, { account_id: ACCOUNT });
  }, 180_000);

  it("deleting: a destination a policy names is refused (17454); the policy first, then the destination", async () => {
    await expect(client.alerting.destinations.webhooks.delete(webhookId, { account_id: ACCOUNT })).rejects.toMatchObject({ status: 409 });
    expect(await client.alerting.policies.delete(policyId, { account_id: ACCOUNT })).toMatchObject({ success: true });
    expect(await client.alerting.destinations.webhooks.delete(webhookId, { account_id: ACCOUNT })).toMatchObject({ success: true });
    await expect(client.alerting.policies.get(policyId, { account_id: ACCOUNT })).rejects.toMatchObject({ status: 404 });
    // The account's audit trail holds the deliveries; the zone's, the alerts it raised.
    const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] });
    const zoneAudit = await call<Array<{ action: { type: string } }>>(server.origin, "GET", `/client/v4/zones/${ZONE}/audit_logs?per_page=100`, { token });
    expect(zoneAudit.body!.result!.filter((e) => e.action.type === "alert")).toHaveLength(2);
  });
});

describe("notifications without --allow-private-outbound", () => {
  it("a destination on loopback is refused: its test message cannot leave (17451), and nothing reaches it", async () => {
    const root = inject("e2eRoot");
    const closed = await startServer({ root, name: "notifications-closed", port: await freePort() });
    const listening = await new WebhookReceiver().start();
    try {
      const account = scopeId("closed");
      const sdk = sdkClient(closed.baseURL, { apiToken: mintToken(closed.secrets.API_TOKEN_SECRET, { accounts: [account], groups: ["Notifications Write"] }) });
      await expect(sdk.alerting.destinations.webhooks.create({ account_id: account, name: "probe", url: listening.url })).rejects.toMatchObject({
        status: 400,
        errors: [expect.objectContaining({ code: 17451 })],
      });
      expect(listening.received).toEqual([]);
    } finally {
      await listening.stop();
      await closed.stop();
    }
  });
});
