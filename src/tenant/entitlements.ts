import type { TenantCall } from "../core/call";
import type { AuditTrail } from "./audit-trail";
import type { Storage } from "../storage/storage";

export interface Entitlement {
  granted: boolean;
  quota: number;
}

/** The deployment's defaults (wrangler.toml vars), for a scope with no row of its own. */
export function defaultEntitlement(env: { DEFAULT_CSR_ACCESS: string; DEFAULT_CSR_QUOTA: string }): Entitlement {
  const quota = Number.parseInt(env.DEFAULT_CSR_QUOTA, 10);
  return { granted: env.DEFAULT_CSR_ACCESS === "granted", quota: Number.isFinite(quota) ? quota : 0 };
}

/**
 * The scope's entitlement. The only writer of `entitlement`, so a copy in
 * memory stays true; it is dropped whenever the row is written, and when a
 * transaction rolls back.
 */
export class Entitlements {
  #cached: Entitlement | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly defaults: Entitlement,
    private readonly audit: Pick<AuditTrail, "record">,
  ) {
    storage.onRollback(() => {
      this.#cached = null;
    });
  }

  current(): Entitlement {
    this.#cached ??= this.#read();
    return this.#cached;
  }

  /** Sets the entitlement, recording the change (from what, to what) in the same transaction. */
  set(call: TenantCall, entitlement: Entitlement): void {
    const previous = this.current();
    this.#cached = null;
    this.storage.transaction(() => {
      this.storage.sql.run(
        `INSERT INTO entitlement (singleton, granted, quota) VALUES (1, ?, ?)
         ON CONFLICT (singleton) DO UPDATE SET granted = excluded.granted, quota = excluded.quota`,
        entitlement.granted ? 1 : 0,
        entitlement.quota,
      );
      this.audit.record(call, {
        action: "update",
        resource: { type: "entitlement", id: null },
        result: true,
        metadata: { granted: entitlement.granted, quota: entitlement.quota, previous },
      });
    });
  }

  #read(): Entitlement {
    const row = this.storage.sql.one<{ granted: number; quota: number }>(`SELECT granted, quota FROM entitlement`);
    return row ? { granted: row.granted === 1, quota: row.quota } : this.defaults;
  }
}
