// The deployment registry (src/deployment): which scopes have data, which
// key-encryption keys that data is under, and the KEK report operators
// retire keys by. Reads of scopes that were never written store nothing.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { DEPLOYMENT_REGISTRY_NAME } from "../src/core/objects";
import { DeploymentRegistry } from "../src/deployment/deployment-registry";
import { keyStatus } from "../src/deployment/key-status";
import { DEPLOYMENT_MIGRATIONS } from "../src/deployment/schema";
import { kekCheckValue, loadKeyring } from "../src/pki/keyring";
import { migrate } from "../src/storage/migrate";
import { Sql } from "../src/storage/sql";
import { delivery, edgeToken, registerEdge } from "./edges";
import { adminHeaders, call, csrBody, expectError, scope, scopeId, tenantStub, tokenFor } from "./shared";

type Keys = { current_kek_id: string; keks: Array<{ id: string; check: string; scopes: number }>; retirable: string[]; scopes_complete: boolean; scopes_unreported: number };
type RewrapPage = {
  scopes: Array<{ scope: string; remaining: number | null; failures: Array<{ id: string; kek_id?: string; reason: string }>; error?: { code: number; message: string } }>;
  next: string | null;
};

/** The registry's key status as a deployment configured with `keys` sees it (a redeploy with other secrets). */
function statusWith(keys: string) {
  return runInDurableObject(registry(), async (_, state) => {
    const status = await new DeploymentRegistry(state, { ...env, KEY_ENCRYPTION_KEYS: keys }).keyStatus();
    if (!status.ok) throw new Error(status.reason);
    return status.value;
  });
}

/** Runs SQL in the registry's own database (to set up what an older registry holds). */
function registrySql(statement: string, ...params: string[]) {
  return runInDurableObject(registry(), (_, state) => state.storage.sql.exec(statement, ...params).toArray());
}

const rawOf = (base64: string) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));

const registry = () => env.DEPLOYMENT.get(env.DEPLOYMENT.idFromName(DEPLOYMENT_REGISTRY_NAME));
const randomKey = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

