import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { migrate } from "../src/storage/migrate";
import { SCHEMA_VERSION, TENANT_MIGRATIONS } from "../src/tenant/schema";
import { Sql } from "../src/storage/sql";
import { TenantStore } from "../src/tenant/tenant-store";
import type { CsrRecord } from "./envelope";
import { adminCall, csrBody, scope, tenantStub } from "./shared";

const V2_CSR_COLUMNS =
  "seq, id, created_at, key_type, account_tag, common_name, country, state, locality, organization, organizational_unit, name, description, sans, csr";

// Each key with its CSR's id (version 3 links them by seq).
const KEYS_BY_ID = "SELECT c.id, k.kek_id, k.iv, k.wrapped FROM csrs c JOIN wrapped_keys k ON k.seq = c.seq ORDER BY c.id";

const objects = (state: DurableObjectState) =>
  state.storage.sql
    .exec("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' ORDER BY name")
    .toArray()
    .map((row) => `${row.type} ${row.name}`)
    .sort();

describe("schema migrations", () => {
  it("re-keys a version-2 store's wrapped keys by seq, keeping every CSR and key", async () => {
    const s = await scope("accounts");
    const where = adminCall(s.kind, s.id);
    const made: CsrRecord[] = [];
    for (const key_type of ["p256v1", "rsa2048", "p256v1"]) made.push((await s.create(csrBody({ key_type }))).body.result);
    const before = await Promise.all(made.map(async (csr) => (await s.get(csr.id)).body.result));

    await runInDurableObject(tenantStub(s.kind, s.id), async (_, state) => {
      const sql = new Sql(state.storage.sql);
      const rows = state.storage.sql.exec(`SELECT ${V2_CSR_COLUMNS} FROM csrs ORDER BY seq`).toArray();
      const keys = state.storage.sql.exec(KEYS_BY_ID).toArray();
      expect(rows).toHaveLength(3);
      expect(keys).toHaveLength(3);

      // Rebuild this object's database as version 2 stored the same CSRs: rows and a separate wrapped_keys table.
      state.storage.transactionSync(() => {
        for (const table of ["kek_checks", "key_pool", "key_pool_config", "audit_log", "certificates", "wrapped_keys", "csrs", "counters", "entitlement", "meta", "schema_version"]) sql.run(`DROP TABLE ${table}`);
      });
      migrate(sql, (fn) => state.storage.transactionSync(fn), TENANT_MIGRATIONS, 2);
      expect(objects(state)).toContain("table wrapped_keys");
      expect(objects(state)).toContain("index csrs_by_account_tag");
      state.storage.transactionSync(() => {
        for (const row of rows) {
          sql.run(`INSERT INTO csrs (${V2_CSR_COLUMNS}) VALUES (${V2_CSR_COLUMNS.split(", ").map(() => "?").join(", ")})`, ...Object.values(row));
        }
        for (const key of keys) {
          sql.run(`INSERT INTO wrapped_keys (csr_id, kek_id, iv, wrapped) VALUES (?, ?, ?, ?)`, key.id!, key.kek_id!, key.iv!, key.wrapped!);
        }
        sql.run(`UPDATE counters SET value = 3 WHERE name = 'csrs'`);
        sql.run(`INSERT INTO meta (key, value) VALUES ('scope', ?)`, `accounts:${s.id}`);
      });

      // The next instance (a deploy of this version) migrates in its constructor.
      const store = new TenantStore(state, env);
      expect(state.storage.sql.exec("SELECT version FROM schema_version").one().version).toBe(SCHEMA_VERSION);
      expect(objects(state)).not.toContain("index csrs_by_account_tag");
      expect(objects(state)).not.toContain("table wrapped_keys_v3");
      expect(state.storage.sql.exec("SELECT sql FROM sqlite_master WHERE name = 'wrapped_keys'").one().sql).toMatch(/seq INTEGER PRIMARY KEY/);
      // Version 7: where a certificate's key may be delivered (NULL: every registered edge).
      const columns = state.storage.sql.exec("SELECT name FROM pragma_table_info('certificates')").toArray().map((c) => c.name);
      expect(columns).toEqual(expect.arrayContaining(["policy", "geo_restriction"]));
      expect(state.storage.sql.exec(`SELECT ${V2_CSR_COLUMNS} FROM csrs ORDER BY seq`).toArray()).toEqual(rows);
      expect(state.storage.sql.exec(KEYS_BY_ID).toArray()).toEqual(keys);
      for (const csr of made) {
        expect(await store.verifyCsrKey(where, csr.id)).toMatchObject({ ok: true, value: { id: csr.id, ok: true } });
      }
    });

    expect(await Promise.all(made.map(async (csr) => (await s.get(csr.id)).body.result))).toEqual(before);
    expect((await s.list("?order=account_tag")).body.result.map((r) => r.id)).toEqual(made.map((r) => r.id));
    expect((await s.remove(made[0]!.id)).status).toBe(200);
    expect((await s.list()).body.result_info).toMatchObject({ total_count: 2 });
  });

  it("a fresh object is at the current version, its keys keyed by their CSR's seq", async () => {
    const s = await scope();
    await s.create(csrBody({ key_type: "p256v1" }));
    await runInDurableObject(tenantStub(s.kind, s.id), (_, state) => {
      expect(state.storage.sql.exec("SELECT version FROM schema_version").one().version).toBe(SCHEMA_VERSION);
      expect(objects(state)).toEqual([
        "index acme_orders_by_next",
        "index alert_deliveries_by_sent",
        "index alert_deliveries_due",
        "index alert_deliveries_once",
        "index audit_by_action",
        "index audit_by_actor_email",
        "index certificates_by_csr",
        "index certificates_by_leaf",
        "index certificates_by_priority",
        "index csrs_by_name",
        "index custom_hostnames_by_csr",
        "index custom_hostnames_by_renewal",
        "index hostname_certificates_by_type",
        "index hostname_keys_by_type",
        "index wrapped_keys_by_kek",
        "table acme_accounts",
        "table acme_orders",
        "table alert_deliveries",
        "table alert_edge_episodes",
        "table alert_events",
        "table alert_outbox",
        "table alert_policies",
        "table alert_webhooks",
        "table audit_log",
        "table certificates",
        "table counters",
        "table csrs",
        "table custom_hostnames",
        "table entitlement",
        "table expiry_notices",
        "table fallback_origin",
        "table hostname_certificates",
        "table hostname_keys",
        "table hostname_quota",
        "table kek_checks",
        "table key_pool",
        "table key_pool_config",
        "table meta",
        "table schema_version",
        "table wrapped_keys",
      ]);
      const row = state.storage.sql.exec("SELECT k.kek_id, length(k.iv) AS iv FROM wrapped_keys k JOIN csrs c ON c.seq = k.seq").one();
      expect(row).toEqual({ kek_id: "test1", iv: 12 });
    });
  });
});
