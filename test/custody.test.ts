// Guards that custody rests on, each tested where a plausible bug would
// break it: a wrap is bound to its scope (not only to its id), a pooled key
// goes to one create, the quota is checked again inside the create's
// transaction, and an object serves only the scope it holds.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { parseCsrInput } from "../src/pki/csr-input";
import { loadKeyring } from "../src/pki/keyring";
import { type Storage, openStorage } from "../src/storage/storage";
import { TENANT_MIGRATIONS } from "../src/tenant/schema";
import { AuditTrail } from "../src/tenant/audit-trail";
import { Counters } from "../src/tenant/counters";
import { KeyPool, QUIET_MS } from "../src/tenant/key-pool";
import { TenantStore } from "../src/tenant/tenant-store";
import { csrStoreOn } from "./modules";
import { adminCall, adminHeaders, call, csrBody, scope, tenantStub } from "./shared";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const storageOf = (state: DurableObjectState): Storage => openStorage(state, TENANT_MIGRATIONS);

describe("a wrap is bound to its scope, not only to its id", () => {
  it("a CSR and its wrap copied into another scope under the same CSR id do not unwrap there", async () => {
    const a = await scope("zones");
    const b = await scope("zones");
    const made = (await a.create(csrBody({ key_type: "p256v1" }))).body.result;
    await b.create(csrBody({ key_type: "p256v1" }));
    const copied = await runInDurableObject(tenantStub("zones", a.id), (_, state) => ({
      csr: state.storage.sql.exec("SELECT * FROM csrs WHERE id = ?", made.id).one(),
      key: state.storage.sql.exec("SELECT k.* FROM wrapped_keys k JOIN csrs c ON c.seq = k.seq WHERE c.id = ?", made.id).one(),
    }));
    // In A, it is whole.
    expect((await call("POST", `/admin/v1/zones/${a.id}/custom_csrs/${made.id}/verify`, { headers: adminHeaders })).body.result).toMatchObject({ ok: true });
    await runInDurableObject(tenantStub("zones", b.id), (_, state) => {
      const { seq: _s, ...csr } = copied.csr as Record<string, SqlStorageValue>;
      const columns = Object.keys(csr);
      const { seq } = state.storage.sql.exec(`INSERT INTO csrs (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")}) RETURNING seq`, ...Object.values(csr)).one();
      state.storage.sql.exec("INSERT INTO wrapped_keys (seq, kek_id, iv, wrapped) VALUES (?, ?, ?, ?)", seq, copied.key.kek_id, copied.key.iv, copied.key.wrapped);
    });
    const moved = await call<{ ok: boolean; reason?: string }>("POST", `/admin/v1/zones/${b.id}/custom_csrs/${made.id}/verify`, { headers: adminHeaders });
    expect(moved.body.result).toMatchObject({ id: made.id, ok: false, reason: "unwrap_failed" });
  });

  it("a pooled wrap copied into another scope's pool under the same pool id does not unwrap there", async () => {
    const a = await scope("zones");
    const b = await scope("zones");
    for (const s of [a, b]) expect((await call("PUT", `/admin/v1/zones/${s.id}/key_pool`, { headers: adminHeaders, body: { size: 1 } })).status).toBe(200);
    for (let deadline = Date.now() + 30_000; ; ) {
      await sleep(QUIET_MS * 3);
      const ready = await Promise.all([a, b].map(async (s) => (await call<{ available: number }>("GET", `/admin/v1/zones/${s.id}/key_pool`, { headers: adminHeaders })).body.result.available));
      if (ready.every((n) => n >= 1)) break;
      if (Date.now() > deadline) throw new Error("the pools did not fill");
    }
    const row = await runInDurableObject(tenantStub("zones", a.id), (_, state) => state.storage.sql.exec("SELECT * FROM key_pool LIMIT 1").one());
    await runInDurableObject(tenantStub("zones", b.id), (_, state) => {
      state.storage.sql.exec("DELETE FROM key_pool");
      state.storage.sql.exec("INSERT INTO key_pool (id, kek_id, iv, wrapped, spki, created_at) VALUES (?, ?, ?, ?, ?, ?)", row.id, row.kek_id, row.iv, row.wrapped, row.spki, row.created_at);
    });
    const check = await call<{ failed: string[] }>("POST", `/admin/v1/zones/${b.id}/key_pool/verify`, { headers: adminHeaders });
    expect(check.body.result).toMatchObject({ checked: 1, ok: false, failed: [row.id], failures: [{ id: row.id, reason: "unwrap_failed" }] });
  });
});

