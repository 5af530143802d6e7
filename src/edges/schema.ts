import type { Migrations } from "../storage/migrate";

/**
 * The edge registry's schema (docs/storage.md, "The edge registry"): append
 * a version to change it; each runs once, in order, in the object's
 * constructor (src/storage/migrate.ts).
 */
export const EDGE_MIGRATIONS: Migrations = [
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
  [
    // Each row's MAC under a key derived from a KEK (src/pki/row-seal.ts):
    // a row changed in storage is refused. Rows from before get theirs from
    // the operator's rewrap (src/edges/edge-store.ts reseal).
    `ALTER TABLE edges ADD COLUMN mac BLOB`,
    `ALTER TABLE edges ADD COLUMN mac_kek TEXT`,
    // The service's signing key (src/edges/service-key.ts), only as its wrap.
    `CREATE TABLE service_keys (
      kid TEXT PRIMARY KEY,
      kek_id TEXT NOT NULL,
      iv BLOB NOT NULL,
      wrapped BLOB NOT NULL,
      public_jwk TEXT NOT NULL,
      created_on TEXT NOT NULL
    ) WITHOUT ROWID`,
    // The KEKs this registry's data is under, with their check values (src/deployment/keyring-gate.ts).
    `CREATE TABLE kek_checks (
      kek_id TEXT PRIMARY KEY,
      check_value TEXT NOT NULL
    ) WITHOUT ROWID`,
    `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  ],
  [
    // When each edge last fetched its listing (a sync), for the fleet's metrics; not sealed: it decides nothing.
    `CREATE TABLE IF NOT EXISTS edge_syncs (edge_id TEXT PRIMARY KEY, last_sync_at TEXT NOT NULL) WITHOUT ROWID`,
  ],
];

/** The edge registry schema's newest version. */
export const EDGE_SCHEMA_VERSION = EDGE_MIGRATIONS.length;
