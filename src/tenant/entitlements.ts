import type { Sql } from "../core/sql";

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
 * memory stays true; it is dropped whenever the row is written.
 */
export class Entitlements {
  #cached: Entitlement | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly defaults: Entitlement,
  ) {}

  current(): Entitlement {
    this.#cached ??= this.#read();
    return this.#cached;
  }

  set(entitlement: Entitlement): void {
    this.sql.run(
      `INSERT INTO entitlement (singleton, granted, quota) VALUES (1, ?, ?)
       ON CONFLICT (singleton) DO UPDATE SET granted = excluded.granted, quota = excluded.quota`,
      entitlement.granted ? 1 : 0,
      entitlement.quota,
    );
    this.#cached = null;
  }

  #read(): Entitlement {
    const row = this.sql.one<{ granted: number; quota: number }>(`SELECT granted, quota FROM entitlement`);
    return row ? { granted: row.granted === 1, quota: row.quota } : this.defaults;
  }
}