describe("KEK check values", () => {
  it("are HKDF-SHA256 of the key, bound to its id, and differ for another key or id", async () => {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const check = kekCheckValue("k1", raw);
    expect(check).toMatch(/^[0-9a-f]{64}$/);
    expect(kekCheckValue("k1", raw)).toBe(check);
    expect(kekCheckValue("k2", raw)).not.toBe(check);
    expect(kekCheckValue("k1", crypto.getRandomValues(new Uint8Array(32)))).not.toBe(check);
    // The same value WebCrypto's own HKDF gives (what npm start computes in Node).
    const base = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveBits"]);
    const bits = await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode("custom-csr-kek-check:v1:k1") },
      base,
      256,
    );
    expect([...new Uint8Array(bits)].map((b) => b.toString(16).padStart(2, "0")).join("")).toBe(check);
  });

  it("keyStatus: ok, mismatch, missing and unused KEKs, the failures they cause, and which may be retired", async () => {
    const a = randomKey();
    const b = randomKey();
    const keyring = await loadKeyring(`cur:${a},old:${b},spare:${randomKey()}`);
    const record = (kek_id: string, check_value: string, scopes: number) => ({ kek_id, check_value, recorded_at: "2026-12-01T00:00:00.000Z", scopes });
    const { status, failures } = keyStatus(
      keyring,
      [record("cur", keyring.checks.get("cur")!, 3), record("old", "0".repeat(64), 1), record("gone", "1".repeat(64), 2), record("retired", "2".repeat(64), 0)],
      { complete: true, unreported: 0 },
    );
    expect(status.current_kek_id).toBe("cur");
    expect(status.keks.map((k) => [k.id, k.check, k.configured, k.scopes])).toEqual([
      ["cur", "ok", true, 3],
      ["gone", "missing", false, 2],
      ["old", "mismatch", true, 1],
      ["retired", "missing", false, 0],
      ["spare", "unused", true, 0],
    ]);
    expect(failures).toEqual([
      { reason: "key_encryption_key_missing", kek_id: "gone" },
      { reason: "key_encryption_mismatch", kek_id: "old" },
    ]);
    expect(status.retirable).toEqual(["spare"]);
  });

  it("keyStatus retires nothing while the registry cannot vouch for every scope; a KEK data uses with no check value is unverified, or missing", async () => {
    const keyring = await loadKeyring(`cur:${randomKey()},spare:${randomKey()},legacy:${randomKey()}`);
    const records = [
      { kek_id: "cur", check_value: keyring.checks.get("cur")!, recorded_at: "2026-12-01T00:00:00.000Z", scopes: 1 },
      // Used by a scope from before check values, not verified yet (configured), and lost (not configured).
      { kek_id: "legacy", check_value: null, recorded_at: null, scopes: 2 },
      { kek_id: "lost", check_value: null, recorded_at: null, scopes: 1 },
    ];
    const vouched = keyStatus(keyring, records, { complete: true, unreported: 0 });
    expect(vouched.status.keks.map((k) => [k.id, k.check, k.scopes])).toEqual([
      ["cur", "ok", 1],
      ["legacy", "unverified", 2],
      ["lost", "missing", 1],
      ["spare", "unused", 0],
    ]);
    expect(vouched.failures).toEqual([{ reason: "key_encryption_key_missing", kek_id: "lost" }]);
    expect(vouched.status.retirable).toEqual(["spare"]);
    // A scope the registry does not list, or whose KEKs it does not know, may need any KEK.
    for (const coverage of [{ complete: false, unreported: 0 }, { complete: true, unreported: 1 }]) {
      const { status } = keyStatus(keyring, records, coverage);
      expect(status).toMatchObject({ retirable: [], scopes_complete: coverage.complete, scopes_unreported: coverage.unreported });
    }
  });
});

describe("the deployment registry", () => {
  it("records each scope before its first write, and each KEK its data is wrapped under", async () => {
    const s = await scope();
    expect(await registry().lookupScope(`zones:${s.id}`)).toMatchObject({ ok: true, value: { exists: false } });
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    expect(await registry().lookupScope(`zones:${s.id}`)).toMatchObject({ ok: true, value: { exists: true } });
    const page = await registry().listScopes(`zones:${s.id}`.slice(0, -1), 1000);
    expect(page.ok && page.value.scopes.find((x) => x.name === `zones:${s.id}`)).toMatchObject({ kek_ids: ["test1"] });

    const reply = await call<{ current_kek_id: string; keks: Array<{ id: string; check: string; scopes: number }>; retirable: string[]; problems: unknown[] }>(
      "GET",
      "/admin/v1/keys",
      { headers: adminHeaders },
    );
    expect(reply.status).toBe(200);
    expect(reply.body.result.current_kek_id).toBe("test1");
    expect(reply.body.result.keks.find((k) => k.id === "test1")).toMatchObject({ check: "ok" });
    expect(reply.body.result.keks.find((k) => k.id === "test1")!.scopes).toBeGreaterThan(0);
    expect(reply.body.result.problems).toEqual([]);
    expectError(await call("GET", "/admin/v1/keys", { token: s.token }), 403, 10000);
  });

  it("reports a KEK replaced under its id, and one the data needs that is not configured, by name", async () => {
    const s = await scope();
    await s.create(csrBody({ key_type: "p256v1" }));
    await runInDurableObject(registry(), async (_, state) => {
      const replaced = await new DeploymentRegistry(state, { ...env, KEY_ENCRYPTION_KEYS: `test1:${randomKey()}` }).keyStatus();
      expect(replaced.ok && replaced.value.failures).toEqual([{ reason: "key_encryption_mismatch", kek_id: "test1" }]);
      const lost = await new DeploymentRegistry(state, { ...env, KEY_ENCRYPTION_KEYS: `k5:${randomKey()}` }).keyStatus();
      expect(lost.ok && lost.value.failures).toEqual([{ reason: "key_encryption_key_missing", kek_id: "test1" }]);
      const unset = await new DeploymentRegistry(state, { ...env, KEY_ENCRYPTION_KEYS: "" }).keyStatus();
      expect(unset).toMatchObject({ ok: false, reason: "key_encryption_unavailable" });
    });
  });

  it("imports scope names (npm start's upgrade of an older data directory) and refuses malformed ones", async () => {
    const names = [`zones:${scopeId()}`, `accounts:${scopeId()}`];
    const reply = await call("POST", "/admin/v1/scopes/import", { headers: adminHeaders, body: { scopes: names, complete: false } });
    expect(reply.body.result).toEqual({ added: 2 });
    for (const name of names) expect(await registry().lookupScope(name)).toMatchObject({ value: { exists: true } });
    expectError(await call("POST", "/admin/v1/scopes/import", { headers: adminHeaders, body: { scopes: ["nope"], complete: false } }), 400, 1434);
    expectError(await call("POST", "/admin/v1/scopes/import", { headers: adminHeaders, body: { scopes: [], complete: "yes" } }), 400, 1430);
    expectError(await call("POST", "/admin/v1/scopes/import", { headers: adminHeaders, body: [] }), 400, 1400);
    expectError(await call("GET", "/admin/v1/scopes?limit=0", { headers: adminHeaders }), 400, 1435);
  });
});

