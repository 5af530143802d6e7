import type { Migrations } from "../storage/migrate";

/**
 * A hostname registry shard's schema (docs/storage.md, "The hostname
 * registry"): append a version to change it (src/storage/migrate.ts).
 */
export const HOSTNAME_MIGRATIONS: Migrations = [
  [
    // Which zone holds each custom hostname: a hostname exists once across
    // the deployment, as on Cloudflare (1406 for a second one).
    `CREATE TABLE claims (
      hostname TEXT PRIMARY KEY,
      zone_id TEXT NOT NULL,
      custom_hostname_id TEXT NOT NULL,
      claimed_at TEXT NOT NULL
    ) WITHOUT ROWID`,
    // Pending http-01 challenges, answered at /.well-known/acme-challenge/{token}
    // for the hostname in Host. A key authorization is public by nature
    // (RFC 8555 §8.3); nothing else is kept here.
    `CREATE TABLE challenges (
      token TEXT PRIMARY KEY,
      hostname TEXT NOT NULL,
      key_authorization TEXT NOT NULL,
      zone_id TEXT NOT NULL,
      custom_hostname_id TEXT NOT NULL,
      expires_at TEXT NOT NULL
    ) WITHOUT ROWID`,
    `CREATE INDEX challenges_by_hostname ON challenges (custom_hostname_id)`,
  ],
];
