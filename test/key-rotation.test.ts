import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { parseCsrInput } from "../src/pki/csr-input";
import { generateAccountKey } from "../src/acme/index";
import { namedWrapContext, secretWrapContext, unwrapSecret, wrapPrivateKey } from "../src/pki/key-wrap";
import { AlertingStore } from "../src/alerting/alerting-store";
import { loadKeyring } from "../src/pki/keyring";
import { openStorage } from "../src/storage/storage";
import { HostnameKeys } from "../src/tenant/hostname-keys";
import { HostnameTwins } from "../src/tenant/hostname-twins";
import { buildCsr } from "../src/pki/csr-builder";
import { checkCertificate } from "../src/pki/certificate-check";
import { createCa, issueLeaf } from "./test-ca";
import { TENANT_MIGRATIONS } from "../src/tenant/schema";
import { TenantStore } from "../src/tenant/tenant-store";
import { adminCall, adminHeaders, call, csrBody, scope, tenantStub } from "./shared";

const OLD = env.KEY_ENCRYPTION_KEYS; // "test1:…", what the Worker runs with in tests
const NEW_KEY = `k2:${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
const WRONG_OLD = `test1:${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;

/** The same object's storage, served by an instance that sees other KEKs: a redeploy with new secrets. */
function withKeys(state: DurableObjectState, keys: string): TenantStore {
  return new TenantStore(state, { ...env, KEY_ENCRYPTION_KEYS: keys });
}

const dump = (state: DurableObjectState) =>
  state.storage.sql.exec("SELECT c.id AS csr_id, k.kek_id, hex(k.iv) AS iv, hex(k.wrapped) AS wrapped FROM wrapped_keys k JOIN csrs c ON c.seq = k.seq ORDER BY c.id").toArray();

describe("key-encryption-key rotation", () => {
  it("reads old wraps, wraps new records with the current key, and rewraps in resumable batches", async () => {
    const s = await scope();
    for (let i = 0; i < 3; i++) expect((await s.create(csrBody({ key_type: i ? "p256v1" : "rsa2048" }))).status).toBe(201);
    const where = adminCall(s.kind, s.id);

    await runInDurableObject(tenantStub(s.kind, s.id), async (_, state) => {
      const rotated = withKeys(state, `${NEW_KEY},${OLD}`);
      const ids = state.storage.sql.exec("SELECT id FROM csrs ORDER BY id").toArray().map((r) => String(r.id));
      for (const id of ids) expect(await rotated.verifyCsrKey(where, id)).toMatchObject({ ok: true, value: { ok: true, kek_id: "test1" } });

      const created = await rotated.createCsr(where, parseCsrInput(csrBody({ key_type: "p256v1" })));
      expect(created.ok).toBe(true);
      const newId = created.ok ? created.value.id : "";
      expect(await rotated.verifyCsrKey(where, newId)).toMatchObject({ value: { ok: true, kek_id: "k2" } });

      // Batch one, as if the operator's run were interrupted after it.
      const first = await rotated.rewrapKeys(where, 2, "");
      expect(first).toMatchObject({ ok: true, value: { kek_id: "k2", rewrapped: 2, failed: [], remaining: 1 } });
      const next = first.ok ? first.value.next_after : null;
      expect(next).toBe(ids[1]);
      const second = await rotated.rewrapKeys(where, 2, next!);
      expect(second).toMatchObject({ ok: true, value: { rewrapped: 1, remaining: 0, next_after: null } });

      for (const id of [...ids, newId]) expect(await rotated.verifyCsrKey(where, id)).toMatchObject({ value: { ok: true, kek_id: "k2" } });
      // With only the old key configured, the new wraps cannot be read: an error naming the KEK, nothing changed.
      const before = dump(state);
      expect(await withKeys(state, OLD).verifyCsrKey(where, ids[0]!)).toMatchObject({ ok: false, reason: "key_encryption_key_missing", kek_id: "k2" });
      expect(dump(state)).toEqual(before);
    });
  });

  it("moves managed hostname keys and ACME account keys under the new KEK and re-seals hostname rows; a key that does not open is erased, its certificate renewed now", async () => {
    const s = await scope("zones");
    const created = await call("POST", `/client/v4/zones/${s.id}/custom_hostnames`, { token: s.token, body: { hostname: "shop.rotation-one.com" } });
    expect(created.status).toBe(201);
    const hostnameId = (created.body.result as { id: string }).id;
    const other = await call("POST", `/client/v4/zones/${s.id}/custom_hostnames`, { token: s.token, body: { hostname: "shop.rotation-two.com" } });
    const otherId = (other.body.result as { id: string }).id;
    const where = adminCall(s.kind, s.id);
    const name = `zones:${s.id}`;
    await runInDurableObject(tenantStub(s.kind, s.id), async (_, state) => {
      const storage = openStorage(state, TENANT_MIGRATIONS);
      const old = await loadKeyring(OLD);
      const keys = new HostnameKeys(storage, () => new Date());
      // The hostname's current key, whose wrap is damaged, and a pending one (a renewal under way); another hostname's current key.
      expect((await keys.pending(hostnameId, name, old)).ok).toBe(true);
      keys.promote(hostnameId);
      state.storage.sql.exec("UPDATE hostname_keys SET wrapped = randomblob(length(wrapped)) WHERE custom_hostname_id = ?", hostnameId);
      expect((await keys.pending(hostnameId, name, old)).ok).toBe(true);
      expect((await keys.pending(otherId, name, old)).ok).toBe(true);
      keys.promote(otherId);
      // Dual certificates: the other hostname's RSA twin, its key current and its row sealed under the old KEK.
      const rsa = await keys.pending(otherId, name, old, "rsa2048");
      if (!rsa.ok) throw new Error(rsa.reason);
      keys.promote(otherId, "rsa2048");
      const twinCsr = await buildCsr(
        { common_name: "shop.rotation-two.com", country: "", state: "", locality: "", organization: "", organizational_unit: null, sans: ["shop.rotation-two.com"], key_type: "rsa2048" },
        rsa.value,
      );
      const twinChecked = await checkCertificate(await issueLeaf(await createCa("p256v1"), twinCsr), twinCsr, new Date());
      if (!twinChecked.ok) throw new Error(twinChecked.reason);
      // Its audit entry is the object's to write; here it is only collected.
      const twinEntries: unknown[] = [];
      const twins = new HostnameTwins(storage, { record: (_call, entry) => void twinEntries.push(entry) }, () => new Date());
      twins.install(where, otherId, "rsa2048", twinChecked.value, old, "issue");
      expect(twinEntries).toMatchObject([{ action: "create", resource: { type: "custom_hostname_certificate", id: otherId }, metadata: { key_type: "rsa2048" } }]);
      // A hostname that does not exist gets no key (a delete during the generation leaves no orphan).
      expect(await keys.pending("no-such-hostname", name, old)).toMatchObject({ ok: false, reason: "hostname_not_found" });
      // As a managed certificate due for renewal much later (renew_at is not part of a row's seal).
      state.storage.sql.exec("UPDATE custom_hostnames SET renew_at = '2099-01-01T00:00:00.000Z' WHERE id = ?", hostnameId);
      // An ACME account key, wrapped as the account module wraps it.
      const account = await generateAccountKey();
      const wrap = await wrapPrivateKey(account.privateKey, old, namedWrapContext("acme-account", name, "acct-key-1"));
      state.storage.sql.exec(
        "INSERT INTO acme_accounts (ca, directory, key_id, kek_id, iv, wrapped, public_jwk, url, created_at) VALUES ('pebble', 'https://ca.example/dir', 'acct-key-1', ?, ?, ?, ?, 'https://ca.example/acct/1', '2026-12-06T00:00:00Z')",
        wrap.kekId,
        wrap.iv,
        wrap.wrapped,
        JSON.stringify(account.publicJwk),
      );

      const rotated = withKeys(state, `${NEW_KEY},${OLD}`);
      const report = await rotated.rewrapKeys(where, 100, "");
      expect(report).toMatchObject({
        ok: true,
        value: {
          kek_id: "k2",
          hostnames_resealed: 3,
          hostnames_failed: [],
          hostname_keys_rewrapped: 3,
          acme_accounts_rewrapped: 1,
          key_failures: [{ kind: "hostname_key", kek_id: "test1", reason: "unwrap_failed" }],
          remaining: 0,
        },
      });
      const kekOf = (table: string) => state.storage.sql.exec(`SELECT DISTINCT kek_id FROM ${table}`).toArray().map((r) => r.kek_id);
      expect(kekOf("hostname_keys")).toEqual(["k2"]);
      expect(kekOf("acme_accounts")).toEqual(["k2"]);
      expect(state.storage.sql.exec("SELECT DISTINCT mac_kek FROM hostname_certificates").toArray().map((r) => r.mac_kek)).toEqual(["k2"]);
      expect(state.storage.sql.exec("SELECT DISTINCT mac_kek FROM custom_hostnames").toArray().map((r) => r.mac_kek)).toEqual(["k2"]);
      // The damaged current key is gone and its certificate is due now (a fresh key is ordered); the keys moved open under the new KEK alone.
      expect(state.storage.sql.exec("SELECT state FROM hostname_keys WHERE custom_hostname_id = ?", hostnameId).toArray().map((r) => r.state)).toEqual(["pending"]);
      expect(Date.parse(String(state.storage.sql.exec("SELECT renew_at FROM custom_hostnames WHERE id = ?", hostnameId).one().renew_at))).toBeLessThanOrEqual(Date.now());
      const newOnly = await loadKeyring(NEW_KEY);
      expect((await keys.pending(hostnameId, name, newOnly)).ok).toBe(true);
      expect(await keys.sealKey(name, otherId, newOnly, async (pkcs8) => String(pkcs8.length))).toMatchObject({ ok: true });
      // The RSA twin's key opens under the new KEK alone, and its resealed row passes its check there.
      expect(await keys.sealKey(name, otherId, newOnly, async (pkcs8) => String(pkcs8.length > 1000), "rsa2048")).toEqual({ ok: true, value: "true" });
      const twinId = String(state.storage.sql.exec("SELECT id FROM hostname_certificates").one().id);
      expect(twins.forDelivery(twinId, newOnly, where)).toMatchObject({ ok: true, value: { id: twinId, key_type: "rsa2048" } });
      // The rotation's audit entries name what moved.
      const entries = state.storage.sql.exec("SELECT action, resource_type FROM audit_log WHERE action = 'rewrap' ORDER BY seq").toArray();
      expect(entries.map((e) => e.resource_type)).toEqual(expect.arrayContaining(["hostname_key", "acme_account"]));
      // A second run has nothing left to move.
      expect(await rotated.rewrapKeys(where, 100, "")).toMatchObject({ ok: true, value: { hostname_keys_rewrapped: 0, acme_accounts_rewrapped: 0, key_failures: [], remaining: 0 } });
    });
  });

  it("moves webhook destinations' secrets under the new KEK, the secret unchanged; one whose KEK is gone stays and is named", async () => {
    const s = await scope("accounts");
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    const where = adminCall(s.kind, s.id);
    await runInDurableObject(tenantStub(s.kind, s.id), async (_, state) => {
      const storage = openStorage(state, TENANT_MIGRATIONS);
      const old = await loadKeyring(OLD);
      // The destination's test message is the transport's to send; here it is answered 204 without leaving the object.
      const alerting = new AlertingStore(storage, { record: () => {} }, () => new Date());
      const created = await alerting.createWebhook(where, { name: "ops", url: "https://hooks.example.com/certs", secret: "shared-secret-1" }, old, async () => ({ ok: true, status: 204 }));
      if (!created.ok) throw new Error(created.reason);
      const rotated = withKeys(state, `${NEW_KEY},${OLD}`);
      expect(await rotated.rewrapKeys(where, 100, "")).toMatchObject({ ok: true, value: { kek_id: "k2", webhook_secrets_rewrapped: 1, remaining: 0, key_failures: [] } });
      const row = state.storage.sql.exec("SELECT secret_kek, secret_iv, secret_wrapped FROM alert_webhooks").one();
      expect(row.secret_kek).toBe("k2");
      const context = secretWrapContext("webhook-secret", `accounts:${s.id}`, created.value.id);
      const wrapped = { kekId: String(row.secret_kek), iv: row.secret_iv as ArrayBuffer, wrapped: row.secret_wrapped as ArrayBuffer };
      expect(await unwrapSecret(wrapped, await loadKeyring(NEW_KEY), context)).toBe("shared-secret-1");
      // The secret is in no row in the clear.
      expect(JSON.stringify(state.storage.sql.exec("SELECT * FROM alert_webhooks").toArray(), (_k, v: unknown) => (v instanceof ArrayBuffer ? [...new Uint8Array(v)] : v))).not.toContain("shared-secret-1");
    });
  });

  it("a wrong key under a known id is refused by name (1505) before anything is wrapped, unwrapped or rewritten", async () => {
    const s = await scope();
    for (let i = 0; i < 2; i++) await s.create(csrBody({ key_type: "p256v1" }));
    const where = adminCall(s.kind, s.id);
    await runInDurableObject(tenantStub(s.kind, s.id), async (_, state) => {
      const before = dump(state);
      const entries = state.storage.sql.exec("SELECT count(*) AS n FROM audit_log").one().n;
      const id = String(before[0]!.csr_id);
      for (const keys of [`${NEW_KEY},${WRONG_OLD}`, WRONG_OLD]) {
        const wrong = withKeys(state, keys);
        const refused = { ok: false, reason: "key_encryption_mismatch", kek_id: "test1" };
        expect(await wrong.verifyCsrKey(where, id)).toMatchObject(refused);
        expect(await wrong.rewrapKeys(where, 10, "")).toMatchObject(refused);
        expect(await wrong.createCsr(where, parseCsrInput(csrBody({ key_type: "p256v1" })))).toMatchObject(refused);
        expect(await wrong.deleteCsr(where, id)).toMatchObject(refused);
      }
      expect(dump(state)).toEqual(before);
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM audit_log").one().n).toBe(entries);
    });
  });

  it("data older than check values is checked once by a trial unwrap, then recorded", async () => {
    const s = await scope();
    await s.create(csrBody({ key_type: "p256v1" }));
    const where = adminCall(s.kind, s.id);
    await runInDurableObject(tenantStub(s.kind, s.id), async (_, state) => {
      // As a store from before schema version 8 left it: wraps, no check values.
      state.storage.sql.exec("DELETE FROM kek_checks");
      const id = String(dump(state)[0]!.csr_id);
      expect(await withKeys(state, WRONG_OLD).verifyCsrKey(where, id)).toMatchObject({ ok: false, reason: "key_encryption_mismatch", kek_id: "test1" });
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM kek_checks").one().n).toBe(0);
      expect(await withKeys(state, OLD).verifyCsrKey(where, id)).toMatchObject({ ok: true, value: { ok: true } });
      expect(state.storage.sql.exec("SELECT kek_id FROM kek_checks").toArray()).toEqual([{ kek_id: "test1" }]);
    });
  });

  it("the deployment registry refuses another key under a recorded id, even for a scope with no data yet", async () => {
    const s = await scope();
    await s.create(csrBody({ key_type: "p256v1" }));
    const other = await scope();
    await runInDurableObject(tenantStub(other.kind, other.id), async (_, state) => {
      const result = await withKeys(state, WRONG_OLD).createCsr(adminCall(other.kind, other.id), parseCsrInput(csrBody({ key_type: "p256v1" })));
      expect(result).toMatchObject({ ok: false, reason: "key_encryption_mismatch", kek_id: "test1" });
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM csrs").one().n).toBe(0);
    });
  });

  it("a missing key-encryption key is 503 with 1501 and writes nothing", async () => {
    const s = await scope();
    const where = adminCall(s.kind, s.id);
    await runInDurableObject(tenantStub(s.kind, s.id), async (_, state) => {
      for (const keys of ["", "nocolon", "k:bm90MzJieXRlcw==", `a:${"A".repeat(44)},a:${"A".repeat(44)}`]) {
        const result = await withKeys(state, keys).createCsr(where, parseCsrInput(csrBody({ key_type: "p256v1" })));
        expect(result).toMatchObject({ ok: false, reason: "key_encryption_unavailable" });
      }
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM csrs").one().n).toBe(0);
    });
  });

  it("the admin rewrap endpoint reports a batch and refuses a bad limit", async () => {
    const s = await scope();
    await s.create(csrBody({ key_type: "p256v1" }));
    const reply = await call("POST", `/admin/v1/${s.kind}/${s.id}/rewrap?limit=10`, { headers: adminHeaders });
    expect(reply.status).toBe(200);
    expect(reply.body.result).toEqual({
      kek_id: "test1",
      rewrapped: 0,
      failed: [],
      failures: [],
      remaining: 0,
      next_after: null,
      pooled_rewrapped: 0,
      pooled_failed: [],
      pooled_failures: [],
      audit_rekeyed: 0,
      audit_failed: [],
      certificates_resealed: 0,
      certificates_sealed: [],
      certificates_failed: [],
      hostnames_resealed: 0,
      hostnames_failed: [],
      hostname_keys_rewrapped: 0,
      acme_accounts_rewrapped: 0,
      webhook_secrets_rewrapped: 0,
      key_failures: [],
    });
    const bad = await call("POST", `/admin/v1/${s.kind}/${s.id}/rewrap?limit=0`, { headers: adminHeaders });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]!.code).toBe(1435);
  });
});
