import type { TenantCall } from "../core/call";
import type { AuditTrail } from "./audit-trail";
import type { Storage } from "../storage/storage";

export interface LinkReport {
  account_id: string | null;
  previous: string | null;
  csrs_retagged: number;
  /** This link's number in the zone's order of links, for the directory (which ignores older ones). */
  revision: number;
}

/**
 * The account a zone's object belongs to, as the operator recorded it
 * (meta `account`; this module is its only writer). Account objects are
 * their own account. Kept in memory: the object is the only writer.
 */
export class AccountLink {
  #cached: string | null | undefined = undefined;

  constructor(
    private readonly storage: Storage,
    private readonly audit: AuditTrail,
  ) {}

  /** The zone's account, or null when none is recorded. */
  current(): string | null {
    if (this.#cached === undefined) {
      this.#cached = this.storage.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'account'`)?.value ?? null;
    }
    return this.#cached;
  }

  /**
   * Makes `accountId` the zone's account (null: none): records it, has
   * `retag` stamp the zone's CSRs with it, and records the move in the audit
   * trail, in one transaction. Setting the account it already has records
   * nothing. Every link gets the next revision (meta `account_revision`),
   * which orders concurrent moves of the zone for the directory, and is above
   * `floor`, the revision the directory already holds (higher than this
   * object's own only when the two were restored from different moments).
   */
  link(call: TenantCall, accountId: string | null, floor: number, retag: (accountId: string | null) => number): LinkReport {
    return this.storage.transaction(() => {
      const previous = this.current();
      this.#cached = undefined;
      if (accountId === null) this.storage.sql.run(`DELETE FROM meta WHERE key = 'account'`);
      else this.storage.sql.run(`INSERT INTO meta (key, value) VALUES ('account', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, accountId);
      const last = Number(this.storage.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'account_revision'`)?.value ?? "0");
      const revision = Math.max(last, floor) + 1;
      this.storage.sql.run(
        `INSERT INTO meta (key, value) VALUES ('account_revision', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
        String(revision),
      );
      const retagged = retag(accountId);
      if (previous !== accountId) {
        this.audit.record(call, {
          action: accountId === null ? "delete" : "update",
          resource: { type: "zone_account", id: call.scope.id },
          result: true,
          metadata: { account_id: accountId, previous, csrs_retagged: retagged },
        });
      }
      return { account_id: accountId, previous, csrs_retagged: retagged, revision };
    });
  }
}
