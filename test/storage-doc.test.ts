// docs/storage.md is held to the migrations: for every Durable Object class,
// the tables and columns it documents are exactly those a fresh object of
// the class has once its schema is made (issue 20).
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import doc from "../docs/storage.md?raw";
import { migrate } from "../src/storage/migrate";
import { Sql } from "../src/storage/sql";
import { TENANT_MIGRATIONS } from "../src/tenant/schema";
import { HOSTNAME_MIGRATIONS } from "../src/hostnames/schema";

/** `## \`Class\`` sections, each `### \`table\`` in it, and the column names of its table (first cell, in backticks). */
function documented(): Map<string, Map<string, Set<string>>> {
  const classes = new Map<string, Map<string, Set<string>>>();
  let tables: Map<string, Set<string>> | null = null;
  let columns: Set<string> | null = null;
  for (const line of doc.split("\n")) {
    const cls = /^## `(\w+)`/.exec(line);
    if (cls) {
      tables = new Map();
      classes.set(cls[1]!, tables);
      columns = null;
      continue;
    }
    if (line.startsWith("## ")) {
      tables = null;
      columns = null;
      continue;
    }
    const table = /^### `(\w+)`/.exec(line);
    if (table && tables) {
      columns = new Set();
      tables.set(table[1]!, columns);
      continue;
    }
    const row = /^\| ([^|]+) \|/.exec(line);
    if (row && columns && !/^-+$/.test(row[1]!.trim()) && row[1]!.trim() !== "column") {
      for (const name of row[1]!.matchAll(/`(\w+)`/g)) columns.add(name[1]!);
    }
  }
  return classes;
}

/** The tables and columns of an object's database (the runtime's and the migration's own bookkeeping left out). */
function actual(sql: SqlStorage): Map<string, Set<string>> {
  const tables = new Map<string, Set<string>>();
  for (const { name } of sql.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table'`).toArray()) {
    if (name === "schema_version" || name === "sqlite_sequence" || name.startsWith("_cf_")) continue;
    tables.set(name, new Set(sql.exec<{ name: string }>(`SELECT name FROM pragma_table_info(?)`, name).toArray().map((c) => c.name)));
  }
  return tables;
}

const asObject = (tables: Map<string, Set<string>>) => Object.fromEntries([...tables].map(([t, c]) => [t, [...c].sort()]));

describe("docs/storage.md is the schema", () => {
  const classes = documented();
  const stubs: Record<string, () => DurableObjectStub> = {
    TenantStore: () => env.TENANTS.get(env.TENANTS.idFromName(`zones:storage-doc-${crypto.randomUUID()}`)),
    DeploymentRegistry: () => env.DEPLOYMENT.get(env.DEPLOYMENT.idFromName(`storage-doc-${crypto.randomUUID()}`)),
    EdgeRegistry: () => env.EDGES.get(env.EDGES.idFromName(`storage-doc-${crypto.randomUUID()}`)),
    ZoneDirectory: () => env.ZONE_DIRECTORY.get(env.ZONE_DIRECTORY.idFromName(`storage-doc-${crypto.randomUUID()}`)),
    ReadinessProbe: () => env.READINESS.get(env.READINESS.idFromName(`storage-doc-${crypto.randomUUID()}`)),
    HostnameRegistry: () => env.HOSTNAMES.get(env.HOSTNAMES.idFromName(`storage-doc-${crypto.randomUUID()}`)),
    FleetMetrics: () => env.METRICS.get(env.METRICS.idFromName(`storage-doc-${crypto.randomUUID()}`)),
  };
  // Classes whose schema is made at the first write rather than in the constructor.
  const lazy: Record<string, (sql: Sql, state: DurableObjectState) => void> = {
    TenantStore: (sql, state) => migrate(sql, (fn) => state.storage.transactionSync(fn), TENANT_MIGRATIONS),
    HostnameRegistry: (sql, state) => migrate(sql, (fn) => state.storage.transactionSync(fn), HOSTNAME_MIGRATIONS),
  };

  it("documents every class", () => {
    expect([...classes.keys()].sort()).toEqual(Object.keys(stubs).sort());
  });

  for (const name of Object.keys(stubs)) {
    it(`${name}: every table and column, and nothing else`, async () => {
      const tables = await runInDurableObject(stubs[name]!(), (_, state) => {
        lazy[name]?.(new Sql(state.storage.sql), state);
        return asObject(actual(state.storage.sql));
      });
      expect(asObject(classes.get(name) ?? new Map())).toEqual(tables);
    });
  }
});
