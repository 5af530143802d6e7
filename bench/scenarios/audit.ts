// The audit trail: its newest page of 50 at a small and a large number of
// entries, a page filtered by action.type, and what an entry costs on disk
// (the database's growth between the two sizes). Entries are seeded through
// the real setEntitlement RPC (each one a hash-chained entry with a small
// metadata object).
import type { Bench } from "../lib/bench.ts";

/** One trail size: its database bytes and the idle p50 of its two pages. */
export interface AuditPoint {
  size: number;
  bytes: number;
  idleP50: number | null;
  filteredIdleP50: number | null;
}

export async function auditTrail(bench: Bench): Promise<{ small: AuditPoint; large: AuditPoint }> {
  const sizes = bench.quick ? [1_000, 20_000] : [1_000, 1_000_000];
  const seconds = bench.quick ? { duration: 2, idle: 2 } : { duration: 5, idle: 4 };
  const { pid } = bench.workerd;
  const points: AuditPoint[] = [];
  for (const size of sizes) {
    await bench.seedAudit("bench-audit", size);
    const bytes = (await bench.client.stats("accounts", "bench-audit")).databaseBytes;
    const auditList = (query: string) => ({ url: `${bench.client.api}/accounts/bench-audit/audit_logs?per_page=50${query}`, headers: bench.auth });
    const newest = await bench.measure(`audit log, newest page of 50, ${size.toLocaleString("en")} entries`, null, auditList(""), { pid, ...seconds });
    const filtered = await bench.measure(`audit log, page of 50 by action.type, ${size.toLocaleString("en")} entries`, null, auditList("&action.type=update"), { pid, ...seconds });
    points.push({ size, bytes, idleP50: newest.idle.p50, filteredIdleP50: filtered.idle.p50 });
  }
  const [small, large] = [points[0], points.at(-1)];
  if (!small || !large) throw new Error("the audit scenario measured no size");
  bench.results.storage.push({ scope: "accounts:bench-audit", keyType: "audit entries", n: large.size - small.size, growthPerCsr: (large.bytes - small.bytes) / (large.size - small.size) });
  return { small, large };
}
