import type { Sql } from "../tenant/sql";

/**
 * The edge registry's schema (docs/storage.md, "The edge registry"). Bump
 * EDGE_SCHEMA_VERSION and append to MIGRATIONS to change it; each step runs
 * once, in order, in the object's constructor.
 */
export const EDGE_SCHEMA_VERSION = 1;

const MIGRATIONS: readonly string[][] = [
  [
    // One row per registered edge; deleting the row revokes the edge.
    // public_key holds the JWK's public members only (JSON), never a private one.
    `CREATE TABLE edges (
      id TEXT PRIMARY KEY,
      public_key TEXT NOT NULL,
      thumbprint TEXT NOT NULL,
      country TEXT NOT NULL,
      region TEXT NOT NULL,
      highest_security INTEGER NOT NULL,
      created_on TEXT NOT NULL,
      modified_on TEXT NOT NULL
    )`,
  ],
];

/** Brings the registry's database to EDGE_SCHEMA_VERSION, in one transaction; synchronous, in the constructor. */
export function migrateEdges(sql: Sql, transactionSync: <T>(fn: () => T) => T): void {
  sql.run(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`);
  const current = sql.one<{ version: number }>(`SELECT version FROM schema_version`)?.version ?? 0;
  if (current >= EDGE_SCHEMA_VERSION) return;
  transactionSync(() => {
    for (let v = current; v < EDGE_SCHEMA_VERSION; v++) for (const statement of MIGRATIONS[v]!) sql.run(statement);
    sql.run(`DELETE FROM schema_version`);
    sql.run(`INSERT INTO schema_version (version) VALUES (?)`, EDGE_SCHEMA_VERSION);
  });
}