describe("a scope that was never written", () => {
  it("answers every read as empty and stores nothing, not even a schema", async () => {
    const id = scopeId();
    const token = await tokenFor("zones", id);
    const edge = await registerEdge({ country: "DE", region: "WEUR" });
    const edgeReads = delivery(id, await edgeToken(edge.id, [id]));
    const uuid = crypto.randomUUID();
    const pages = [`/client/v4/zones/${id}/custom_csrs`, `/client/v4/zones/${id}/custom_certificates`, `/client/v4/zones/${id}/audit_logs`];
    for (const path of pages) {
      const reply = await call<unknown[]>("GET", path, { token });
      expect({ path, status: reply.status, result: reply.body.result, total: reply.body.result_info?.total_count }).toEqual({ path, status: 200, result: [], total: 0 });
    }
    expectError(await call("GET", `/client/v4/zones/${id}/custom_csrs/${uuid}`, { token }), 404, 1419);
    expectError(await call("GET", `/client/v4/zones/${id}/custom_certificates/${uuid}`, { token }), 404, 1449);
    expectError(await call("DELETE", `/client/v4/zones/${id}/custom_csrs/${uuid}`, { token }), 404, 1419);
    expect((await edgeReads.list()).body.result).toEqual([]);
    expectError(await edgeReads.get(uuid), 404, 1449);
    for (const path of ["entitlement", "key_pool", "stats"]) expect((await call("GET", `/admin/v1/zones/${id}/${path}`, { headers: adminHeaders })).status).toBe(200);
    expect((await call("POST", `/admin/v1/zones/${id}/audit/verify`, { headers: adminHeaders })).body.result).toMatchObject({ ok: true, entries: 0 });
    const tables = await runInDurableObject(tenantStub("zones", id), (_, state) => state.storage.sql.exec("SELECT name FROM sqlite_master").toArray());
    expect(tables).toEqual([]);
    expect(await registry().lookupScope(`zones:${id}`)).toMatchObject({ value: { exists: false } });
  });
});

