import type { Migrations } from "../storage/migrate";

/**
 * The deployment registry's schema (docs/storage.md, "The deployment
 * registry"): append a version to change it (src/storage/migrate.ts).
 */
export const DEPLOYMENT_MIGRATIONS: Migrations = [
  [
    // Every account and zone that has been written (`accounts:<id>`,
    // `zones:<id>`): the Worker answers reads of any other without waking an
    // object, so a read never creates storage.
    `CREATE TABLE scopes (
      name TEXT PRIMARY KEY,
      created_at TEXT NOT NULL
    ) WITHOUT ROWID`,
    // The check value of every key-encryption key some data was wrapped
    // under (src/pki/keyring.ts): a KEK replaced under its id, or lost, is
    // noticed by /readyz and by npm start before it serves.
    `CREATE TABLE kek_checks (
      kek_id TEXT PRIMARY KEY,
      check_value TEXT NOT NULL,
      recorded_at TEXT NOT NULL
    ) WITHOUT ROWID`,
    // Which KEKs each scope's data is wrapped or keyed under, as the scope
    // last reported it: a KEK may be retired once no scope uses it.
    `CREATE TABLE scope_keks (
      scope TEXT NOT NULL,
      kek_id TEXT NOT NULL,
      PRIMARY KEY (scope, kek_id)
    ) WITHOUT ROWID`,
    `CREATE INDEX scope_keks_by_kek ON scope_keks (kek_id, scope)`,
    // `complete` = '1' once every scope that has data is listed in `scopes`
    // (a fresh data directory, or npm start's import of an older one).
    `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  ],
  [
    // Whether each listed scope has told the registry every KEK its data
    // uses (`scope_keks`): a scope listed by its first write has (it had no
    // data, and its gate records each KEK before wrapping under it); one
    // listed by name only (an import of a data directory from before the
    // registry, or any scope listed before this version, whose KEKs may be
    // unknown here) has not, until npm start's import sends its KEK ids or a
    // rewrap counts them. No KEK is retirable while any has not.
    `ALTER TABLE scopes ADD COLUMN keks_reported INTEGER NOT NULL DEFAULT 1`,
    `UPDATE scopes SET keks_reported = 0`,
    `CREATE INDEX scopes_unreported ON scopes (name) WHERE keks_reported = 0`,
  ],
];
