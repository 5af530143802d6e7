import type { Storage } from "../storage/storage";

/**
 * The keys of the tenant's `meta` table, each a single value:
 * - `scope`: the scope this object holds, recorded at its first write;
 * - `account`, `account_revision`: a zone's recorded account, and the number
 *   of its latest link (the directory orders concurrent moves by it);
 * - `created_at_follows_seq`: '1' when CSR creation times never go backwards
 *   (set by schema version 6, which checked the CSRs made before it);
 * - `metrics_reported`: the audit trail's length when the scope last reported
 *   its metrics (a longer trail: something changed, report again);
 * - `pool_empty_told_at`, `audit_break_told`: when the scope last raised
 *   custom_csr_key_pool_empty (at most hourly), and the audit break it last
 *   raised custom_csr_audit_chain_failed for (once per break).
 * (Objects of an earlier version may also hold `placements_sealed`, no longer read.)
 */
export type MetaKey = "scope" | "account" | "account_revision" | "created_at_follows_seq" | "metrics_reported" | "pool_empty_told_at" | "audit_break_told";

/**
 * The tenant's `meta` table: its only reader and writer at run time (the
 * migrations write `created_at_follows_seq` once, as they make the table).
 * Values are kept in memory after their first read, since this object is the
 * only writer; a write updates the copy, and a transaction that rolls back
 * drops every copy (the write it held never happened).
 */
export class Meta {
  readonly #copies = new Map<MetaKey, string | null>();

  constructor(private readonly storage: Storage) {
    storage.onRollback(() => this.#copies.clear());
  }

  get(key: MetaKey): string | null {
    let value = this.#copies.get(key);
    if (value === undefined) {
      value = this.storage.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key)?.value ?? null;
      this.#copies.set(key, value);
    }
    return value;
  }

  /** Sets `key` (null deletes it). Call inside the transaction of the change it belongs to. */
  set(key: MetaKey, value: string | null): void {
    if (value === null) this.storage.sql.run(`DELETE FROM meta WHERE key = ?`, key);
    else this.storage.sql.run(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value);
    this.#copies.set(key, value);
  }
}