describe("scopes whose KEKs the registry does not know (a data directory from before it)", () => {
  it("a registry from before schema version 2 lists every scope as not reported: nothing is retirable until each one is", async () => {
    const stub = env.DEPLOYMENT.get(env.DEPLOYMENT.idFromName("replay-version-1"));
    await runInDurableObject(stub, async (_, state) => {
      const sql = new Sql(state.storage.sql);
      const transaction = <T>(fn: () => T): T => state.storage.transactionSync(fn);
      for (const table of ["scopes", "kek_checks", "scope_keks", "meta", "schema_version"]) sql.run(`DROP TABLE ${table}`);
      migrate(sql, transaction, DEPLOYMENT_MIGRATIONS, 1);
      sql.run(`INSERT INTO scopes (name, created_at) VALUES ('zones:old', '2026-12-01T00:00:00.000Z'), ('zones:new', '2026-12-01T00:00:00.000Z')`);
      sql.run(`INSERT INTO scope_keks (scope, kek_id) VALUES ('zones:new', 'test1')`);
      sql.run(`INSERT INTO meta (key, value) VALUES ('complete', '1')`);
      migrate(sql, transaction, DEPLOYMENT_MIGRATIONS);
      expect(sql.all(`SELECT name, keks_reported FROM scopes ORDER BY name`)).toEqual([
        { name: "zones:new", keks_reported: 0 },
        { name: "zones:old", keks_reported: 0 },
      ]);
      const status = await new DeploymentRegistry(state, { ...env, KEY_ENCRYPTION_KEYS: `${env.KEY_ENCRYPTION_KEYS},spare:${randomKey()}` }).keyStatus();
      expect(status.ok && status.value.status).toMatchObject({ scopes_complete: true, scopes_unreported: 2, retirable: [] });
    });
  });

  it("no KEK is retirable while the list is incomplete or a listed scope has not reported its KEKs; the rewrap visits such a scope and counts them", async () => {
    const spare = `spare:${randomKey()}`;
    const s = await scope();
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    const name = `zones:${s.id}`;
    // Listed by name only, as a registry from before schema version 2 lists every scope.
    await registrySql(`UPDATE scopes SET keks_reported = 0 WHERE name = ?`, name);
    await registrySql(`DELETE FROM scope_keks WHERE scope = ?`, name);

    const incomplete = await statusWith(`${env.KEY_ENCRYPTION_KEYS},${spare}`);
    expect(incomplete.status).toMatchObject({ retirable: [] });
    expect(incomplete.status.scopes_unreported).toBeGreaterThan(0);
    expect((await call("POST", "/admin/v1/scopes/import", { headers: adminHeaders, body: { scopes: [], complete: true } })).status).toBe(200);
    expect((await statusWith(`${env.KEY_ENCRYPTION_KEYS},${spare}`)).status).toMatchObject({ scopes_complete: true, retirable: [] });

    const visited: string[] = [];
    for (let next: string | null = ""; next !== null; ) {
      const page: Awaited<ReturnType<typeof call<RewrapPage>>> = await call<RewrapPage>("POST", `/admin/v1/rewrap?limit=2${next ? `&after=${next}` : ""}`, { headers: adminHeaders });
      expect(page.status).toBe(200);
      for (const entry of page.body.result.scopes) {
        expect(entry).toMatchObject({ remaining: 0, failures: [] });
        visited.push(entry.scope);
      }
      next = page.body.result.next;
    }
    expect(visited).toContain(name);
    const listed = await registry().listScopes(name.slice(0, -1), 1000);
    expect(listed.ok && listed.value.scopes.find((x) => x.name === name)).toMatchObject({ kek_ids: ["test1"], keks_reported: true });
    const vouched = await statusWith(`${env.KEY_ENCRYPTION_KEYS},${spare}`);
    expect(vouched.status).toMatchObject({ scopes_complete: true, scopes_unreported: 0, retirable: ["spare"] });
  });

  it("an import carries each scope's KEK ids and the check values npm start verified: such a KEK is counted, checked and never retirable", async () => {
    const legacyKey = randomKey();
    const check = kekCheckValue("legacy1", rawOf(legacyKey));
    const name = `zones:${scopeId()}`;
    const imported = await call("POST", "/admin/v1/scopes/import", {
      headers: adminHeaders,
      body: { scopes: [{ name, kek_ids: ["legacy1"] }], complete: true, checks: { legacy1: check } },
    });
    expect(imported.status).toBe(200);
    expect(imported.body.result).toEqual({ added: 1 });
    const page = await call<{ scopes: Array<{ name: string; kek_ids: string[]; keks_reported: boolean }> }>("GET", `/admin/v1/scopes?after=${name.slice(0, -1)}&limit=1`, {
      headers: adminHeaders,
    });
    expect(page.body.result.scopes[0]).toMatchObject({ name, kek_ids: ["legacy1"], keks_reported: true });

    // A rotation away from it: the data under it is known, so it is not retirable, and its check is the verified one.
    const rotated = await statusWith(`${env.KEY_ENCRYPTION_KEYS},legacy1:${legacyKey},spare:${randomKey()}`);
    expect(rotated.status.keks.find((k) => k.id === "legacy1")).toMatchObject({ check: "ok", scopes: 1 });
    expect(rotated.status.retirable).toEqual(["spare"]);
    expect(rotated.failures).toEqual([]);
    // Another key under its id is refused by name, and so is one the data needs that is not configured.
    expect((await statusWith(`${env.KEY_ENCRYPTION_KEYS},legacy1:${randomKey()}`)).failures).toEqual([{ reason: "key_encryption_mismatch", kek_id: "legacy1" }]);
    expect((await statusWith(env.KEY_ENCRYPTION_KEYS)).failures).toEqual([{ reason: "key_encryption_key_missing", kek_id: "legacy1" }]);

    // An import whose check value differs from the recorded one is refused (1505 naming the KEK) and writes nothing.
    const other = `zones:${scopeId()}`;
    const refused = await call("POST", "/admin/v1/scopes/import", {
      headers: adminHeaders,
      body: { scopes: [{ name: other, kek_ids: ["legacy1"] }], complete: true, checks: { legacy1: kekCheckValue("legacy1", rawOf(randomKey())) } },
    });
    expectError(refused, 503, 1505);
    expect(await registry().lookupScope(other)).toMatchObject({ value: { exists: false } });
    for (const body of [
      { scopes: [{ name, kek_ids: ["bad id"] }], complete: true },
      { scopes: [{ name: "edge-registry" }], complete: true },
      { scopes: [], complete: true, checks: { legacy1: "not hex" } },
    ]) {
      expectError(await call("POST", "/admin/v1/scopes/import", { headers: adminHeaders, body }), 400, 1430);
    }
    // The scope's data leaves legacy1 (as its rewrap reports it): nothing needs the KEK any more.
    await registry().reportKeks(name, []);
    expect((await statusWith(env.KEY_ENCRYPTION_KEYS)).failures).toEqual([]);
  });
});

