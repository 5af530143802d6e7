import type { Sql } from "../storage/sql";

/**
 * Rows of a table; CSRs per block of seqs (`csrs@<block>`, src/tenant/seq-ranks.ts);
 * audit entries of one action type (`audit:<action>`).
 */
export type CounterName = "csrs" | "certificates" | "custom_hostnames" | `csrs@${string}` | `audit:${string}` | `metric:${string}`;

/**
 * (`metric:<name>`: cumulative counts a scope reports to the fleet's metrics, src/metrics/fleet-metrics.ts.)
 *
 * Row counts kept in step with inserts and deletes, in the same transaction,
 * so lists and quotas never count rows. The only writer of `counters`.
 */
export class Counters {
  constructor(private readonly sql: Sql) {}

  get(name: CounterName): number {
    return this.sql.one<{ value: number }>(`SELECT value FROM counters WHERE name = ?`, name)?.value ?? 0;
  }

  /** Every counter whose name starts with `prefix`, in name order. */
  range(prefix: string): Array<{ name: string; value: number }> {
    return this.sql.all<{ name: string; value: number }>(
      `SELECT name, value FROM counters WHERE name >= ? AND name < ? ORDER BY name`,
      prefix,
      `${prefix}\u{10FFFF}`,
    );
  }

  bump(name: CounterName, by: number): void {
    // Table counters exist from the schema's first version; others appear on first use.
    this.sql.run(`INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value`, name, by);
  }
}
