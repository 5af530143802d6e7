// Expiry notices as a zone raises them (src/tenant/alert-outbox.ts): 30 and
// 14 days before a custom certificate expires and at its expiry, the most
// urgent one only when several are due at once, each once per certificate
// version; the alarm's next time is the next notice's.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { checkCertificate } from "../src/pki/certificate-check";
import { buildCsr } from "../src/pki/csr-builder";
import { loadKeyring } from "../src/pki/keyring";
import { HostnameKeys } from "../src/tenant/hostname-keys";
import { HostnameTwins } from "../src/tenant/hostname-twins";
import { describe, expect, it } from "vitest";
import { openStorage } from "../src/storage/storage";
import { AlertOutbox } from "../src/tenant/alert-outbox";
import { TENANT_MIGRATIONS } from "../src/tenant/schema";
import { adminCall, adminHeaders, call, csrBody, scope, tenantStub } from "./shared";
import { createCa, issueLeaf } from "./test-ca";

const DAY = 86_400_000;

describe("expiry notices", () => {
  it("raises 30, 14 and 0 days ahead, the most urgent when several are due, once each; says when the next is due", async () => {
    const s = await scope("zones");
    const ca = await createCa("p256v1");
    const start = Date.now();
    const upload = async (days: number) => {
      const csr = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
      const leaf = await issueLeaf(ca, csr.csr, { notAfter: new Date(start + days * DAY) });
      const reply = await call<{ id: string; expires_on: string }>("POST", `/client/v4/zones/${s.id}/custom_certificates`, { token: s.token, body: { certificate: leaf, custom_csr_id: csr.id } });
      expect(reply.status).toBe(200);
      return reply.body.result;
    };
    const far = await upload(45);
    const near = await upload(10);
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const storage = openStorage(state, TENANT_MIGRATIONS);
      state.storage.sql.exec("DELETE FROM alert_outbox");
      state.storage.sql.exec("DELETE FROM expiry_notices");
      let now = start;
      const entries: Array<{ action: string; metadata: Record<string, unknown> }> = [];
      const outbox = new AlertOutbox(storage, { record: (_call, e) => void entries.push(e as never) }, () => new Date(now));
      const where = adminCall("zones", s.id);
      const told = () =>
        outbox.pending().map((e) => `${(e.data as { certificate_id: string }).certificate_id === far.id ? "far" : "near"}:${(e.data as { metadata: { event: { type: string } } }).metadata.event.type.split(".").at(-1)}:${(e.data as { days_til_expiration: number }).days_til_expiration}`);

      // Now: the one 10 days out is inside both windows: one notice (the 14 days'), not two; again, none.
      expect(outbox.raiseExpiries(where)).toBe(1);
      expect(outbox.raiseExpiries(where)).toBe(0);
      // Next: its expiry, before the far one's 30-day notice (15 days from now); then that, the 14-day one, its expiry.
      for (const at of [Date.parse(near.expires_on), Date.parse(far.expires_on) - 30 * DAY, Date.parse(far.expires_on) - 14 * DAY]) {
        expect(outbox.nextExpiry()).toBe(at);
        now = at + 1000;
        expect(outbox.raiseExpiries(where)).toBe(1);
      }
      expect(outbox.nextExpiry()).toBe(Date.parse(far.expires_on));
      expect(told()).toEqual(["near:upcoming_expiration_notification:10", "near:expired:0", "far:upcoming_expiration_notification:30", "far:upcoming_expiration_notification:14"]);
      // Each raised event is an audit entry of the zone.
      expect(entries.map((e) => e.action)).toEqual(["alert", "alert", "alert", "alert"]);
      // Handed over, they are gone; the outbox is empty until the next one is due.
      outbox.handedOver(outbox.pending().map((e) => e.id));
      expect(outbox.pending()).toEqual([]);
      expect(outbox.nextExpiry()).toBe(Date.parse(far.expires_on));
    });
  });
});

describe("a notice passed over", () => {
  it("a less urgent notice due after a more urgent one was told is marked, never told, and keeps no alarm busy", async () => {
    const s = await scope("zones");
    const csr = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const start = Date.now();
    const leaf = await issueLeaf(await createCa("p256v1"), csr.csr, { notAfter: new Date(start + 10 * DAY) });
    expect((await call("POST", `/client/v4/zones/${s.id}/custom_certificates`, { token: s.token, body: { certificate: leaf, custom_csr_id: csr.id } })).status).toBe(200);
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const storage = openStorage(state, TENANT_MIGRATIONS);
      // As after a certificate's notices changed (ACME switched off): its 14-day notice told, its 30-day one never.
      state.storage.sql.exec("DELETE FROM alert_outbox");
      state.storage.sql.exec("DELETE FROM expiry_notices");
      const { id, expires_on } = state.storage.sql.exec<{ id: string; expires_on: string }>("SELECT id, expires_on FROM certificates").one();
      state.storage.sql.exec("INSERT INTO expiry_notices (certificate_id, expires_on, days) VALUES (?, ?, 14)", id, expires_on);
      const outbox = new AlertOutbox(storage, { record: () => {} }, () => new Date(start));
      expect(outbox.raiseExpiries(adminCall("zones", s.id))).toBe(0);
      expect(outbox.pending()).toEqual([]);
      // The next notice is the expiry, not "now" (an alarm every 50 ms until then).
      expect(outbox.nextExpiry()).toBe(Date.parse(expires_on));
    });
  });
});

