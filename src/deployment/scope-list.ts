import type { Storage } from "../storage/storage";

/** One page of scope names, with the KEKs each one's data uses. */
export interface ScopePage {
  scopes: Array<{ name: string; created_at: string; kek_ids: string[] }>;
  /** Pass as `after` for the next page; null at the end. */
  next: string | null;
}

/**
 * The scopes that have data (the only writer of `scopes` and of meta
 * `complete`). A scope is listed before its object first writes, so a read
 * of a scope that is not listed, in a complete list, can be answered as
 * empty without waking (and so creating) its object.
 */
export class ScopeList {
  #complete: boolean | null = null;

  constructor(private readonly storage: Storage) {}

  /** Lists a scope (idempotent); true when it was not listed before. */
  enlist(name: string, now = new Date()): boolean {
    return this.storage.sql.run(`INSERT INTO scopes (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, now.toISOString()) > 0;
  }

  has(name: string): boolean {
    return this.storage.sql.one(`SELECT 1 AS found FROM scopes WHERE name = ?`, name) !== null;
  }

  /** Whether every scope with data is listed (so an unlisted one has none). */
  complete(): boolean {
    this.#complete ??= this.storage.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'complete'`)?.value === "1";
    return this.#complete;
  }

  /** Lists scopes found in the data (an import), and marks the list complete when told so. */
  import(names: readonly string[], complete: boolean, now = new Date()): number {
    return this.storage.transaction(() => {
      let added = 0;
      for (const name of names) if (this.enlist(name, now)) added++;
      if (complete) {
        this.storage.sql.run(`INSERT INTO meta (key, value) VALUES ('complete', '1') ON CONFLICT (key) DO UPDATE SET value = '1'`);
        this.#complete = true;
      }
      return added;
    });
  }

  /** Scopes by name after `after` (exclusive), at most `limit`. */
  page(after: string, limit: number): ScopePage {
    const rows = this.storage.sql.all<{ name: string; created_at: string; kek_ids: string | null }>(
      `SELECT s.name, s.created_at, (SELECT group_concat(kek_id) FROM scope_keks k WHERE k.scope = s.name) AS kek_ids
       FROM scopes s WHERE s.name > ? ORDER BY s.name LIMIT ?`,
      after,
      limit,
    );
    const scopes = rows.map((r) => ({ name: r.name, created_at: r.created_at, kek_ids: r.kek_ids ? r.kek_ids.split(",").sort() : [] }));
    return { scopes, next: rows.length === limit ? rows[rows.length - 1]!.name : null };
  }
}
