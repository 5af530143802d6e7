import type { Sql } from "./sql";

/** One migration step: SQL, or a function for what plain SQL cannot decide. */
export type MigrationStep = string | ((sql: Sql) => void);

/**
 * A Durable Object's schema: its versions in order, each a list of steps.
 * The schema's version is the number of versions (the array's length).
 */
export type Migrations = ReadonlyArray<readonly MigrationStep[]>;

/**
 * Brings a Durable Object's database to `target` (default: every version in
 * `migrations`), in one transaction, recording the version reached in
 * `schema_version`. Synchronous, so it runs in the constructor before any
 * request (the agents SDK's `_ensureSchema`). Every class of this Worker
 * migrates through here; each keeps its own list of versions.
 */
export function migrate(
  sql: Sql,
  transactionSync: <T>(fn: () => T) => T,
  migrations: Migrations,
  target: number = migrations.length,
): void {
  sql.run(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`);
  const current = sql.one<{ version: number }>(`SELECT version FROM schema_version`)?.version ?? 0;
  if (current >= target) return;
  transactionSync(() => {
    for (let v = current; v < target; v++) {
      for (const step of migrations[v]!) {
        if (typeof step === "string") sql.run(step);
        else step(sql);
      }
    }
    sql.run(`DELETE FROM schema_version`);
    sql.run(`INSERT INTO schema_version (version) VALUES (?)`, target);
  });
}
