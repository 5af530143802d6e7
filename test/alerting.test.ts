// Cloudflare's alerting v3 routes on an account, as the SDK sends them: what
// each refuses (and writes nothing for), who may call them, and what an
// account without notifications answers. Delivery to a real receiver is in
// test/e2e/notifications.e2e.ts.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { AlertingStore } from "../src/alerting/alerting-store";
import { loadKeyring } from "../src/pki/keyring";
import { openStorage } from "../src/storage/storage";
import { TENANT_MIGRATIONS } from "../src/tenant/schema";
import { adminCall, call, expectError, scope, scopeId, tenantStub } from "./shared";
import { mintToken } from "./tokens";

const base = (account: string) => `/client/v4/accounts/${account}/alerting/v3`;
const writer = (account: string) => mintToken({ accounts: [account], groups: ["Notifications Write"] });
const UNKNOWN = "0da2b59ef118439d8097bdfb215203c9";

describe("notifications (alerting v3)", () => {
  it("an account without notifications lists none, and finds no webhook or policy (17452, 17453)", async () => {
    const account = scopeId("alrt");
    const token = await mintToken({ accounts: [account], groups: ["Notifications Read"] });
    for (const path of ["destinations/webhooks", "policies", "history"]) {
      const listed = await call<unknown[]>("GET", `${base(account)}/${path}`, { token });
      expect([listed.status, listed.body.result], path).toEqual([200, []]);
    }
    expect((await call("GET", `${base(account)}/history`, { token })).body.result_info).toMatchObject({ count: 0, page: 1, total_count: 0 });
    expectError(await call("GET", `${base(account)}/destinations/webhooks/${UNKNOWN}`, { token }), 404, 17452);
    expectError(await call("GET", `${base(account)}/policies/${UNKNOWN}`, { token }), 404, 17453);
    expectError(await call("GET", `${base(account)}/policies/not-an-id`, { token }), 400, 17457);
  });

  it("available_alerts lists the certificate alert under SSL/TLS with its zones filter", async () => {
    const account = scopeId("alrt");
    const reply = await call<Record<string, Array<{ type: string; filter_options: unknown[] }>>>("GET", `${base(account)}/available_alerts`, {
      token: await mintToken({ accounts: [account], groups: ["Notifications Read"] }),
    });
    expect(reply.status).toBe(200);
    expect(reply.body.result["SSL/TLS"]).toEqual([
      expect.objectContaining({ type: "custom_ssl_certificate_event_type", filter_options: [{ Key: "zones", ComparisonOperator: "==", Range: "0-1", AvailableValues: null }] }),
    ]);
  });

  it("needs the Notifications groups: SSL and Certificates Write reads nothing here, Read writes nothing (10000)", async () => {
    const account = scopeId("alrt");
    expectError(await call("GET", `${base(account)}/policies`, { token: await mintToken({ accounts: [account] }) }), 403, 10000);
    const reader = await mintToken({ accounts: [account], groups: ["Notifications Read"] });
    expectError(await call("POST", `${base(account)}/destinations/webhooks`, { token: reader, body: { name: "ops", url: "https://hooks.example.com/x" } }), 403, 10000);
    // Another account's token is refused as well.
    expectError(await call("GET", `${base(account)}/policies`, { token: await writer(scopeId("alrt")) }), 403, 10000);
    // Zones have no alerting routes.
    expectError(await call("GET", `/client/v4/zones/${scopeId("z")}/alerting/v3/policies`, { token: await mintToken({ zones: ["z"] }) }), 404, 7000);
  });

  it("a destination is refused unless its test message is answered with a 2xx (17451), and a bad body names its field (17456)", async () => {
    const account = scopeId("alrt");
    const token = await writer(account);
    const refused = await call("POST", `${base(account)}/destinations/webhooks`, { token, body: { name: "ops", url: "http://127.0.0.1:1/hook", secret: "s3cret-value" } });
    expectError(refused, 400, 17451);
    expect(JSON.stringify(refused.body)).not.toContain("s3cret-value");
    for (const [body, field] of [
      [{ url: "https://hooks.example.com/x" }, "/name"],
      [{ name: "ops", url: "ftp://hooks.example.com/x" }, "/url"],
      [{ name: "ops", url: "https://user:pw@hooks.example.com/x" }, "/url"],
      [{ name: "ops", url: "https://hooks.example.com/x", secret: 7 }, "/secret"],
      [{ name: "ops\n", url: "https://hooks.example.com/x" }, "/name"],
    ] as const) {
      const reply = await call("POST", `${base(account)}/destinations/webhooks`, { token, body });
      expectError(reply, 400, 17456);
      expect(reply.body.errors[0]!.message, JSON.stringify(body)).toContain(field);
    }
    expect((await call("GET", `${base(account)}/destinations/webhooks`, { token })).body.result).toEqual([]);
  });

  it("a policy needs a known alert type (17004), a destination (17102) of the account (17455), filters of its type (17450), no alert_interval (17009)", async () => {
    const account = scopeId("alrt");
    const token = await writer(account);
    const policy = (extra: Record<string, unknown>) => ({ name: "certs", alert_type: "custom_ssl_certificate_event_type", enabled: true, mechanisms: { webhooks: [{ id: UNKNOWN }] }, ...extra });
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ alert_type: "universal_ssl_event_type" }) }), 400, 17004);
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ mechanisms: {} }) }), 400, 17102);
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ mechanisms: { email: [{ id: "ops@example.com" }], webhooks: [{ id: UNKNOWN }] } }) }), 400, 17456);
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ filters: { services: ["x"] } }) }), 400, 17450);
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ filters: { zones: ["not a zone"] } }) }), 400, 17450);
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ alert_interval: "30m" }) }), 400, 17009);
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ enabled: "yes" }) }), 400, 17456);
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({}) }), 400, 17455);
    expectError(await call("PUT", `${base(account)}/policies/${UNKNOWN}`, { token, body: { enabled: false } }), 404, 17453);
    expectError(await call("DELETE", `${base(account)}/destinations/webhooks/${UNKNOWN}`, { token }), 404, 17452);
    expect((await call("GET", `${base(account)}/policies`, { token })).body.result).toEqual([]);
  });
});

