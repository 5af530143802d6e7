export { type JsonText, type Page, jsonArray } from "./page";

/**
 * One page of `table` in `order` (an indexed column) with `seq` as the
 * tie-break. A page past the middle is read from the other end of the index,
 * so OFFSET never walks more than half of it: the first and the last page
 * cost the same at any size. The OFFSET walks the index alone (the page's
 * seqs are picked first, then only their rows are read), since SQLite
 * evaluates every row an OFFSET skips. Pages in seq order deep in a large
 * table go through src/tenant/seq-ranks.ts instead.
 */
export function readPage<Row>(
  read: (statement: string, ...params: SqlStorageValue[]) => Row[],
  query: {
    table: string;
    columns: string;
    order: string;
    direction: "asc" | "desc";
    page: number;
    perPage: number;
    total: number;
    /** Rows to page through, when not the whole table (`total` must count exactly these). */
    where?: { clause: string; params: SqlStorageValue[] };
  },
): Row[] {
  const offset = (query.page - 1) * query.perPage;
  if (offset >= query.total) return [];
  const limit = Math.min(query.perPage, query.total - offset);
  const fromEnd = offset > 0 && offset + limit > query.total / 2;
  const ascending = (query.direction === "asc") !== fromEnd;
  const dir = ascending ? "ASC" : "DESC";
  const orderBy = query.order === "seq" ? `seq ${dir}` : `${query.order} ${dir}, seq ${dir}`;
  const where = query.where ? ` WHERE ${query.where.clause}` : "";
  const rows = read(
    `SELECT ${query.columns} FROM ${query.table} WHERE seq IN (SELECT seq FROM ${query.table}${where} ORDER BY ${orderBy} LIMIT ? OFFSET ?) ORDER BY ${orderBy}`,
    ...(query.where?.params ?? []),
    limit,
    fromEnd ? query.total - offset - limit : offset,
  );
  if (fromEnd) rows.reverse();
  return rows;
}
