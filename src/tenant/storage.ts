import type { Sql } from "./sql";

/**
 * What every module of a tenant object works with: its SQL handle and its
 * synchronous transaction. A module that writes a table is that table's only
 * writer; others read it through that module.
 */
export interface TenantStorage {
  readonly sql: Sql;
  /** Runs `fn` as one SQLite transaction: all of its writes commit, or none. */
  transaction<T>(fn: () => T): T;
}
