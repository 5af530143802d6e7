import type { Sql } from "./sql";

/**
 * The account a zone's object belongs to, as the operator recorded it
 * (meta `account`; this module is its only writer). Account objects are
 * their own account. Kept in memory: the object is the only writer.
 */
export class AccountLink {
  #cached: string | null | undefined = undefined;

  constructor(private readonly sql: Sql) {}

  /** The zone's account, or null when none is recorded. */
  current(): string | null {
    if (this.#cached === undefined) {
      this.#cached = this.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'account'`)?.value ?? null;
    }
    return this.#cached;
  }

  /** Records the account (null: none), inside the caller's transaction. */
  set(accountId: string | null): void {
    this.#cached = undefined;
    if (accountId === null) this.sql.run(`DELETE FROM meta WHERE key = 'account'`);
    else this.sql.run(`INSERT INTO meta (key, value) VALUES ('account', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, accountId);
  }
}
