import type { CounterName, Counters } from "./counters";
import type { Sql } from "../storage/sql";

/**
 * Positions in a table's `seq` order without OFFSET walks: the table's rows
 * are counted per block of 2^BLOCK_BITS seqs (counters `<prefix>@<block>`,
 * kept in the same transaction as each insert and delete), so the row at
 * rank r is found by summing block counts (~50 blocks at 100,000 rows) and
 * skipping fewer than 2,048 rows within one block. A page deep in a large
 * table costs about what the first page does.
 */
export const BLOCK_BITS = 11;

/** The counter of the block holding `seq`; zero-padded, so counter names sort as blocks do. */
export function blockCounter(prefix: string, seq: number): CounterName {
  return `${prefix}@${String(Math.floor(seq / 2 ** BLOCK_BITS)).padStart(10, "0")}` as CounterName;
}

/** One page of `table` in seq order (asc or desc), by rank, using the block counts under `prefix`. */
export function readRankPage(
  sql: Sql,
  counters: Counters,
  query: { table: string; columns: string; prefix: string; direction: "asc" | "desc"; page: number; perPage: number; total: number },
): SqlStorageValue[][] {
  const offset = (query.page - 1) * query.perPage;
  if (offset >= query.total) return [];
  const limit = Math.min(query.perPage, query.total - offset);
  // The page's first row counted from the start of seq order.
  const start = query.direction === "asc" ? offset : query.total - offset - limit;
  let before = 0;
  let from = 0;
  for (const { name, value } of counters.range(`${query.prefix}@`)) {
    if (before + value > start) {
      from = Number(name.slice(query.prefix.length + 1)) * 2 ** BLOCK_BITS;
      break;
    }
    before += value;
  }
  const rows = sql.raw(
    `SELECT ${query.columns} FROM ${query.table} WHERE seq >= ? ORDER BY seq LIMIT ? OFFSET ?`,
    from,
    limit,
    start - before,
  );
  if (query.direction === "desc") rows.reverse();
  return rows;
}
