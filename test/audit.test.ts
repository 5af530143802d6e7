import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseCsrInput } from "../src/pki/csr-input";
import { type Keyring, loadKeyring } from "../src/pki/keyring";
import { type ChainFields, auditId, entryHash, seqOfAuditId } from "../src/tenant/audit-chain";
import type { AuditLogRecord } from "../src/tenant/audit-records";
import { AuditTrail } from "../src/tenant/audit-trail";
import { Counters } from "../src/tenant/counters";
import { Sql } from "../src/storage/sql";
import { openStorage } from "../src/storage/storage";
import { TENANT_MIGRATIONS } from "../src/tenant/schema";
import { TenantStore } from "../src/tenant/tenant-store";
import { csrStoreOn } from "./modules";
import { type Kind, adminCall, adminHeaders, call, csrBody, expectError, scope, scopeId, tenantStub } from "./shared";
import { createCa, issueLeaf } from "./test-ca";
import { LEGACY_EMAIL, LEGACY_TEST_KEY, authHeaders, claimsFor, mintToken } from "./tokens";

type Scope = Awaited<ReturnType<typeof scope>>;

const auditPath = (kind: Kind, id: string) => `/client/v4/${kind}/${id}/audit_logs`;

/** The scope's audit log through the API, as the SDK reads it. */
function trail(s: { kind: Kind; id: string; token: string }, query = "", token = s.token) {
  return call<AuditLogRecord[]>("GET", `${auditPath(s.kind, s.id)}${query}`, { token });
}

const verifyChain = (kind: Kind, id: string) =>
  call<Record<string, unknown>>("POST", `/admin/v1/${kind}/${id}/audit/verify`, { headers: adminHeaders });

const setEntitlement = (kind: Kind, id: string, body: unknown, headers: Record<string, string> = adminHeaders) =>
  call("PUT", `/admin/v1/${kind}/${id}/entitlement`, { body, headers });

