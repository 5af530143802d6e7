import { runMigrations } from "../core/migrate";
import type { Sql } from "../core/sql";

/**
 * Bump SCHEMA_VERSION and append to MIGRATIONS to change the schema; each
 * step runs once, in order, in the constructor (docs/storage.md lists every
 * table and column).
 */
export const SCHEMA_VERSION = 4;

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
  [
    // Fewer rows written per create (10 -> 8; bench/PROFILE.md). Wrapped keys
    // are keyed by their CSR's seq (the rowid: no separate key index) rather
    // than by its id; the account_tag index goes, since account_tag is the
    // same on every row of an object (the scope's account, or NULL in a
    // zone), so order=account_tag is seq order. The key stays out of the CSR
    // row: an RSA row with its wrap (~2.6 KB) would take a 4 KiB page alone.
    `CREATE TABLE wrapped_keys_v3 (
      seq INTEGER PRIMARY KEY REFERENCES csrs (seq),
      kek_id TEXT NOT NULL,
      iv BLOB NOT NULL,
      wrapped BLOB NOT NULL
    )`,
    `INSERT INTO wrapped_keys_v3 (seq, kek_id, iv, wrapped)
       SELECT c.seq, k.kek_id, k.iv, k.wrapped FROM wrapped_keys k JOIN csrs c ON c.id = k.csr_id`,
    `DROP TABLE wrapped_keys`,
    `ALTER TABLE wrapped_keys_v3 RENAME TO wrapped_keys`,
    // The rewrap's count of keys left under old KEKs.
    `CREATE INDEX wrapped_keys_by_kek ON wrapped_keys (kek_id)`,
    `DROP INDEX csrs_by_account_tag`,
  ],
  [
    // Which registered edges may receive a certificate's key (issue 10): a
    // Geo Key Manager policy expression, or a geo_restrictions label ('us',
    // 'eu', 'highest_security'); at most one of the two, both NULL meaning
    // every registered edge with a token for the zone.
    `ALTER TABLE certificates ADD COLUMN policy TEXT`,
    `ALTER TABLE certificates ADD COLUMN geo_restriction TEXT`,
  ],
];

/**
 * Brings the object's database to SCHEMA_VERSION (tests stop earlier to
 * check a step); synchronous, so it runs before any request.
 */
export function migrate(sql: Sql, transactionSync: <T>(fn: () => T) => T, target = SCHEMA_VERSION): void {
  runMigrations(sql, transactionSync, MIGRATIONS, target);
}
