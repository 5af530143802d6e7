import { type Migrations, migrate } from "./migrate";
import { Sql } from "./sql";

/**
 * What every module of a Durable Object works with: its SQL handle and its
 * synchronous transaction. A module that writes a table is that table's only
 * writer; others read it through that module.
 */
export interface Storage {
  readonly sql: Sql;
  /** Runs `fn` as one SQLite transaction: all of its writes commit, or none. */
  transaction<T>(fn: () => T): T;
}

/**
 * The object's storage, its schema brought to the newest of `migrations`
 * first (in the constructor: synchronously, before any call is served).
 */
export function openStorage(ctx: DurableObjectState, migrations: Migrations): Storage {
  const sql = new Sql(ctx.storage.sql);
  const transaction = <T>(fn: () => T): T => ctx.storage.transactionSync(fn);
  migrate(sql, transaction, migrations);
  return { sql, transaction };
}