describe("the deployment-wide rewrap (POST /admin/v1/rewrap)", () => {
  it("takes its own `next` back, edge-registry included", async () => {
    const reply = await call<RewrapPage>("POST", "/admin/v1/rewrap?limit=1&after=edge-registry", { headers: adminHeaders });
    expect(reply.status).toBe(200);
    expectError(await call("POST", "/admin/v1/rewrap?after=nope", { headers: adminHeaders }), 400, 1435);
  });

  it("reports every key that did not open, once, across every batch; a scope whose rewrap fails is reported in its entry and the page goes on", async () => {
    // 1,001 keys under a KEK that is not configured (three batches of the rewrap), and a pooled one.
    const many = await scope();
    expect((await many.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    const ids = await runInDurableObject(tenantStub("zones", many.id), async (_, state) => {
      const sql = state.storage.sql;
      sql.exec(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001)
         INSERT INTO csrs (id, created_at, key_type, account_tag, common_name, country, state, locality, organization, organizational_unit, name, description, sans, csr)
         SELECT printf('00000000-0000-4000-8000-%012d', i), c.created_at, c.key_type, c.account_tag, c.common_name, c.country, c.state, c.locality, c.organization,
                c.organizational_unit, c.name, c.description, c.sans, c.csr
         FROM n, (SELECT * FROM csrs LIMIT 1) c`,
      );
      sql.exec(`INSERT INTO wrapped_keys (seq, kek_id, iv, wrapped) SELECT seq, 'gone1', zeroblob(12), zeroblob(64) FROM csrs WHERE id LIKE '00000000-%'`);
      sql.exec(`INSERT INTO key_pool (seq, id, kek_id, iv, wrapped, spki, created_at) VALUES (1, 'pooled-gone', 'gone1', zeroblob(12), zeroblob(64), zeroblob(91), '2026-12-01T00:00:00.000Z')`);
      return sql.exec(`SELECT id FROM csrs WHERE id LIKE '00000000-%' ORDER BY id`).toArray().map((r) => String(r.id));
    });
    // A scope whose object fails outright (its pool's table is gone).
    const broken = await scope();
    expect((await broken.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    await runInDurableObject(tenantStub("zones", broken.id), (_, state) => void state.storage.sql.exec(`DROP TABLE key_pool`));
    // A scope whose gate refuses its KEK (another check value recorded for test1), once its object starts afresh.
    const refused = await scope();
    expect((await refused.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    await runInDurableObject(tenantStub("zones", refused.id), (_, state) => void state.storage.sql.exec(`UPDATE kek_checks SET check_value = ?`, "0".repeat(64)));
    await runInDurableObject(tenantStub("zones", refused.id), (_, state) => state.abort("start afresh")).catch(() => undefined);
    const names = [`zones:${many.id}`, `zones:${broken.id}`, `zones:${refused.id}`].sort();
    for (const name of names) await registry().reportKeks(name, ["gone1", "test1"]);

    const byScope = new Map<string, RewrapPage["scopes"][number]>();
    const pages: RewrapPage[] = [];
    for (let next: string | null = ""; next !== null; ) {
      const page: Awaited<ReturnType<typeof call<RewrapPage>>> = await call<RewrapPage>("POST", `/admin/v1/rewrap?limit=1${next ? `&after=${next}` : ""}`, { headers: adminHeaders });
      expect(page.status).toBe(200);
      pages.push(page.body.result);
      for (const entry of page.body.result.scopes) byScope.set(entry.scope, entry);
      next = page.body.result.next;
    }
    // One scope per page, the failing one included: each page says where to go on (the first also visits the edge registry).
    expect(pages.map((p) => p.scopes.map((e) => e.scope))).toEqual([["edge-registry", names[0]!], ...names.slice(1).map((n) => [n]), []]);
    expect(pages.map((p) => p.next)).toEqual([...names, null]);

    const report = byScope.get(`zones:${many.id}`)!;
    expect(report.remaining).toBe(1002);
    const csrFailures = report.failures.filter((f) => f.id !== "pooled-gone");
    expect(csrFailures.map((f) => f.id)).toEqual(ids);
    expect(csrFailures.every((f) => f.kek_id === "gone1" && f.reason === "kek_not_configured")).toBe(true);
    expect(report.failures.filter((f) => f.id === "pooled-gone")).toEqual([{ id: "pooled-gone", kek_id: "gone1", reason: "kek_not_configured" }]);
    expect(byScope.get(`zones:${broken.id}`)).toMatchObject({ remaining: null, failures: [], error: { code: 1500 } });
    expect(byScope.get(`zones:${refused.id}`)).toMatchObject({ remaining: null, failures: [], error: { code: 1505, message: expect.stringContaining("test1") } });

    // Leave the registry as the rest of the file expects it: no scope under gone1.
    await runInDurableObject(tenantStub("zones", many.id), (_, state) => {
      state.storage.sql.exec(`DELETE FROM wrapped_keys WHERE kek_id = 'gone1'`);
      state.storage.sql.exec(`DELETE FROM key_pool`);
    });
    await registry().reportKeks(`zones:${many.id}`, ["test1"]);
    await registry().reportKeks(`zones:${broken.id}`, []);
    await registry().reportKeks(`zones:${refused.id}`, []);
  });
});
