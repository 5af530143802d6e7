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
];

/** The edge registry schema's newest version. */
export const EDGE_SCHEMA_VERSION = EDGE_MIGRATIONS.length;
