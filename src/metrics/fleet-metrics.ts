import { DurableObject } from "cloudflare:workers";
import { type Result, ok } from "../core/result";
import type { Migrations } from "../storage/migrate";
import { type Storage, openStorage } from "../storage/storage";
import { type Exposition, labels } from "./exposition";

/** One certificate as a scope reports it: what the expiry series carry. */
export interface CertificateFact {
  id: string;
  kind: "custom_certificate" | "custom_hostname";
  custom_csr_id: string | null;
  hostname: string | null;
  expires_on: string;
  /** `active`/`expired` for a custom certificate; a custom hostname's ssl.status. */
  status: string;
}

/** What a scope reports of itself: its certificates, its key pool, and its cumulative counters (`metric:*`). */
export interface ScopeReport {
  scope: string;
  at: string;
  certificates: CertificateFact[];
  pool: { size: number; available: number } | null;
  counters: Record<string, number>;
}

const MIGRATIONS: Migrations = [
  [
    `CREATE TABLE scopes (scope TEXT PRIMARY KEY, reported_at TEXT NOT NULL, pool_size INTEGER NOT NULL, pool_available INTEGER NOT NULL)`,
    `CREATE TABLE certificates (
      scope TEXT NOT NULL,
      id TEXT NOT NULL,
      kind TEXT NOT NULL,
      custom_csr_id TEXT,
      hostname TEXT,
      expires_on TEXT NOT NULL,
      status TEXT NOT NULL,
      PRIMARY KEY (scope, id)
    ) WITHOUT ROWID`,
    `CREATE INDEX certificates_by_expiry ON certificates (expires_on)`,
    `CREATE TABLE counters (scope TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (scope, name)) WITHOUT ROWID`,
  ],
];

/** Cumulative counters the fleet sums, with their HELP text (the scopes keep them as `metric:<name>`). */
export const FLEET_COUNTERS: Record<string, string> = {
  acme_orders_placed: "ACME orders placed with a CA (each attempt)",
  acme_orders_failed: "ACME orders that failed (each attempt)",
  acme_certificates_issued: "Managed certificates issued and installed (first ones and renewals, RSA twins included)",
  acme_renewals_attempted: "Renewal orders placed",
  acme_renewals_failed: "Renewal orders that failed",
  webhook_deliveries_sent: "Webhook notifications answered with a 2xx",
  webhook_deliveries_failed: "Webhook notifications given up on after their last attempt",
};

const seconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);

/**
 * The fleet's metrics, as the scopes report them: one object for the
 * deployment, named "fleet". A scope's object reports itself (its
 * certificates, key pool and counters) whenever its data changed, a second
 * or so after the change, replacing what it reported before; a scrape reads
 * this object only, so it answers in time bounded by the size of the fleet's
 * certificates, never by waking every scope's object.
 */
