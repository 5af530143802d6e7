import type { Sql } from "./sql";

/**
 * Brings a Durable Object's database to `target`: runs each step of
 * `migrations` after the stored version, in one synchronous transaction, and
 * records the new version in `schema_version`. Synchronous, so it runs in the
 * constructor before any request (cloudflare/agents' `_ensureSchema()`).
 */
export function runMigrations(
  sql: Sql,
  transactionSync: <T>(fn: () => T) => T,
  migrations: readonly (readonly string[])[],
  target: number,
): void {
  sql.run(`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`);
  const current = sql.one<{ version: number }>(`SELECT version FROM schema_version`)?.version ?? 0;
  if (current >= target) return;
  transactionSync(() => {
    for (let v = current; v < target; v++) {
      for (const statement of migrations[v]!) sql.run(statement);
    }
    sql.run(`DELETE FROM schema_version`);
    sql.run(`INSERT INTO schema_version (version) VALUES (?)`, target);
  });
}
