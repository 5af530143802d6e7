import type { Sql } from "./sql";

/**
 * Bump SCHEMA_VERSION and append to MIGRATIONS to change the schema; each
 * step runs once, in order, in the constructor (docs/storage.md lists every
 * table and column).
 */
export const SCHEMA_VERSION = 2;

const MIGRATIONS: readonly string[][] = [
  [
    // seq: insertion order, the stable tie-break of every list order.
    `CREATE TABLE csrs (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      created_at TEXT NOT NULL,
      key_type TEXT NOT NULL,
      account_tag TEXT,
      common_name TEXT NOT NULL,
      country TEXT NOT NULL,
      state TEXT NOT NULL,
      locality TEXT NOT NULL,
      organization TEXT NOT NULL,
      organizational_unit TEXT,
      name TEXT,
      description TEXT,
      sans TEXT NOT NULL,
      csr TEXT NOT NULL
    )`,
    `CREATE INDEX csrs_by_created_at ON csrs (created_at, seq)`,
    `CREATE INDEX csrs_by_name ON csrs (name, seq)`,
    `CREATE INDEX csrs_by_account_tag ON csrs (account_tag, seq)`,
    // The private key, only ever as its AES-GCM wrap (src/pki/key-wrap.ts).
    `CREATE TABLE wrapped_keys (
      csr_id TEXT PRIMARY KEY REFERENCES csrs (id) ON DELETE CASCADE,
      kek_id TEXT NOT NULL,
      iv BLOB NOT NULL,
      wrapped BLOB NOT NULL
    )`,
    `CREATE INDEX wrapped_keys_by_kek ON wrapped_keys (kek_id)`,
    // Counters kept in step with inserts and deletes, so lists and quotas
    // never count rows.
    `CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
    `INSERT INTO counters (name, value) VALUES ('csrs', 0), ('certificates', 0)`,
    // The scope's entitlement; absent means the deployment's defaults.
    `CREATE TABLE entitlement (
      singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
      granted INTEGER NOT NULL,
      quota INTEGER NOT NULL
    )`,
    `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  ],
  [
    // Custom certificates uploaded against a custom CSR (zones only); a CSR
    // with a certificate cannot be deleted (1420).
    `CREATE TABLE certificates (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      custom_csr_id TEXT NOT NULL REFERENCES csrs (id),
      certificate TEXT NOT NULL,
      hosts TEXT NOT NULL,
      issuer TEXT NOT NULL,
      signature TEXT NOT NULL,
      bundle_method TEXT NOT NULL,
      priority INTEGER NOT NULL,
      expires_on TEXT NOT NULL,
      uploaded_on TEXT NOT NULL,
      modified_on TEXT NOT NULL
    )`,
    `CREATE INDEX certificates_by_csr ON certificates (custom_csr_id)`,
    `CREATE INDEX certificates_by_uploaded_on ON certificates (uploaded_on, seq)`,
  ],
];

/** Brings the object's database to SCHEMA_VERSION; synchronous, so it runs before any request. */
export function migrate(sql: Sql, transactionSync: <T>(fn: () => T) => T): void {
  sql.run(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`);
  const current = sql.one<{ version: number }>(`SELECT version FROM schema_version`)?.version ?? 0;
  if (current >= SCHEMA_VERSION) return;
  transactionSync(() => {
    for (let v = current; v < SCHEMA_VERSION; v++) {
      for (const statement of MIGRATIONS[v]!) sql.run(statement);
    }
    sql.run(`DELETE FROM schema_version`);
    sql.run(`INSERT INTO schema_version (version) VALUES (?)`, SCHEMA_VERSION);
  });
}