/** The token's jti: what the trail names as its actor. */
const jti = (token: string) => (JSON.parse(atob(token.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/"))) as { jti: string }).jti;

async function exportLines(kind: Kind, id: string, after?: string): Promise<Array<AuditLogRecord & { chain: Record<string, string | number> }>> {
  const response = await (await import("cloudflare:workers")).exports.default.fetch(
    new Request(`https://api.test/admin/v1/${kind}/${id}/audit/export${after ? `?after=${after}` : ""}`, { headers: adminHeaders }),
  );
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^application\/x-ndjson/);
  const text = new TextDecoder().decode(await response.arrayBuffer());
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

/** Every stored row of the scope's trail, blobs as hex. */
function rows(kind: Kind, id: string) {
  return runInDurableObject(tenantStub(kind, id), (_, state) =>
    state.storage.sql.exec("SELECT *, hex(prev_hash) AS prev_hex, hex(hash) AS hash_hex FROM audit_log ORDER BY seq").toArray(),
  );
}

describe("what the audit trail records", () => {
  it("a CSR's create and delete, each once, with the token as actor and the CSR as resource; reads and bad bodies add nothing", async () => {
    const s = await scope("accounts");
    const created = await call<{ id: string }>("POST", s.base, {
      token: s.token,
      body: csrBody({ key_type: "p256v1", name: "shop" }),
      headers: { "cf-connecting-ip": "203.0.113.7" },
    });
    expect(created.status).toBe(201);
    const csrId = created.body.result.id;
    await s.get(csrId);
    await s.list();
    expectError(await s.create(csrBody({ country: "" })), 400, 1405);

    let page = await trail(s);
    expect(page.status).toBe(200);
    expect(page.body.result).toHaveLength(1);
    const entry = page.body.result[0]!;
    expect(entry).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      action: { type: "create", result: true },
      actor: { id: jti(s.token), type: "user", ip: "203.0.113.7" },
      interface: "API",
      metadata: { key_type: "p256v1", common_name: "app.customer-one.com", sans: ["app.customer-one.com", "www.customer-one.com"], name: "shop", key_source: "generated" },
      owner: { id: s.id },
      resource: { id: csrId, type: "custom_csr" },
      when: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
    });

    expect((await s.remove(csrId)).status).toBe(200);
    page = await trail(s);
    expect(page.body.result.map((e) => [e.action.type, e.resource.id])).toEqual([
      ["delete", csrId],
      ["create", csrId],
    ]);
    const { key_source: _, ...named } = entry.metadata;
    expect(page.body.result[0]!.metadata).toEqual(named);
    expect(page.body.result[0]!.actor).toEqual({ id: jti(s.token), type: "user" });
    expect(page.body.result_info).toEqual({ count: 2, page: 1, per_page: 100, total_count: 2, total_pages: 1 });
  });

  it("a global API key is recorded by its email; a CF-Connecting-IP that is not an address is left out", async () => {
    const legacy = { "x-auth-email": LEGACY_EMAIL, "x-auth-key": LEGACY_TEST_KEY };
    const base = "/client/v4/accounts/legacyacct";
    const made = await call<{ id: string }>("POST", `${base}/custom_csrs`, {
      body: csrBody({ key_type: "p256v1" }),
      headers: { ...legacy, "cf-connecting-ip": "<script>" },
    });
    expect(made.status).toBe(201);
    const newest = await call<AuditLogRecord[]>("GET", `${base}/audit_logs?per_page=1`, { headers: legacy });
    expect(newest.body.result[0]).toMatchObject({
      actor: { id: LEGACY_EMAIL, type: "user", email: LEGACY_EMAIL },
      resource: { type: "custom_csr", id: made.body.result.id },
    });
    expect(newest.body.result[0]!.actor.ip).toBeUndefined();
    // actor.email matches whatever the case.
    const byEmail = await call<AuditLogRecord[]>("GET", `${base}/audit_logs?actor.email=${encodeURIComponent(LEGACY_EMAIL.toUpperCase())}`, { headers: legacy });
    expect(byEmail.body.result.map((e) => e.id)).toContain(newest.body.result[0]!.id);
  });

  it("certificate uploads and deletes; a certificate for another key is a refused create", async () => {
    const s = await scope("zones");
    const ca = await createCa("p256v1", "Audit Test CA");
    const mine = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const other = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const certificates = `/client/v4/zones/${s.id}/custom_certificates`;

    const foreign = await call("POST", certificates, { token: s.token, body: { certificate: await issueLeaf(ca, other.csr), custom_csr_id: mine.id } });
    expectError(foreign, 400, 1441);
    const uploaded = await call<{ id: string }>("POST", certificates, {
      token: s.token,
      body: { certificate: await issueLeaf(ca, mine.csr), custom_csr_id: mine.id },
    });
    expect(uploaded.status).toBe(200);
    const certId = uploaded.body.result.id;
    expect((await call("DELETE", `${certificates}/${certId}`, { token: s.token })).status).toBe(200);

    const entries = (await trail(s, "?direction=asc")).body.result;
    expect(entries.map((e) => [e.action.type, e.action.result, e.resource.type, e.resource.id ?? null])).toEqual([
      ["create", true, "custom_csr", mine.id],
      ["create", true, "custom_csr", other.id],
      ["create", false, "custom_certificate", null],
      ["create", true, "custom_certificate", certId],
      ["delete", true, "custom_certificate", certId],
    ]);
    expect(entries[2]!.action.info).toMatch(/another key \(1441\)/);
    expect(entries[2]!.metadata).toEqual({ custom_csr_id: mine.id });
    expect(entries[3]!.metadata).toMatchObject({
      custom_csr_id: mine.id,
      hosts: ["app.customer-one.com", "www.customer-one.com"],
      issuer: "Audit Test CA",
      bundle_method: "ubiquitous",
    });
    expect(entries[4]!.metadata).toEqual({ custom_csr_id: mine.id, hosts: ["app.customer-one.com", "www.customer-one.com"] });
  });

  it("refusals that reached the tenant (1404, 1403, 1420) are entries with a failed result, and change nothing else", async () => {
    const s = await scope("zones");
    const ca = await createCa("p256v1");
    await setEntitlement("zones", s.id, { granted: false, quota: 5 });
    expectError(await s.create(csrBody({ key_type: "p256v1" })), 403, 1404);
    // Not entitled and a bad body: entitlement is decided first, and recorded.
    expectError(await s.create(csrBody({ country: "" })), 403, 1404);
    await setEntitlement("zones", s.id, { granted: true, quota: 1 });
    const csr = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    expectError(await s.create(csrBody({ key_type: "p256v1" })), 403, 1403);
    await call("POST", `/client/v4/zones/${s.id}/custom_certificates`, {
      token: s.token,
      body: { certificate: await issueLeaf(ca, csr.csr), custom_csr_id: csr.id },
    });
    expectError(await s.remove(csr.id), 409, 1420);

    const entries = (await trail(s, "?direction=asc")).body.result;
    expect(entries.map((e) => [e.action.type, e.resource.type, e.action.result, e.action.info ?? null])).toEqual([
      ["update", "entitlement", true, null],
      ["create", "custom_csr", false, "not entitled to generate CSRs (1404)"],
      ["create", "custom_csr", false, "not entitled to generate CSRs (1404)"],
      ["update", "entitlement", true, null],
      ["create", "custom_csr", true, null],
      ["create", "custom_csr", false, "quota used up (1403)"],
      ["create", "custom_certificate", true, null],
      ["delete", "custom_csr", false, "used by a custom certificate (1420)"],
    ]);
    expect(entries[1]!.metadata).toMatchObject({ key_type: "p256v1" });
    expect(entries[2]!.metadata).toEqual({});
    expect(entries[7]!.resource.id).toBe(csr.id);
    expect((await s.list()).body.result_info?.total_count).toBe(1);
  });

  it("entitlement changes name the operator, the previous and the new values", async () => {
    const id = scopeId();
    expect((await call("PUT", `/admin/v1/accounts/${id}/entitlement`, { body: { granted: true, quota: 3 }, headers: { ...adminHeaders, "cf-connecting-ip": "2001:db8::1" } })).status).toBe(200);
    await setEntitlement("accounts", id, { granted: false, quota: 0 });
    const token = await mintToken({ accounts: [id], readOnly: true });
    const entries = (await trail({ kind: "accounts", id, token }, "?direction=asc")).body.result;
    expect(entries.map((e) => ({ action: e.action, actor: e.actor, resource: e.resource, metadata: e.metadata }))).toEqual([
      {
        action: { type: "update", result: true },
        actor: { id: "admin", type: "admin", ip: "2001:db8::1" },
        resource: { type: "entitlement" },
        metadata: { granted: true, quota: 3, previous: { granted: true, quota: 1000000 } },
      },
      {
        action: { type: "update", result: true },
        actor: { id: "admin", type: "admin" },
        resource: { type: "entitlement" },
        metadata: { granted: false, quota: 0, previous: { granted: true, quota: 3 } },
      },
    ]);
  });

  it("self-checks and rewraps are recorded with their outcome and key-encryption key ids", async () => {
    const s = await scope("zones");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await s.create(csrBody({ key_type: "p256v1" }))).body.result.id);
    expect((await call("POST", `/admin/v1/zones/${s.id}/custom_csrs/${ids[0]}/verify`, { headers: adminHeaders })).body.result).toMatchObject({ ok: true });

    const newKey = `k9:${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      // A redeploy with a new current KEK: rewrap in two batches.
      const rotated = new TenantStore(state, { ...env, KEY_ENCRYPTION_KEYS: `${newKey},${env.KEY_ENCRYPTION_KEYS}` });
      const first = await rotated.rewrapKeys(adminCall("zones", s.id), 2, "");
      expect(first).toMatchObject({ ok: true, value: { rewrapped: 2, remaining: 1 } });
      const second = await rotated.rewrapKeys(adminCall("zones", s.id), 2, first.ok ? first.value.next_after! : "");
      expect(second).toMatchObject({ ok: true, value: { rewrapped: 1, remaining: 0, next_after: null } });
      // Nothing left: a call that finds nothing to do records nothing.
      expect(await rotated.rewrapKeys(adminCall("zones", s.id), 2, "")).toMatchObject({ ok: true, value: { rewrapped: 0 } });
      // A KEK that is gone: the self-check fails, and says so.
      const lost = new TenantStore(state, { ...env, KEY_ENCRYPTION_KEYS: env.KEY_ENCRYPTION_KEYS });
      expect(await lost.verifyCsrKey(adminCall("zones", s.id), ids[1]!)).toMatchObject({ ok: false, reason: "key_encryption_key_missing", kek_id: "k9" });
    });

    const entries = (await trail(s, "?direction=asc")).body.result.slice(3);
    expect(entries.map((e) => ({ action: e.action, resource: e.resource, metadata: e.metadata, actor: e.actor.type }))).toEqual([
      { action: { type: "verify", result: true }, resource: { type: "private_key", id: ids[0] }, metadata: { kek_id: "test1" }, actor: "admin" },
      {
        action: { type: "rewrap", result: true },
        resource: { type: "private_key" },
        metadata: { kek_id: "k9", from_kek_ids: ["test1"], rewrapped: 2, failed: [], failures: [], remaining: 1 },
        actor: "admin",
      },
      {
        action: { type: "rewrap", result: true },
        resource: { type: "private_key" },
        metadata: { kek_id: "k9", from_kek_ids: ["test1"], rewrapped: 1, failed: [], failures: [], remaining: 0 },
        actor: "admin",
      },
      {
        action: { type: "verify", result: false, info: "key-encryption key k9 is not configured (1501)" },
        resource: { type: "private_key", id: ids[1] },
        metadata: { kek_id: "k9" },
        actor: "admin",
      },
    ]);
  });
});

describe("a change and its entry are one transaction", () => {
  /** The scope's modules on its real storage, with one dependency made to fail at the last step. */
  function modules(state: DurableObjectState, failAt: "counter" | "audit", keyring: Keyring) {
    const storage = openStorage(state, TENANT_MIGRATIONS);
    const { sql } = storage;
    class FailingAudit extends AuditTrail {
      override record(): void {
        throw new Error("audit write failed");
      }
    }
    // The audit entry's own counter is bumped right after its row is inserted.
    class FailingCounters extends Counters {
      override bump(name: string, by: number): void {
        if (name.startsWith("audit:")) throw new Error("counter write failed");
        super.bump(name as "csrs", by);
      }
    }
    const counters = failAt === "counter" ? new FailingCounters(sql) : new Counters(sql);
    const audit = failAt === "audit" ? new FailingAudit(sql, counters) : new AuditTrail(sql, counters);
    audit.useKeyring(keyring);
    return csrStoreOn(storage, { audit, counters });
  }

  const counts = (state: DurableObjectState) =>
    state.storage.sql.exec("SELECT (SELECT count(*) FROM csrs) AS csrs, (SELECT count(*) FROM wrapped_keys) AS keys, (SELECT count(*) FROM audit_log) AS entries").one();

  it("a create that fails after its entry was written leaves neither; one whose entry fails leaves no CSR", async () => {
    const s = await scope("zones");
    await s.create(csrBody({ key_type: "p256v1" }));
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const before = counts(state);
      expect(before).toEqual({ csrs: 1, keys: 1, entries: 1 });
      const where = adminCall("zones", s.id);
      for (const failAt of ["counter", "audit"] as const) {
        const input = parseCsrInput(csrBody({ key_type: "p256v1" }));
        if (!input.ok) throw new Error("the body is valid");
        const keyring = await loadKeyring(env.KEY_ENCRYPTION_KEYS);
        await expect(modules(state, failAt, keyring).create(where, `zones:${s.id}`, input.value, keyring)).rejects.toThrow(/write failed/);
        expect(counts(state)).toEqual(before);
      }
    });
    expect((await verifyChain("zones", s.id)).body.result).toMatchObject({ ok: true, entries: 1 });
  });
});

describe("reading the trail", () => {
  async function scopeWithEntries(n: number): Promise<Scope> {
    const s = await scope("accounts");
    for (let i = 0; i < n; i++) await setEntitlement("accounts", s.id, { granted: true, quota: 100 + i });
    return s;
  }

  it("pages like Cloudflare's list: newest first, per_page, direction, and a page past the end is empty", async () => {
    const s = await scopeWithEntries(7);
    const all = (await trail(s, "?direction=asc")).body.result;
    expect(all.map((e) => e.metadata.quota)).toEqual([100, 101, 102, 103, 104, 105, 106]);
    // Ids sort in the chain's order.
    expect([...all.map((e) => e.id)].sort()).toEqual(all.map((e) => e.id));
    const page2 = await trail(s, "?per_page=3&page=2");
    expect(page2.body.result.map((e) => e.metadata.quota)).toEqual([103, 102, 101]);
    expect(page2.body.result_info).toEqual({ count: 3, page: 2, per_page: 3, total_count: 7, total_pages: 3 });
    const last = await trail(s, "?per_page=3&page=3&direction=asc");
    expect(last.body.result.map((e) => e.metadata.quota)).toEqual([106]);
    const past = await trail(s, "?per_page=3&page=4");
    expect(past.body.result).toEqual([]);
    expect(past.body.result_info).toEqual({ count: 0, page: 4, per_page: 3, total_count: 7, total_pages: 3 });
  });

  it("filters by action.type, actor.email, since (inclusive), before (exclusive) and id", async () => {
    const s = await scope("accounts");
    await setEntitlement("accounts", s.id, { granted: true, quota: 50 });
    const made = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    await s.remove(made.id);
    const all = (await trail(s, "?direction=asc")).body.result;
    expect(all.map((e) => e.action.type)).toEqual(["update", "create", "delete"]);

    expect((await trail(s, "?action.type=create")).body.result.map((e) => e.id)).toEqual([all[1]!.id]);
    const creates = await trail(s, "?action.type=create");
    expect(creates.body.result_info).toMatchObject({ count: 1, total_count: 1 });
    expect((await trail(s, "?action.type=purge")).body.result).toEqual([]);
    expect((await trail(s, "?actor.email=nobody%40example.net")).body.result).toEqual([]);
    expect((await trail(s, `?id=${all[2]!.id}`)).body.result).toEqual([all[2]]);
    expect((await trail(s, `?id=${all[2]!.id.toUpperCase()}`)).body.result).toEqual([all[2]]);
    // A well-formed id that is not an entry of this trail finds nothing.
    expect((await trail(s, "?id=00000000-0000-7000-8000-000000000001")).body.result).toEqual([]);

    const second = all[1]!.when;
    expect((await trail(s, `?since=${second}&direction=asc`)).body.result.map((e) => e.id)).toEqual(
      all.filter((e) => e.when >= second).map((e) => e.id),
    );
    expect((await trail(s, `?before=${second}`)).body.result.map((e) => e.id)).toEqual(
      all.filter((e) => e.when < second).map((e) => e.id).reverse(),
    );
    const today = new Date().toISOString().slice(0, 10);
    expect((await trail(s, `?since=${today}`)).body.result).toHaveLength(3);
    expect((await trail(s, `?before=${today}`)).body.result).toHaveLength(0);
    expect((await trail(s, "?since=2000-01-01T00:00:00%2B02:00")).body.result).toHaveLength(3);
  });

  it("pages a filter from either end with the same entries as the whole trail, in both directions", async () => {
    const s = await scope("zones");
    for (let i = 0; i < 23; i++) {
      if (i % 3 === 0) await s.create(csrBody({ key_type: "p256v1" }));
      else await setEntitlement("zones", s.id, { granted: true, quota: 500 + i });
    }
    const all = (await trail(s, "?per_page=100")).body.result;
    expect(all).toHaveLength(23);
    for (const direction of ["desc", "asc"]) {
      const expected = all.filter((e) => e.action.type === "update");
      if (direction === "asc") expected.reverse();
      const seen: string[] = [];
      for (let page = 1; page <= 4; page++) {
        const reply = await trail(s, `?action.type=update&per_page=4&page=${page}&direction=${direction}`);
        expect(reply.body.result_info).toMatchObject({ total_count: 15, total_pages: 4, page });
        seen.push(...reply.body.result.map((e) => e.id));
      }
      expect(seen).toEqual(expected.map((e) => e.id));
      // Within a time window the total is counted over the index range, and agrees.
      const cut = all[0]!.when;
      const inWindow = expected.filter((e) => e.when < cut);
      expect(inWindow.length).toBeLessThan(15);
      const windowed = await trail(s, `?action.type=update&before=${cut}&per_page=100&direction=${direction}`);
      expect(windowed.body.result.map((e) => e.id)).toEqual(inWindow.map((e) => e.id));
      expect(windowed.body.result_info?.total_count).toBe(inWindow.length);
    }
  });

  it("refuses malformed queries (1435, 1480) and the filters it does not implement, rather than ignoring them", async () => {
    const s = await scopeWithEntries(1);
    for (const query of ["?page=0", "?per_page=1001", "?per_page=0", "?direction=up", "?since=yesterday", "?before=2026-13-45", "?page=1&page=2", "?action.type=Create!", "?actor.ip=10.0.0.1", "?zone.name=example.org", "?export=true", "?hide_user_logs=true"]) {
      const reply = await trail(s, query);
      expectError(reply, 400, 1435);
    }
    expectError(await trail(s, "?id=not-an-id"), 400, 1480);
    expect((await trail(s, "?unknown=1")).status).toBe(200);
  });

  it("is readable with SSL and Certificates Read or Account Settings, and only in the token's scopes", async () => {
    const s = await scopeWithEntries(2);
    const read = await mintToken({ accounts: [s.id], readOnly: true });
    expect((await trail(s, "", read)).body.result).toHaveLength(2);
    const settings = await mintToken({
      claims: { ...claimsFor({ accounts: [s.id] }), policies: [{ effect: "allow", resources: { [`com.cloudflare.api.account.${s.id}`]: "*" }, permission_groups: [{ name: "Account Settings Read" }] }] },
    });
    expect((await trail(s, "", settings)).body.result).toHaveLength(2);
    // Account Settings reads the trail, not the CSRs.
    expectError(await call("GET", s.base, { token: settings }), 403, 10000);
    expectError(await trail(s, "", await mintToken({ accounts: [scopeId()] })), 403, 10000);
    expectError(await call("GET", auditPath("accounts", s.id)), 400, 1402);
    expectError(await call("POST", auditPath("accounts", s.id), { token: s.token, body: {} }), 405, 7001);
    // The zone trail is answered under /zones too.
    const z = await scope("zones");
    await z.create(csrBody({ key_type: "p256v1" }));
    expect((await trail(z)).body.result).toHaveLength(1);
  });

  it("each filter is served by an index within the seq range", async () => {
    const s = await scopeWithEntries(3);
    await runInDurableObject(tenantStub("accounts", s.id), (_, state) => {
      const plan = (statement: string, ...params: SqlStorageValue[]) =>
        state.storage.sql.exec(`EXPLAIN QUERY PLAN ${statement}`, ...params).toArray().map((r) => String(r.detail)).join("; ");
      expect(plan("SELECT * FROM audit_log WHERE seq BETWEEN ? AND ? ORDER BY seq DESC", 1, 2)).toMatch(/USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/);
      expect(plan("SELECT * FROM audit_log WHERE action = ? AND seq BETWEEN ? AND ? ORDER BY seq DESC LIMIT 5 OFFSET 0", "create", 1, 9)).toMatch(/USING INDEX audit_by_action \(action=\? AND seq>\? AND seq<\?\)/);
      expect(plan("SELECT * FROM audit_log WHERE actor_email = ? COLLATE NOCASE AND seq BETWEEN ? AND ? ORDER BY seq DESC", "a@b.c", 1, 9)).toMatch(/USING INDEX audit_by_actor_email/);
      for (const p of [plan("SELECT count(*) FROM audit_log WHERE action = ? AND seq BETWEEN ? AND ?", "x", 1, 2)]) expect(p).toMatch(/COVERING INDEX audit_by_action/);
    });
  });
});

describe("tamper evidence", () => {
  const tampered = async (mutate: (sql: SqlStorage) => void, n = 5) => {
    const s = await scope("accounts");
    for (let i = 0; i < n; i++) await setEntitlement("accounts", s.id, { granted: true, quota: i });
    expect((await verifyChain("accounts", s.id)).body.result).toMatchObject({ ok: true, entries: n });
    await runInDurableObject(tenantStub("accounts", s.id), (_, state) => mutate(state.storage.sql));
    return { s, result: (await verifyChain("accounts", s.id)).body.result };
  };

  it("an intact chain verifies; its head is the stats head; each hash is SHA-256 of the documented canonical bytes", async () => {
    const s = await scope("zones");
    await setEntitlement("zones", s.id, { granted: true, quota: 10 });
    const made = (await call<{ id: string }>("POST", s.base, { token: s.token, body: csrBody({ key_type: "p256v1" }), headers: { "cf-connecting-ip": "198.51.100.4" } })).body.result;
    await s.remove(made.id);
    const verified = (await verifyChain("zones", s.id)).body.result;
    const stats = (await call<{ audit: { entries: number; head: string } }>("GET", `/admin/v1/zones/${s.id}/stats`, { headers: adminHeaders })).body.result;
    expect(verified).toEqual({ ok: true, entries: 3, head: stats.audit.head, keyed_from: 1 });

    // An outside verifier, with WebCrypto, the export and the operator's KEK (docs/audit.md).
    const hexOf = (bytes: ArrayBuffer) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
    const [kekId, kekBase64] = env.KEY_ENCRYPTION_KEYS.split(":") as [string, string];
    const kek = await crypto.subtle.importKey("raw", Uint8Array.from(atob(kekBase64), (c) => c.charCodeAt(0)), "HKDF", false, ["deriveBits"]);
    const root = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode("custom-csr-integrity:v1") }, kek, 256);
    const hmac = async (key: ArrayBuffer, text: string) =>
      crypto.subtle.sign("HMAC", await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]), new TextEncoder().encode(text));
    const macKey = await hmac(root, `audit:zones:${s.id}`);
    let prev = "0".repeat(64);
    for (const line of await exportLines("zones", s.id)) {
      const canonical = JSON.stringify([
        "custom-csr-audit:v1",
        `zones:${s.id}`,
        line.chain.seq,
        line.when,
        line.action.type,
        line.action.result ? 1 : 0,
        line.action.info ?? null,
        line.actor.type,
        line.actor.id,
        line.actor.email ?? null,
        line.actor.ip ?? null,
        line.resource.type,
        line.resource.id ?? null,
        line.chain.metadata,
        prev,
      ]);
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical)));
      const hashHex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      expect(line.chain.prev_hash).toBe(prev);
      expect(line.chain.hash).toBe(hashHex);
      expect(JSON.parse(String(line.chain.metadata))).toEqual(line.metadata);
      expect(line.chain.mac_kek).toBe(kekId);
      expect(line.chain.mac).toBe(hexOf(await hmac(macKey, JSON.stringify(["custom-csr-audit-mac:v1", `zones:${s.id}`, line.chain.seq, hashHex]))));
      prev = hashHex;
    }
    expect(prev).toBe(stats.audit.head);
  });

  it("an edited entry fails at exactly that entry", async () => {
    const { result } = await tampered((sql) => sql.exec(`UPDATE audit_log SET metadata = '{"granted":true,"quota":9999}' WHERE seq = 3`));
    expect(result).toMatchObject({ ok: false, entries_checked: 2, broken_at: { position: 3, reason: "hash does not match the entry's content" } });
    const again = await tampered((sql) => sql.exec(`UPDATE audit_log SET actor_id = 'someone-else' WHERE seq = 2`));
    expect(again.result).toMatchObject({ ok: false, broken_at: { position: 2 } });
    // The first entry's content is checked as every other's (its predecessor is the genesis value).
    const first = await tampered((sql) => sql.exec(`UPDATE audit_log SET metadata = '{"granted":false,"quota":0}' WHERE seq = 1`));
    expect(first.result).toMatchObject({ ok: false, entries_checked: 0, broken_at: { position: 1, reason: "hash does not match the entry's content" } });
    const firstLink = await tampered((sql) => sql.exec(`UPDATE audit_log SET prev_hash = zeroblob(31) || x'01' WHERE seq = 1`));
    expect(firstLink.result).toMatchObject({ ok: false, entries_checked: 0, broken_at: { position: 1 } });
  });

  it("an edited entry whose hash was recomputed fails at that entry: its MAC needs the key", async () => {
    let scopeName = "";
    const { result } = await tampered((sql) => {
      scopeName = String(sql.exec(`SELECT value FROM meta WHERE key = 'scope'`).one().value);
      const row = sql.exec(`SELECT * FROM audit_log WHERE seq = 4`).one() as unknown as ChainFields & { prev_hash: ArrayBuffer };
      const forged = { ...row, metadata: '{"granted":true,"quota":424242}' };
      sql.exec(`UPDATE audit_log SET metadata = ?, hash = ? WHERE seq = 4`, forged.metadata, entryHash(scopeName, forged, new Uint8Array(row.prev_hash)).slice().buffer);
    });
    expect(result).toMatchObject({ ok: false, entries_checked: 3, broken_at: { position: 4, reason: expect.stringMatching(/MAC does not match/) } });
    // A hash that was merely overwritten fails at the entry itself.
    const zeroed = await tampered((sql) => sql.exec(`UPDATE audit_log SET hash = zeroblob(32) WHERE seq = 4`));
    expect(zeroed.result).toMatchObject({ ok: false, broken_at: { position: 4, reason: "hash does not match the entry's content" } });
  });

  it("rewriting every entry from an edited one onward, hashes and links recomputed, fails at the first one rewritten", async () => {
    for (const from of [1, 3]) {
      const { result } = await tampered((sql) => {
        const scopeName = String(sql.exec(`SELECT value FROM meta WHERE key = 'scope'`).one().value);
        const rows = sql.exec(`SELECT * FROM audit_log ORDER BY seq`).toArray() as unknown as Array<ChainFields & { prev_hash: ArrayBuffer; hash: ArrayBuffer }>;
        let prev: Uint8Array = from === 1 ? new Uint8Array(32) : new Uint8Array(rows[from - 2]!.hash);
        for (const row of rows.slice(from - 1)) {
          const forged = row.seq === from ? { ...row, metadata: '{"granted":true,"quota":31337}' } : row;
          const hash = entryHash(scopeName, forged, prev);
          sql.exec(`UPDATE audit_log SET metadata = ?, prev_hash = ?, hash = ? WHERE seq = ?`, forged.metadata, prev.slice().buffer, hash.slice().buffer, row.seq);
          prev = hash;
        }
      });
      expect(result).toMatchObject({ ok: false, entries_checked: from - 1, broken_at: { position: from, reason: expect.stringMatching(/MAC does not match/) } });
    }
  });

  it("a MAC removed from an entry after keyed ones, or from all of them, does not pass unnoticed", async () => {
    const one = await tampered((sql) => sql.exec(`UPDATE audit_log SET mac = NULL, mac_kek = NULL WHERE seq = 4`));
    expect(one.result).toMatchObject({ ok: false, broken_at: { position: 4, reason: "the entry has no MAC, after keyed entries" } });
    // All stripped: the chain is whole but keyed nowhere, which verify reports (keyed_from null).
    const all = await tampered((sql) => sql.exec(`UPDATE audit_log SET mac = NULL, mac_kek = NULL`));
    expect(all.result).toMatchObject({ ok: true, keyed_from: null });
  });

  it("a trail from before keying verifies as unkeyed; its next entry is keyed and covers every entry before it", async () => {
    const s = await scope("accounts");
    for (let i = 0; i < 3; i++) await setEntitlement("accounts", s.id, { granted: true, quota: i });
    // As schema version 8 left it: no MACs.
    await runInDurableObject(tenantStub("accounts", s.id), (_, state) => state.storage.sql.exec(`UPDATE audit_log SET mac = NULL, mac_kek = NULL`));
    expect((await verifyChain("accounts", s.id)).body.result).toMatchObject({ ok: true, entries: 3, keyed_from: null });
    await setEntitlement("accounts", s.id, { granted: true, quota: 99 });
    // The change is preceded by an entry of its own, saying that the three before it carry no MAC.
    expect((await verifyChain("accounts", s.id)).body.result).toMatchObject({ ok: true, entries: 5, keyed_from: 4 });
    const trail = (await call<AuditLogRecord[]>("GET", `/client/v4/accounts/${s.id}/audit_logs?direction=asc`, { token: s.token })).body.result;
    expect(trail.slice(3).map((e) => [e.action.type, e.resource.type, e.actor.id])).toEqual([
      ["seal", "audit_log", "audit"],
      ["update", "entitlement", "admin"],
    ]);
    expect(trail[3]!.metadata).toEqual({ unkeyed_entries: 3, last_unkeyed: 3 });
    expect((await call<{ audit: { keyed_from: number } }>("GET", `/admin/v1/accounts/${s.id}/stats`, { headers: adminHeaders })).body.result.audit.keyed_from).toBe(4);
    // An old entry edited, and every hash after it recomputed: the keyed entry's MAC no longer matches.
    await runInDurableObject(tenantStub("accounts", s.id), (_, state) => {
      const sql = state.storage.sql;
      const scopeName = `accounts:${s.id}`;
      const rows = sql.exec(`SELECT * FROM audit_log ORDER BY seq`).toArray() as unknown as Array<ChainFields & { prev_hash: ArrayBuffer; hash: ArrayBuffer }>;
      let prev: Uint8Array = new Uint8Array(rows[0]!.hash);
      for (const row of rows.slice(1)) {
        const forged = row.seq === 2 ? { ...row, metadata: '{"granted":true,"quota":5}' } : row;
        const hash = entryHash(scopeName, forged, prev);
        sql.exec(`UPDATE audit_log SET metadata = ?, prev_hash = ?, hash = ? WHERE seq = ?`, forged.metadata, prev.slice().buffer, hash.slice().buffer, row.seq);
        prev = hash;
      }
    });
    expect((await verifyChain("accounts", s.id)).body.result).toMatchObject({ ok: false, broken_at: { position: 4, reason: expect.stringMatching(/MAC/) } });
  });

  it("stripping every MAC after a rewrite is not laundered by the next write: it writes an entry that says so, and keyed_from moves (review H4)", async () => {
    const s = await scope("accounts");
    for (let i = 0; i < 3; i++) await setEntitlement("accounts", s.id, { granted: true, quota: i });
    const before = (await call<{ audit: { keyed_from: number; entries: number } }>("GET", `/admin/v1/accounts/${s.id}/stats`, { headers: adminHeaders })).body.result.audit;
    expect(before.keyed_from).toBe(1);
    // Entry 2 rewritten, every hash after it recomputed, every MAC stripped.
    await runInDurableObject(tenantStub("accounts", s.id), (_, state) => {
      const sql = state.storage.sql;
      const scopeName = `accounts:${s.id}`;
      const rows = sql.exec(`SELECT * FROM audit_log ORDER BY seq`).toArray() as unknown as Array<ChainFields & { prev_hash: ArrayBuffer; hash: ArrayBuffer }>;
      let prev: Uint8Array = new Uint8Array(rows[0]!.hash);
      for (const row of rows.slice(1)) {
        const forged = row.seq === 2 ? { ...row, metadata: '{"granted":true,"quota":31337}' } : row;
        const hash = entryHash(scopeName, forged, prev);
        sql.exec(`UPDATE audit_log SET metadata = ?, prev_hash = ?, hash = ? WHERE seq = ?`, forged.metadata, prev.slice().buffer, hash.slice().buffer, row.seq);
        prev = hash;
      }
      sql.exec(`UPDATE audit_log SET mac = NULL, mac_kek = NULL`);
    });
    await setEntitlement("accounts", s.id, { granted: true, quota: 7 });
    const after = (await call<{ audit: { keyed_from: number } }>("GET", `/admin/v1/accounts/${s.id}/stats`, { headers: adminHeaders })).body.result.audit;
    // The operator who recorded keyed_from 1 sees 4: the entries before were re-anchored, not keyed all along.
    expect(after.keyed_from).toBe(4);
    const trail = (await call<AuditLogRecord[]>("GET", `/client/v4/accounts/${s.id}/audit_logs?action.type=seal`, { token: s.token })).body.result;
    expect(trail).toHaveLength(1);
    expect(trail[0]!.metadata).toEqual({ unkeyed_entries: 3, last_unkeyed: 3 });
  });

  it("a rotation re-keys every MAC under the new KEK, but never one that does not match (no edit is laundered)", async () => {
    const s = await scope("accounts");
    for (let i = 0; i < 4; i++) await setEntitlement("accounts", s.id, { granted: true, quota: i });
    const newKey = `k8:${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
    await runInDurableObject(tenantStub("accounts", s.id), async (_, state) => {
      const where = adminCall("accounts", s.id);
      const rotated = new TenantStore(state, { ...env, KEY_ENCRYPTION_KEYS: `${newKey},${env.KEY_ENCRYPTION_KEYS}` });
      // An entry edited without the key (its MAC no longer matches).
      state.storage.sql.exec(`UPDATE audit_log SET mac = zeroblob(32) WHERE seq = 2`);
      const report = await rotated.rewrapKeys(where, 10, "");
      expect(report).toMatchObject({ ok: true, value: { audit_rekeyed: 3, audit_failed: [2], remaining: 1 } });
      const kekOf = state.storage.sql.exec(`SELECT seq, mac_kek FROM audit_log ORDER BY seq`).toArray();
      expect(kekOf.slice(0, 4)).toEqual([
        { seq: 1, mac_kek: "k8" },
        { seq: 2, mac_kek: "test1" },
        { seq: 3, mac_kek: "k8" },
        { seq: 4, mac_kek: "k8" },
      ]);
      expect(await rotated.verifyAudit(where)).toMatchObject({ ok: true, value: { ok: false, broken_at: { position: 2 } } });
      // With the old KEK gone, the entry it keys cannot be checked: 1501 naming it.
      const retired = new TenantStore(state, { ...env, KEY_ENCRYPTION_KEYS: newKey });
      expect(await retired.verifyAudit(where)).toMatchObject({ ok: false, reason: "key_encryption_key_missing", kek_id: "test1" });
    });
  });

  it("a deleted entry is reported at its position", async () => {
    const { result } = await tampered((sql) => sql.exec(`DELETE FROM audit_log WHERE seq = 2`));
    expect(result).toMatchObject({ ok: false, entries_checked: 1, broken_at: { position: 2, id: null, reason: "missing entry" } });
  });

  it("reordered entries are reported at the first of them", async () => {
    const { result } = await tampered((sql) => {
      sql.exec(`UPDATE audit_log SET seq = 100 WHERE seq = 3`);
      sql.exec(`UPDATE audit_log SET seq = 3 WHERE seq = 4`);
      sql.exec(`UPDATE audit_log SET seq = 4 WHERE seq = 100`);
    });
    expect(result).toMatchObject({ ok: false, entries_checked: 2, broken_at: { position: 3 } });
  });

  it("concurrent writes in one scope leave one unbroken chain", async () => {
    const s = await scope("zones");
    const writes = [
      ...Array.from({ length: 12 }, () => s.create(csrBody({ key_type: "p256v1" }))),
      ...Array.from({ length: 8 }, (_, i) => setEntitlement("zones", s.id, { granted: true, quota: 1000 + i })),
    ];
    const replies = await Promise.all(writes);
    expect(replies.every((r) => r.status === 201 || r.status === 200)).toBe(true);
    expect((await verifyChain("zones", s.id)).body.result).toMatchObject({ ok: true, entries: 20 });
    const stored = await rows("zones", s.id);
    expect(stored.map((r) => r.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });
});

describe("export", () => {
  it("streams every entry as JSON lines, across batches, resumable by id; only for the operator", async () => {
    const s = await scope("accounts");
    // More than one export batch (500).
    await runInDurableObject(tenantStub("accounts", s.id), async (instance: TenantStore) => {
      for (let i = 0; i < 520; i++) await instance.setEntitlement(adminCall("accounts", s.id), { granted: true, quota: i });
    });
    const lines = await exportLines("accounts", s.id);
    expect(lines).toHaveLength(520);
    expect(lines.map((l) => l.chain.seq)).toEqual(Array.from({ length: 520 }, (_, i) => i + 1));
    expect(lines[519]!.metadata.quota).toBe(519);
    const rest = await exportLines("accounts", s.id, lines[509]!.id);
    expect(rest.map((l) => l.id)).toEqual(lines.slice(510).map((l) => l.id));
    expect(await exportLines("accounts", s.id, lines[519]!.id)).toEqual([]);

    expectError(await call("GET", `/admin/v1/accounts/${s.id}/audit/export?after=00000000-0000-7000-8000-000000000001`, { headers: adminHeaders }), 404, 1481);
    expectError(await call("GET", `/admin/v1/accounts/${s.id}/audit/export?after=nope`, { headers: adminHeaders }), 400, 1480);
    expectError(await call("GET", `/admin/v1/accounts/${s.id}/audit/export`, { token: s.token }), 403, 10000);
    expectError(await call("POST", `/admin/v1/accounts/${s.id}/audit/verify`, { headers: authHeaders(s.token) }), 403, 10000);
  });
});

describe("custody", () => {
  it("no entry holds a token, a key or a secret", async () => {
    const s = await scope("zones");
    const ca = await createCa("rsa2048");
    const legacy = { "x-auth-email": LEGACY_EMAIL, "x-auth-key": LEGACY_TEST_KEY };
    const rsa = (await s.create(csrBody({ key_type: "rsa2048" }))).body.result;
    await call("POST", `/client/v4/zones/${s.id}/custom_certificates`, { token: s.token, body: { certificate: await issueLeaf(ca, rsa.csr), custom_csr_id: rsa.id } });
    await call("POST", `/admin/v1/zones/${s.id}/custom_csrs/${rsa.id}/verify`, { headers: adminHeaders });
    await call("POST", "/client/v4/zones/legacyzone/custom_csrs", { headers: legacy, body: csrBody({ key_type: "p256v1" }) });

    for (const [kind, id] of [["zones", s.id], ["zones", "legacyzone"]] as const) {
      const everything = JSON.stringify(await rows(kind, id));
      for (const secret of [s.token, s.token.split(".")[2]!, env.API_TOKEN_SECRET, env.ADMIN_SECRET, env.KEY_ENCRYPTION_KEYS.split(":")[1]!, LEGACY_TEST_KEY]) {
        expect(everything).not.toContain(secret);
      }
      expect(everything).not.toMatch(/PRIVATE KEY|"d":|pkcs8|wrapped/i);
      // No wrap's bytes either.
      const wraps = await runInDurableObject(tenantStub(kind, id), (_, state) =>
        state.storage.sql.exec("SELECT hex(wrapped) AS w, hex(iv) AS iv FROM wrapped_keys").toArray(),
      );
      for (const wrap of wraps) {
        expect(everything).not.toContain(String(wrap.w).slice(0, 32));
        expect(everything.toUpperCase()).not.toContain(String(wrap.iv));
      }
    }
  });
});

describe("audit ids", () => {
  const hash = fc.uint8Array({ minLength: 32, maxLength: 32 });
  const seq = fc.integer({ min: 1, max: 2 ** 40 - 1 });
  const ms = fc.integer({ min: 0, max: 2 ** 48 - 1 });

  it("name their entry's position, whatever its time and hash", () => {
    fc.assert(
      fc.property(ms, seq, hash, (at, n, h) => {
        const id = auditId(at, n, h);
        expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(seqOfAuditId(id)).toBe(n);
        expect(seqOfAuditId(id.toUpperCase())).toBe(n);
      }),
    );
  });

  it("sort as (time, position) does", () => {
    fc.assert(
      fc.property(ms, seq, hash, ms, seq, hash, (t1, n1, h1, t2, n2, h2) => {
        fc.pre(t1 !== t2 || n1 !== n2);
        const byFields = t1 !== t2 ? t1 < t2 : n1 < n2;
        expect(auditId(t1, n1, h1) < auditId(t2, n2, h2)).toBe(byFields);
      }),
    );
  });

  it("are refused when not of this shape", () => {
    for (const id of ["", "0190d5a2-0000-4000-8000-000000000001", "0190d5a2-0000-7000-c000-000000000001", "0190d5a2-0000-7000-8000-00000000000"]) {
      expect(seqOfAuditId(id)).toBeNull();
    }
  });
});

describe("big but valid entries", () => {
  it("pages (per_page ≤ 100) and export batches (about 1 MiB) stay bounded; concurrent large reads wait their turn or get 429", async () => {
    const s = await scope("zones");
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    // 600 entries as large as a create body allows: 150 SANs of 255 characters each.
    const label = "a".repeat(63);
    const sans = Array.from({ length: 150 }, (_, i) => `${label}.${label}.${label}.h${String(i).padStart(3, "0")}x${"b".repeat(54)}.com`);
    expect(sans[0]!.length).toBe(255);
    await runInDurableObject(tenantStub("zones", s.id), async (_, state) => {
      const sql = new Sql(state.storage.sql);
      const audit = new AuditTrail(sql, new Counters(sql));
      audit.useKeyring(await loadKeyring(env.KEY_ENCRYPTION_KEYS));
      state.storage.transactionSync(() => {
        for (let i = 0; i < 600; i++) {
          audit.record(adminCall("zones", s.id), { action: "create", resource: { type: "custom_csr", id: crypto.randomUUID() }, result: true, metadata: { sans } });
        }
      });
      const instance = new TenantStore(state, env);
      let after: string | null = null;
      let lines = 0;
      for (;;) {
        const page = instance.exportAudit(adminCall("zones", s.id), after, 500, 1024 * 1024);
        if (!page.ok) throw new Error(page.reason);
        // One entry is about 78 KB of JSON here: a batch stops at the budget.
        expect(page.value.lines.length).toBeLessThan(1024 * 1024 + 100_000);
        lines += page.value.lines.split("\n").filter(Boolean).length;
        if (page.value.next === null) break;
        after = page.value.next;
      }
      expect(lines).toBe(601);
    });
    const exported = await exportLines("zones", s.id);
    expect(exported).toHaveLength(601);
    expect(exported.map((l) => l.chain.seq)).toEqual(Array.from({ length: 601 }, (_, i) => i + 1));

    expect((await trail(s, "?per_page=100")).body.result).toHaveLength(100);
    expectError(await trail(s, "?per_page=101"), 400, 1435);
    const replies = await Promise.all(Array.from({ length: 48 }, () => trail(s, "?per_page=100")));
    const statuses = replies.map((r) => r.status);
    expect(statuses.every((status) => status === 200 || status === 429)).toBe(true);
    for (const reply of replies.filter((r) => r.status === 429)) {
      expect(reply.body.errors[0]!.code).toBe(971);
      expect(reply.headers.get("retry-after")).toBe("1");
    }
    expect(statuses.filter((status) => status === 200).length).toBeGreaterThanOrEqual(4);
    expect((await call("GET", "/healthz")).status).toBe(200);
  }, 120_000);
});
