import type { CertificateFact, ScopeReport } from "../metrics/fleet-metrics";
import type { Storage } from "../storage/storage";
import type { Counters } from "./counters";
import type { PoolState } from "./key-pool";

/**
 * What a scope reports of itself to the fleet's metrics: its custom
 * certificates and custom hostnames' certificates (expiry and status), its
 * key pool when it has one, and its cumulative `metric:*` counters.
 */
export function scopeReport(storage: Storage, scope: string, pool: PoolState, counters: Counters, now: Date): ScopeReport {
  const certificates: CertificateFact[] = [
    ...storage.sql
      .all<{ id: string; custom_csr_id: string; expires_on: string }>(`SELECT id, custom_csr_id, expires_on FROM certificates`)
      .map((c): CertificateFact => ({ id: c.id, kind: "custom_certificate", custom_csr_id: c.custom_csr_id, hostname: null, expires_on: c.expires_on, status: "active" })),
    ...storage.sql
      .all<{ id: string; hostname: string; custom_csr_id: string | null; expires_on: string; ssl_status: string }>(
        `SELECT id, hostname, custom_csr_id, expires_on, ssl_status FROM custom_hostnames WHERE expires_on IS NOT NULL`,
      )
      .map((h): CertificateFact => ({ id: h.id, kind: "custom_hostname", custom_csr_id: h.custom_csr_id, hostname: h.hostname, expires_on: h.expires_on, status: h.ssl_status })),
    // Managed certificates' RSA twins, by their own ids (each expires on its own).
    ...storage.sql
      .all<{ id: string; hostname: string; expires_on: string }>(
        `SELECT t.id, h.hostname, t.expires_on FROM hostname_certificates t JOIN custom_hostnames h ON h.id = t.custom_hostname_id`,
      )
      .map((t): CertificateFact => ({ id: t.id, kind: "custom_hostname", custom_csr_id: null, hostname: t.hostname, expires_on: t.expires_on, status: "active" })),
  ];
  const metrics = counters.range("metric:");
  return {
    scope,
    at: now.toISOString(),
    certificates,
    pool: pool.started ? { size: pool.size, available: pool.available } : null,
    counters: Object.fromEntries(metrics.map((m) => [m.name.slice("metric:".length), m.value])),
  };
}