export class FleetMetrics extends DurableObject<Env> {
  readonly #storage: Storage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#storage = openStorage(ctx, MIGRATIONS);
  }

  /** Replaces what a scope reported before with `report`, in one transaction. */
  report(report: ScopeReport): Result<null, never> {
    const sql = this.#storage.sql;
    this.#storage.transaction(() => {
      sql.run(
        `INSERT INTO scopes (scope, reported_at, pool_size, pool_available) VALUES (?, ?, ?, ?)
         ON CONFLICT (scope) DO UPDATE SET reported_at = excluded.reported_at, pool_size = excluded.pool_size, pool_available = excluded.pool_available`,
        report.scope,
        report.at,
        report.pool?.size ?? 0,
        report.pool?.available ?? 0,
      );
      sql.run(`DELETE FROM certificates WHERE scope = ?`, report.scope);
      for (const c of report.certificates) {
        sql.run(
          `INSERT INTO certificates (scope, id, kind, custom_csr_id, hostname, expires_on, status) VALUES (?, ?, ?, ?, ?, ?, ?)`,
          report.scope,
          c.id,
          c.kind,
          c.custom_csr_id,
          c.hostname,
          c.expires_on,
          c.status,
        );
      }
      for (const [name, value] of Object.entries(report.counters)) {
        sql.run(`INSERT INTO counters (scope, name, value) VALUES (?, ?, ?) ON CONFLICT (scope, name) DO UPDATE SET value = excluded.value`, report.scope, name, value);
      }
    });
    return ok(null);
  }

  /**
   * The fleet's series, written into `out`: per-certificate expiry for the
   * `limit` soonest to expire (the bound on cardinality; how many were left
   * out is a series too), the soonest expiry per zone (every zone), counts by
   * kind and status, managed certificates by status, the key pools, and the
   * summed counters.
   */
  render(limit: number, now: number): Result<string, never> {
    const sql = this.#storage.sql;
    const out: Exposition = [];
    const zoneOf = (scope: string) => (scope.startsWith("zones:") ? scope.slice(6) : "");

    out.push("# HELP custom_csr_certificate_expiry_timestamp_seconds When a certificate expires (notAfter), for the soonest-expiring ones (METRICS_MAX_CERTIFICATE_SERIES).");
    out.push("# TYPE custom_csr_certificate_expiry_timestamp_seconds gauge");
    const soonest = sql.all<{ scope: string; id: string; kind: string; custom_csr_id: string | null; hostname: string | null; expires_on: string }>(
      `SELECT scope, id, kind, custom_csr_id, hostname, expires_on FROM certificates ORDER BY expires_on, scope, id LIMIT ?`,
      limit,
    );
    for (const c of soonest) {
      out.push(
        `custom_csr_certificate_expiry_timestamp_seconds${labels({ zone: zoneOf(c.scope), certificate_id: c.id, kind: c.kind, custom_csr_id: c.custom_csr_id ?? "", hostname: c.hostname ?? "" })} ${seconds(c.expires_on)}`,
      );
    }
    const total = sql.one<{ n: number }>(`SELECT count(*) AS n FROM certificates`)!.n;
    out.push("# HELP custom_csr_certificate_expiry_series_omitted Certificates whose expiry series was left out by the cardinality bound (they expire later than every one listed).");
    out.push("# TYPE custom_csr_certificate_expiry_series_omitted gauge");
    out.push(`custom_csr_certificate_expiry_series_omitted ${Math.max(0, total - soonest.length)}`);

    out.push("# HELP custom_csr_zone_certificate_expiry_min_timestamp_seconds When the zone's soonest-expiring certificate expires.");
    out.push("# TYPE custom_csr_zone_certificate_expiry_min_timestamp_seconds gauge");
    for (const z of sql.all<{ scope: string; at: string }>(`SELECT scope, min(expires_on) AS at FROM certificates GROUP BY scope ORDER BY scope`)) {
      out.push(`custom_csr_zone_certificate_expiry_min_timestamp_seconds${labels({ zone: zoneOf(z.scope) })} ${seconds(z.at)}`);
    }

    out.push("# HELP custom_csr_certificates Certificates by kind and status (custom hostnames: their ssl.status; expired ones as expired).");
    out.push("# TYPE custom_csr_certificates gauge");
    const nowIso = new Date(now).toISOString();
    for (const g of sql.all<{ kind: string; status: string; n: number }>(
      `SELECT kind, CASE WHEN expires_on < ? AND status = 'active' THEN 'expired' ELSE status END AS status, count(*) AS n FROM certificates GROUP BY 1, 2 ORDER BY 1, 2`,
      nowIso,
    )) {
      out.push(`custom_csr_certificates${labels({ kind: g.kind, status: g.status })} ${g.n}`);
    }

    out.push("# HELP custom_csr_key_pool_keys_available RSA keys generated ahead of demand and not yet used, per scope with a pool.");
    out.push("# TYPE custom_csr_key_pool_keys_available gauge");
    const pools = sql.all<{ scope: string; pool_size: number; pool_available: number }>(`SELECT scope, pool_size, pool_available FROM scopes WHERE pool_size > 0 ORDER BY scope`);
    for (const p of pools) out.push(`custom_csr_key_pool_keys_available${labels({ scope: p.scope })} ${p.pool_available}`);
    out.push("# HELP custom_csr_key_pool_size The pool size the operator set, per scope with a pool.");
    out.push("# TYPE custom_csr_key_pool_size gauge");
    for (const p of pools) out.push(`custom_csr_key_pool_size${labels({ scope: p.scope })} ${p.pool_size}`);

    const sums = new Map(sql.all<{ name: string; total: number }>(`SELECT name, sum(value) AS total FROM counters GROUP BY name`).map((r) => [r.name, r.total]));
    for (const [name, help] of Object.entries(FLEET_COUNTERS)) {
      out.push(`# HELP custom_csr_${name}_total ${help}.`);
      out.push(`# TYPE custom_csr_${name}_total counter`);
      out.push(`custom_csr_${name}_total ${sums.get(name) ?? 0}`);
    }

    const reporting = sql.one<{ n: number; oldest: string | null }>(`SELECT count(*) AS n, min(reported_at) AS oldest FROM scopes`)!;
    out.push("# HELP custom_csr_scopes_reporting Accounts and zones whose objects have reported their metrics.");
    out.push("# TYPE custom_csr_scopes_reporting gauge");
    out.push(`custom_csr_scopes_reporting ${reporting.n}`);
    return ok(out.join("\n"));
  }
}