describe("notifications of our own (alerting v3)", () => {
  it("available_alerts lists the key pool, audit chain and edge alerts; an edge policy needs its edges (17103) and a whole max_age_minutes (17450)", async () => {
    const account = scopeId("alrt");
    const token = await writer(account);
    const listed = await call<Record<string, Array<{ type: string }>>>("GET", `${base(account)}/available_alerts`, { token });
    expect(listed.body.result["Custom CSR API"]!.map((a) => a.type)).toEqual(["custom_csr_key_pool_empty", "custom_csr_audit_chain_failed", "custom_csr_edge_stale"]);
    const policy = (filters: Record<string, string[]>) => ({ name: "edges", alert_type: "custom_csr_edge_stale", enabled: true, mechanisms: { webhooks: [{ id: UNKNOWN }] }, filters });
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({}) }), 400, 17103);
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ edges: ["fra-1"], max_age_minutes: ["5m"] }) }), 400, 17450);
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ edges: ["fra 1"] }) }), 400, 17450);
    // Well-formed, it fails only on the destination it names.
    expectError(await call("POST", `${base(account)}/policies`, { token, body: policy({ edges: ["fra-1"], max_age_minutes: ["30"] }) }), 400, 17455);
  });
});

describe("a policy changed in part (PUT)", () => {
  it("is checked whole: filters its type does not take (17450), or its type's required filters missing (17103); the audit trail keeps a destination's origin, not its URL", async () => {
    const s = await scope("accounts");
    expect((await s.create()).status).toBe(201);
    await runInDurableObject(tenantStub("accounts", s.id), async (_, state) => {
      const entries: Array<{ metadata?: Record<string, unknown> }> = [];
      const alerting = new AlertingStore(openStorage(state, TENANT_MIGRATIONS), { record: (_call, e) => void entries.push(e) }, () => new Date());
      const where = adminCall("accounts", s.id);
      // The transport answers the test message 204 without leaving the object.
      const hook = await alerting.createWebhook(where, { name: "slack", url: "https://hooks.slack.com/services/T000/B000/s3cretpath", secret: null }, await loadKeyring(env.KEY_ENCRYPTION_KEYS), async () => ({ ok: true, status: 204 }));
      if (!hook.ok) throw new Error(hook.reason);
      expect(entries[0]!.metadata).toEqual({ name: "slack", origin: "https://hooks.slack.com", secret: false });
      expect(JSON.stringify(entries)).not.toContain("s3cretpath");
      const policy = alerting.createPolicy(where, { name: "certs", description: "", alert_type: "custom_ssl_certificate_event_type", enabled: true, mechanisms: { webhooks: [{ id: hook.value.id }] }, filters: {} });
      if (!policy.ok) throw new Error(policy.reason);
      expect(alerting.updatePolicy(where, policy.value.id, { alert_type: "custom_csr_edge_stale" })).toMatchObject({ ok: false, reason: "alert_filters_required", filters: "edges" });
      expect(alerting.updatePolicy(where, policy.value.id, { filters: { edges: ["fra-1"] } })).toMatchObject({ ok: false, reason: "alert_filter_invalid" });
      expect(alerting.updatePolicy(where, policy.value.id, { alert_type: "custom_csr_edge_stale", filters: { edges: ["fra-1"] } })).toMatchObject({ ok: true });
      expect(alerting.getPolicy(policy.value.id)).toMatchObject({ ok: true, value: { alert_type: "custom_csr_edge_stale", filters: { edges: ["fra-1"] } } });
    });
  });
});