describe("a pooled key goes to one create", () => {
  it("two claims at once on the pool's last key: one gets it, the other none; it is consumed once", async () => {
    const s = await scope("zones");
    expect((await call("PUT", `/admin/v1/zones/${s.id}/key_pool`, { headers: adminHeaders, body: { size: 1 } })).status).toBe(200);
    for (let deadline = Date.now() + 30_000; ; ) {
      await sleep(QUIET_MS * 3);
      if ((await call<{ available: number }>("GET", `/admin/v1/zones/${s.id}/key_pool`, { headers: adminHeaders })).body.result.available >= 1) break;
      if (Date.now() > deadline) throw new Error("the pool did not fill");
    }
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const storage = storageOf(state);
      const audit = new AuditTrail(storage.sql, new Counters(storage.sql));
      const keyring = await loadKeyring(env.KEY_ENCRYPTION_KEYS);
      audit.useKeyring(keyring);
      const pool = new KeyPool(storage, audit, 1, () => undefined);
      // Both claims start before either has unwrapped its key: the second must skip the one the first holds.
      const claims = await Promise.all([pool.claim({ kind: "zones", id: s.id }, `zones:${s.id}`, keyring), pool.claim({ kind: "zones", id: s.id }, `zones:${s.id}`, keyring)]);
      const got = claims.filter((c) => c !== null);
      expect(got).toHaveLength(1);
      expect(pool.consume(got[0]!)).toBe(true);
      expect(pool.consume(got[0]!)).toBe(false);
      pool.release(got[0]!);
    });
  });
});

describe("the quota", () => {
  it("is checked again inside the create's transaction: a create past admission is refused there, and writes nothing", async () => {
    const s = await scope("zones");
    expect((await call("PUT", `/admin/v1/zones/${s.id}/entitlement`, { headers: adminHeaders, body: { granted: true, quota: 1 } })).status).toBe(200);
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const storage = storageOf(state);
      const counters = new Counters(storage.sql);
      const audit = new AuditTrail(storage.sql, counters);
      const keyring = await loadKeyring(env.KEY_ENCRYPTION_KEYS);
      audit.useKeyring(keyring);
      const csrs = csrStoreOn(storage, { audit, counters });
      const input = parseCsrInput(csrBody({ key_type: "p256v1" }));
      if (!input.ok) throw new Error("the body is valid");
      const before = state.storage.sql.exec("SELECT (SELECT count(*) FROM csrs) AS csrs, (SELECT count(*) FROM wrapped_keys) AS keys").one();
      // As if admission had let it through while another create took the last of the quota.
      expect(await csrs.create(adminCall("zones", s.id), `zones:${s.id}`, input.value, keyring)).toMatchObject({ ok: false, reason: "no_quota" });
      expect(state.storage.sql.exec("SELECT (SELECT count(*) FROM csrs) AS csrs, (SELECT count(*) FROM wrapped_keys) AS keys").one()).toEqual(before);
    });
  });
});

describe("the clock is passed in", () => {
  it("a CSR's created_at and its audit entry's time are the clock's, not the machine's", async () => {
    const s = await scope("zones");
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    const fixed = new Date("2031-03-04T05:06:07.000Z");
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const storage = storageOf(state);
      const counters = new Counters(storage.sql);
      const audit = new AuditTrail(storage.sql, counters, () => fixed);
      const keyring = await loadKeyring(env.KEY_ENCRYPTION_KEYS);
      audit.useKeyring(keyring);
      const csrs = csrStoreOn(storage, { audit, counters, clock: () => fixed });
      const input = parseCsrInput(csrBody({ key_type: "p256v1" }));
      if (!input.ok) throw new Error("the body is valid");
      const made = await csrs.create(adminCall("zones", s.id), `zones:${s.id}`, input.value, keyring);
      expect(made.ok && made.value.created_at).toBe(fixed.toISOString());
      expect(state.storage.sql.exec("SELECT at FROM audit_log ORDER BY seq DESC LIMIT 1").one().at).toBe(fixed.toISOString());
    });
  });
});

describe("an object serves only the scope it holds", () => {
  it("a call naming another scope is refused (an internal error, logged) before anything is read or written", async () => {
    const s = await scope("zones");
    const made = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const store = new TenantStore(state, env);
      const other = adminCall("zones", "someone-else");
      const entries = () => state.storage.sql.exec("SELECT count(*) AS n FROM audit_log").one().n;
      const before = entries();
      const refused = { ok: false, reason: "scope_mismatch" };
      expect(store.getCsr(other, made.id)).toMatchObject(refused);
      expect(store.listCsrs(other, { page: 1, per_page: 20, order: "created_at", direction: "asc" })).toMatchObject(refused);
      expect(await store.deleteCsr(other, made.id)).toMatchObject(refused);
      expect(await store.createCsr(other, parseCsrInput(csrBody({ key_type: "p256v1" })))).toMatchObject(refused);
      expect(await store.setEntitlement(other, { granted: false, quota: 0 })).toMatchObject(refused);
      expect(entries()).toBe(before);
      expect(state.storage.sql.exec("SELECT count(*) AS n FROM csrs").one().n).toBe(1);
    });
  });
});
