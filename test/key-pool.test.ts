import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { AsnConvert } from "@peculiar/asn1-schema";
import { describe, expect, it } from "vitest";
import { begin, end } from "../src/core/activity";
import { parseCsrInput } from "../src/pki/csr-input";
import type { AuditLogRecord } from "../src/tenant/audit-records";
import { QUIET_MS } from "../src/tenant/key-pool";
import { TenantStore } from "../src/tenant/tenant-store";
import { parseCsr } from "./csr-parse";
import { type Kind, adminCall, adminHeaders, call, csrBody, expectError, scope, tenantStub } from "./shared";

type PoolState = { key_type: string; size: number; available: number; started: boolean };

const poolPath = (kind: Kind, id: string) => `/admin/v1/${kind}/${id}/key_pool`;
const hex = (bytes: ArrayBuffer | Uint8Array) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The CSR's public key (SubjectPublicKeyInfo DER) in hex. */
const spkiOf = (pem: string) => hex(AsnConvert.serialize(parseCsr(pem).request.certificationRequestInfo.subjectPKInfo));

async function setPool(kind: Kind, id: string, size: number) {
  return call<PoolState>("PUT", poolPath(kind, id), { headers: adminHeaders, body: { size } });
}

/**
 * Waits until the pool holds `n` keys. Polls are requests, and the pool only
 * fills once the isolate has been quiet for QUIET_MS, so they are spaced wider.
 */
async function untilAvailable(kind: Kind, id: string, n: number): Promise<PoolState> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    await sleep(QUIET_MS * 3);
    const state = (await call<PoolState>("GET", poolPath(kind, id), { headers: adminHeaders })).body.result;
    if (state.available >= n) return state;
    if (Date.now() > deadline) throw new Error(`the pool of ${kind}/${id} has ${state.available} keys, not ${n}`);
  }
}

/** The pool's rows as stored: id, KEK and public key. */
const poolRows = (kind: Kind, id: string) =>
  runInDurableObject(tenantStub(kind, id), (_, state) =>
    state.storage.sql.exec("SELECT id, kek_id, hex(spki) AS spki FROM key_pool ORDER BY seq").toArray() as Array<{ id: string; kek_id: string; spki: string }>,
  );

async function trail(s: { kind: Kind; id: string; token: string }): Promise<AuditLogRecord[]> {
  return (await call<AuditLogRecord[]>("GET", `/client/v4/${s.kind}/${s.id}/audit_logs?direction=asc&per_page=100`, { token: s.token })).body.result;
}