describe("an audit chain that fails verification", () => {
  it("raises custom_csr_audit_chain_failed once per break, an audit entry of the scope", async () => {
    const s = await scope("zones");
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    await runInDurableObject(tenantStub("zones", s.id), (_, state) => {
      state.storage.sql.exec(`UPDATE audit_log SET metadata = '{"edited":true}' WHERE seq = 2`);
    });
    const verify = () => call<{ ok: boolean; broken_at?: { position: number } }>("POST", `/admin/v1/zones/${s.id}/audit/verify`, { headers: adminHeaders });
    for (let i = 0; i < 2; i++) expect((await verify()).body.result).toMatchObject({ ok: false, broken_at: { position: 2 } });
    await runInDurableObject(tenantStub("zones", s.id), (_, state) => {
      const raised = state.storage.sql
        .exec("SELECT resource_type, metadata FROM audit_log WHERE action = 'alert'")
        .toArray()
        .map((r) => [r.resource_type, (JSON.parse(String(r.metadata)) as { alert_type: string; event_type: string }).alert_type]);
      expect(raised).toEqual([["audit_log", "custom_csr_audit_chain_failed"]]);
    });
  });
});

describe("an RSA twin's expiry", () => {
  it("is told as its hostname's, with key_type rsa2048, once its renewal is late (5/6 of its life, 14 days at most ahead)", async () => {
    const s = await scope("zones");
    const ca = await createCa("p256v1");
    const csr = (await s.create(csrBody({ key_type: "p256v1", common_name: "shop.twin-notice.com", sans: ["shop.twin-notice.com"] }))).body.result;
    const start = Date.now();
    const own = await issueLeaf(ca, csr.csr, { notAfter: new Date(start + 300 * DAY) });
    const created = await call<{ id: string }>("POST", `/client/v4/zones/${s.id}/custom_hostnames`, { token: s.token, body: { hostname: "shop.twin-notice.com", ssl: { custom_csr_id: csr.id, custom_certificate: own } } });
    expect(created.status).toBe(201);
    const hostnameId = created.body.result.id;
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const storage = openStorage(state, TENANT_MIGRATIONS);
      state.storage.sql.exec("DELETE FROM alert_outbox");
      // A twin of 10 days, installed now: its notice is due at 5/6 of its life, not 14 days ahead (at once).
      const keys = new HostnameKeys(storage, () => new Date(start));
      const pair = await keys.pending(hostnameId, `zones:${s.id}`, await loadKeyring(env.KEY_ENCRYPTION_KEYS), "rsa2048");
      if (!pair.ok) throw new Error(pair.reason);
      const twinCsr = await buildCsr({ common_name: "shop.twin-notice.com", country: "", state: "", locality: "", organization: "", organizational_unit: null, sans: ["shop.twin-notice.com"], key_type: "rsa2048" }, pair.value);
      const checked = await checkCertificate(await issueLeaf(ca, twinCsr, { notBefore: new Date(start - 1000), notAfter: new Date(start + 10 * DAY) }), twinCsr, new Date(start));
      if (!checked.ok) throw new Error(checked.reason);
      new HostnameTwins(storage, { record: () => {} }, () => new Date(start)).install(adminCall("zones", s.id), hostnameId, "rsa2048", checked.value, await loadKeyring(env.KEY_ENCRYPTION_KEYS), "issue");
      const twinId = String(state.storage.sql.exec("SELECT id FROM hostname_certificates").one().id);
      let now = start;
      const outbox = new AlertOutbox(storage, { record: () => {} }, () => new Date(now));
      expect(outbox.raiseExpiries(adminCall("zones", s.id))).toBe(0);
      const due = outbox.nextExpiry()!;
      expect(Math.abs(due - (start + (10 * DAY * 5) / 6))).toBeLessThan(5_000);
      now = due + 1000;
      expect(outbox.raiseExpiries(adminCall("zones", s.id))).toBe(1);
      const [event] = outbox.pending();
      expect(event!.data).toMatchObject({ id: hostnameId, certificate_id: twinId, hostname: "shop.twin-notice.com", key_type: "rsa2048", days_til_expiration: 2 });
      expect(event!.text).toMatch(/^The RSA-2048 certificate of custom hostname shop\.twin-notice\.com expires at /);
    });
  });
});
