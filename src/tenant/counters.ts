import type { Sql } from "../core/sql";

export type CounterName = "csrs" | "certificates";

/**
 * Row counts kept in step with inserts and deletes, in the same transaction,
 * so lists and quotas never count rows. The only writer of `counters`.
 */
export class Counters {
  constructor(private readonly sql: Sql) {}

  get(name: CounterName): number {
    return this.sql.one<{ value: number }>(`SELECT value FROM counters WHERE name = ?`, name)?.value ?? 0;
  }

  bump(name: CounterName, by: number): void {
    this.sql.run(`UPDATE counters SET value = value + ? WHERE name = ?`, by, name);
  }
}