describe("the RSA key pool", () => {
  it("fills to its size in idle time; a create takes the oldest key, which leaves the pool, and the pool refills", async () => {
    const s = await scope("zones");
    expect((await setPool("zones", s.id, 3)).body.result).toEqual({ key_type: "rsa2048", size: 3, available: 0, started: true });
    await untilAvailable("zones", s.id, 3);
    const before = await poolRows("zones", s.id);
    expect(before).toHaveLength(3);
    expect(new Set(before.map((r) => r.spki)).size).toBe(3);

    const made = await s.create(csrBody({ key_type: "rsa2048" }));
    expect(made.status).toBe(201);
    expect(spkiOf(made.body.result.csr).toUpperCase()).toBe(before[0]!.spki);
    const after = await poolRows("zones", s.id);
    expect(after.map((r) => r.id)).toEqual(before.slice(1).map((r) => r.id));
    const check = await call<{ ok: boolean }>("POST", `/admin/v1/zones/${s.id}/custom_csrs/${made.body.result.id}/verify`, { headers: adminHeaders });
    expect(check.body.result.ok).toBe(true);

    await untilAvailable("zones", s.id, 3);
    const entries = await trail(s);
    const generated = entries.filter((e) => e.action.type === "generate");
    expect(generated).toHaveLength(4);
    for (const e of generated) {
      expect(e).toMatchObject({ actor: { type: "system", id: "key-pool" }, resource: { type: "pooled_key" }, metadata: { key_type: "rsa2048", kek_id: "test1" } });
    }
    expect(generated.slice(0, 3).map((e) => e.resource.id)).toEqual(before.map((r) => r.id));
    const created = entries.find((e) => e.action.type === "create" && e.resource.type === "custom_csr")!;
    expect(created.metadata).toMatchObject({ key_source: "pool", pooled_key_id: before[0]!.id });
    // The pool's state carries no key material.
    expect(JSON.stringify((await call("GET", poolPath("zones", s.id), { headers: adminHeaders })).body)).not.toMatch(/spki|wrapped|PRIVATE/i);
  });

  it("never hands one key to two CSRs: concurrent creates race for the last pooled key", async () => {
    const s = await scope("zones");
    await setPool("zones", s.id, 1);
    await untilAvailable("zones", s.id, 1);
    const [pooled] = await poolRows("zones", s.id);
    const made = await Promise.all(Array.from({ length: 4 }, () => s.create(csrBody({ key_type: "rsa2048" }))));
    expect(made.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    const keys = made.map((r) => spkiOf(r.body.result.csr).toUpperCase());
    expect(new Set(keys).size).toBe(4);
    expect(keys.filter((k) => k === pooled!.spki)).toHaveLength(1);
    const sources = (await trail(s)).filter((e) => e.action.type === "create").map((e) => e.metadata.key_source);
    expect(sources.sort()).toEqual(["generated", "generated", "generated", "pool"]);
  });

  it("starts at a scope's first rsa2048 create, not for p256v1; fills only while the isolate is idle", async () => {
    const s = await scope("accounts");
    await runInDurableObject(tenantStub("accounts", s.id), async (_, state) => {
      const store = new TenantStore(state, { ...env, DEFAULT_KEY_POOL_SIZE: "2" });
      const where = adminCall("accounts", s.id);
      expect((await store.createCsr(where, parseCsrInput(csrBody({ key_type: "p256v1" })))).ok).toBe(true);
      expect(store.getKeyPool(where)).toEqual({ ok: true, value: { key_type: "rsa2048", size: 2, available: 0, started: false } });
      // The write's alarm reports the scope's metrics, and asks for no other run: no pool to fill.
      await state.storage.deleteAlarm();
      await store.alarm();
      expect(await state.storage.getAlarm()).toBeNull();

      expect((await store.createCsr(where, parseCsrInput(csrBody({ key_type: "rsa2048" })))).ok).toBe(true);
      expect(store.getKeyPool(where)).toMatchObject({ value: { size: 2, available: 0, started: true } });
      expect(await state.storage.getAlarm()).not.toBeNull();

      // Runs are driven by hand below: the object's own alarm would race them.
      await state.storage.deleteAlarm();
      // A request in flight: the alarm generates nothing and comes back later.
      begin();
      try {
        await store.alarm();
        expect(store.getKeyPool(where)).toMatchObject({ value: { available: 0 } });
        expect(await state.storage.getAlarm()).not.toBeNull();
      } finally {
        end();
        await state.storage.deleteAlarm();
      }
      await sleep(QUIET_MS + 50);
      await store.alarm();
      // One key per run, and another run asked for.
      expect(store.getKeyPool(where)).toMatchObject({ value: { available: 1 } });
      expect(await state.storage.getAlarm()).not.toBeNull();
      await state.storage.deleteAlarm();
    });
  });

  it("key-encryption-key rotation rewraps pooled keys, and the pool's self-check covers them", async () => {
    const s = await scope("zones");
    await setPool("zones", s.id, 2);
    await untilAvailable("zones", s.id, 2);
    const where = adminCall("zones", s.id);
    const verified = await call<{ checked: number; ok: boolean; failed: string[] }>("POST", `${poolPath("zones", s.id)}/verify`, { headers: adminHeaders });
    expect(verified.body.result).toEqual({ checked: 2, ok: true, failed: [], failures: [] });

    const newKey = `k7:${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const rotated = new TenantStore(state, { ...env, KEY_ENCRYPTION_KEYS: `${newKey},${env.KEY_ENCRYPTION_KEYS}` });
      expect(await rotated.rewrapKeys(where, 10, "")).toMatchObject({ ok: true, value: { kek_id: "k7", pooled_rewrapped: 2, remaining: 0 } });
      expect(await rotated.verifyKeyPool(where)).toEqual({ ok: true, value: { checked: 2, ok: true, failed: [], failures: [] } });
      // Without the new key, the pooled keys no longer unwrap: the self-check says so.
      const stale = new TenantStore(state, env);
      const check = await stale.verifyKeyPool(where);
      expect(check).toMatchObject({ ok: true, value: { checked: 2, ok: false } });
    });
    expect((await poolRows("zones", s.id)).map((r) => r.kek_id)).toEqual(["k7", "k7"]);
  });

  it("a smaller size destroys the newest surplus keys, 0 turns the pool off; bad sizes are 1430 (type) or 1421 (range) and write nothing", async () => {
    const s = await scope("zones");
    await setPool("zones", s.id, 3);
    await untilAvailable("zones", s.id, 3);
    const rows = await poolRows("zones", s.id);
    expect((await setPool("zones", s.id, 1)).body.result).toMatchObject({ size: 1, available: 1 });
    expect((await poolRows("zones", s.id)).map((r) => r.id)).toEqual([rows[0]!.id]);
    expect((await setPool("zones", s.id, 0)).body.result).toMatchObject({ size: 0, available: 0 });
    // An rsa2048 create with the pool off generates its key.
    expect((await s.create(csrBody({ key_type: "rsa2048" }))).status).toBe(201);
    for (const size of [1.5, "2", null]) expectError(await setPool("zones", s.id, size as number), 400, 1430);
    for (const size of [-1, 65]) {
      const refused = await setPool("zones", s.id, size);
      expectError(refused, 400, 1421);
      expect(refused.body.errors[0]!.message).toContain("/size must be an integer from 0 to 64");
    }
    expectError(await call("PUT", poolPath("zones", s.id), { headers: adminHeaders, body: [1] }), 400, 1400);
    expectError(await call("PUT", poolPath("zones", s.id), { token: s.token, body: { size: 1 } }), 403, 10000);
    const updates = (await trail(s)).filter((e) => e.resource.type === "key_pool" && e.action.type === "update");
    expect(updates.map((e) => e.metadata)).toEqual([
      { key_type: "rsa2048", size: 3, previous: 0, destroyed: [] },
      { key_type: "rsa2048", size: 1, previous: 3, destroyed: [rows[2]!.id, rows[1]!.id] },
      { key_type: "rsa2048", size: 0, previous: 1, destroyed: [rows[0]!.id] },
    ]);
  });

  it("a pooled wrap moved to another pool key's id, or to another scope, does not unwrap", async () => {
    const s = await scope("zones");
    await setPool("zones", s.id, 2);
    await untilAvailable("zones", s.id, 2);
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      // Swap the two ids: each wrap now sits under the other's id.
      const [a, b] = state.storage.sql.exec("SELECT seq, id FROM key_pool ORDER BY seq").toArray() as Array<{ seq: number; id: string }>;
      state.storage.sql.exec("UPDATE key_pool SET id = 'x' WHERE seq = ?", a!.seq);
      state.storage.sql.exec("UPDATE key_pool SET id = ? WHERE seq = ?", a!.id, b!.seq);
      state.storage.sql.exec("UPDATE key_pool SET id = ? WHERE seq = ?", b!.id, a!.seq);
    });
    const damaged = (await poolRows("zones", s.id)).map((r) => r.id);
    // A create removes the keys that do not unwrap (not retried by every
    // create), and generates its own.
    const made = await s.create(csrBody({ key_type: "rsa2048" }));
    expect(made.status).toBe(201);
    const after = await poolRows("zones", s.id);
    expect(after.map((r) => r.spki)).not.toContain(spkiOf(made.body.result.csr).toUpperCase());
    for (const id of damaged) expect(after.map((r) => r.id)).not.toContain(id);
    const removed = (await trail(s)).filter((e) => e.resource.type === "pooled_key" && e.action.type === "delete");
    expect(removed.map((e) => e.resource.id).sort()).toEqual([...damaged].sort());
    expect(removed.every((e) => e.action.result === false && e.actor.id === "key-pool" && /1506/.test(e.action.info ?? ""))).toBe(true);
  });

  it("the self-check and the rewrap remove pooled keys that do not unwrap, so they neither count as remaining nor hold their KEK (review M5)", async () => {
    const s = await scope("zones");
    await setPool("zones", s.id, 2);
    await untilAvailable("zones", s.id, 2);
    const ids = await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const [a, b] = state.storage.sql.exec("SELECT seq, id FROM key_pool ORDER BY seq").toArray() as Array<{ seq: number; id: string }>;
      state.storage.sql.exec("UPDATE key_pool SET id = 'x' WHERE seq = ?", a!.seq);
      state.storage.sql.exec("UPDATE key_pool SET id = ? WHERE seq = ?", a!.id, b!.seq);
      state.storage.sql.exec("UPDATE key_pool SET id = ? WHERE seq = ?", b!.id, a!.seq);
      const check = await new TenantStore(state, env).verifyKeyPool(adminCall("zones", s.id));
      expect(check).toMatchObject({ ok: true, value: { checked: 2, ok: false, failed: [b!.id, a!.id] } });
      return [a!.id, b!.id];
    });
    const left = (await poolRows("zones", s.id)).map((r) => r.id);
    for (const id of ids) expect(left).not.toContain(id);
    const removed = (await trail(s)).filter((e) => e.resource.type === "pooled_key" && e.action.type === "delete");
    expect(removed.map((e) => e.resource.id).sort()).toEqual([...ids].sort());
    expect(removed.every((e) => e.actor.id === "admin")).toBe(true);
  });
});
