import type { Storage } from "../storage/storage";

/** One page of scope names, with the KEKs each one's data uses. */
export interface ScopePage {
  /** `keks_reported`: whether `kek_ids` is known to be every KEK the scope's data uses (false: listed by name only). */
  scopes: Array<{ name: string; created_at: string; kek_ids: string[]; keks_reported: boolean }>;
  /** Pass as `after` for the next page; null at the end. */
  next: string | null;
}

/**
 * A scope found in a data directory (npm start's import): its name, and the
 * KEK ids its data uses when they were read (null: by name only, from an
 * importer that did not read them).
 */
export interface ScopeImport {
  name: string;
  kek_ids: string[] | null;
}

/**
 * The scopes that have data (the only writer of `scopes` and of meta
 * `complete`). A scope is listed before its object first writes, so a read
 * of a scope that is not listed, in a complete list, can be answered as
 * empty without waking (and so creating) its object. Each listed scope has
 * reported the KEKs its data uses, or not yet (`keks_reported`): a KEK may be
 * retired only once the list is complete and every scope has.
 */
export class ScopeList {
  #complete: boolean | null = null;

  constructor(private readonly storage: Storage) {
    // A rolled-back import leaves the list as it was.
    storage.onRollback(() => (this.#complete = null));
  }

  /** Lists a scope before its object's first write (idempotent); true when it was not listed before. */
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

  /** How many listed scopes have not reported the KEKs their data uses. */
  unreported(): number {
    return this.storage.sql.one<{ n: number }>(`SELECT count(*) AS n FROM scopes WHERE keks_reported = 0`)?.n ?? 0;
  }

  /** Scopes listed by name only, after `after` by name (what a deployment-wide rewrap must visit to count their KEKs). */
  unreportedAfter(after: string, limit: number): string[] {
    return this.storage.sql
      .all<{ name: string }>(`SELECT name FROM scopes WHERE keks_reported = 0 AND name > ? ORDER BY name LIMIT ?`, after, limit)
      .map((r) => r.name);
  }

  /** The scope has now reported every KEK its data uses (a rewrap counted them). */
  markReported(name: string): void {
    this.storage.sql.run(`UPDATE scopes SET keks_reported = 1 WHERE name = ? AND keks_reported = 0`, name);
  }

  /**
   * Lists scopes found in the data (an import): each with its KEKs reported
   * when the import read them (a report is never taken back by one that did
   * not), and marks the list complete when told so. Call inside the
   * import's transaction.
   */
  import(scopes: readonly ScopeImport[], complete: boolean, now = new Date()): number {
    let added = 0;
    for (const { name, kek_ids } of scopes) {
      if (!this.has(name)) added++;
      this.storage.sql.run(
        `INSERT INTO scopes (name, created_at, keks_reported) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET keks_reported = max(keks_reported, excluded.keks_reported)`,
        name,
        now.toISOString(),
        kek_ids === null ? 0 : 1,
      );
    }
    if (complete) {
      this.storage.sql.run(`INSERT INTO meta (key, value) VALUES ('complete', '1') ON CONFLICT (key) DO UPDATE SET value = '1'`);
      this.#complete = true;
    }
    return added;
  }

  /** Scopes by name after `after` (exclusive), at most `limit`. */
  page(after: string, limit: number): ScopePage {
    const rows = this.storage.sql.all<{ name: string; created_at: string; kek_ids: string | null; keks_reported: number }>(
      `SELECT s.name, s.created_at, s.keks_reported, (SELECT group_concat(kek_id) FROM scope_keks k WHERE k.scope = s.name) AS kek_ids
       FROM scopes s WHERE s.name > ? ORDER BY s.name LIMIT ?`,
      after,
      limit,
    );
    const scopes = rows.map((r) => ({ name: r.name, created_at: r.created_at, kek_ids: r.kek_ids ? r.kek_ids.split(",").sort() : [], keks_reported: r.keks_reported === 1 }));
    return { scopes, next: rows.length === limit ? rows[rows.length - 1]!.name : null };
  }
}
