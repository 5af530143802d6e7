import type { TenantCall } from "../core/call";
import type { AuditTrail } from "./audit-trail";
import type { Meta } from "./meta";

export interface LinkReport {
  account_id: string | null;
  previous: string | null;
  csrs_retagged: number;
  /** This link's number in the zone's order of links, for the directory (which ignores older ones). */
  revision: number;
}

/**
 * The account a zone's object belongs to, as the operator recorded it (meta
 * `account` and `account_revision`). Account objects are their own account.
 */
export class AccountLink {
  constructor(
    private readonly meta: Meta,
    private readonly audit: Pick<AuditTrail, "record">,
  ) {}

  /** The zone's account, or null when none is recorded. */
  current(): string | null {
    return this.meta.get("account");
  }

  /**
   * Makes `accountId` the zone's account (null: none), and records the move
   * in the audit trail with how many CSRs were `retagged` (the caller's step
   * in the same transaction). Setting the account it already has records
   * nothing. Every link gets the next revision, which orders concurrent
   * moves of the zone for the directory, and is above `floor`, the revision
   * the directory already holds (higher than this object's own only when the
   * two were restored from different moments). Call inside a transaction.
   */
  link(call: TenantCall, accountId: string | null, floor: number, retagged: number): LinkReport {
    const previous = this.current();
    this.meta.set("account", accountId);
    const revision = Math.max(Number(this.meta.get("account_revision") ?? "0"), floor) + 1;
    this.meta.set("account_revision", String(revision));
    if (previous !== accountId) {
      this.audit.record(call, {
        action: accountId === null ? "delete" : "update",
        resource: { type: "zone_account", id: call.scope.id },
        result: true,
        metadata: { account_id: accountId, previous, csrs_retagged: retagged },
      });
    }
    return { account_id: accountId, previous, csrs_retagged: retagged, revision };
  }
}
