import { type Migrations, migrate } from "./migrate";
import { Sql } from "./sql";

/**
 * What every module of a Durable Object works with: its SQL handle and its
 * synchronous transaction. A module that writes a table is that table's only
 * writer; others read it through that module.
 */
export interface Storage {
  readonly sql: Sql;
  /** Runs `fn` as one SQLite transaction: all of its writes commit, or none (it threw). */
  transaction<T>(fn: () => T): T;
  /**
   * Calls `forget` whenever a transaction rolls back: a module that keeps a
   * copy of a row in memory drops it there, since the copy may hold a write
   * that never committed.
   */
  onRollback(forget: () => void): void;
}

/** The transaction of `ctx`, telling the rollback listeners when one is undone. */
function transactions(ctx: DurableObjectState): Pick<Storage, "transaction" | "onRollback"> {
  const listeners: Array<() => void> = [];
  return {
    transaction<T>(fn: () => T): T {
      try {
        return ctx.storage.transactionSync(fn);
      } catch (error) {
        for (const forget of listeners) forget();
        throw error;
      }
    },
    onRollback(forget) {
      listeners.push(forget);
    },
  };
}

/**
 * The object's storage, its schema brought to the newest of `migrations`
 * first (in the constructor: synchronously, before any call is served).
 */
export function openStorage(ctx: DurableObjectState, migrations: Migrations): Storage {
  const sql = new Sql(ctx.storage.sql);
  const { transaction, onRollback } = transactions(ctx);
  migrate(sql, transaction, migrations);
  return { sql, transaction, onRollback };
}

/** Storage whose schema is made at the first write rather than in the constructor. */
export interface LazyStorage extends Storage {
  /** Whether the database has its schema (anything was ever written). */
  readonly exists: boolean;
  /** Brings the schema to the newest version (a no-op once it exists). */
  create(): void;
}

/**
 * The object's storage for a class whose objects may be asked about before
 * anything is written to them (a tenant read by an API token before its
 * first write): an existing database is migrated at once, as openStorage
 * does; an empty one is left empty, not even given a schema, until the
 * object's first write calls `create`. Reading sqlite_master writes nothing.
 */
export function openLazyStorage(ctx: DurableObjectState, migrations: Migrations): LazyStorage {
  const sql = new Sql(ctx.storage.sql);
  const { transaction, onRollback } = transactions(ctx);
  let exists = sql.one(`SELECT 1 AS found FROM sqlite_master LIMIT 1`) !== null;
  if (exists) migrate(sql, transaction, migrations);
  return {
    sql,
    transaction,
    onRollback,
    get exists() {
      return exists;
    },
    create() {
      if (exists) return;
      migrate(sql, transaction, migrations);
      exists = true;
    },
  };
}
