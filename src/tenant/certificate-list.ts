import type { Sql } from "../storage/sql";
import { CERTIFICATE_COLUMNS, type CertificateListQuery, type CertificateRow } from "./certificate-records";

// Lists run highest priority first, then in upload order (Cloudflare: "the
// higher priority will break ties"). The index certificates_by_priority
// (schema version 16) is in this order, and is walked backwards for the
// reverse; it holds expires_on too, so a status filter is decided in the
// index without reading a row (a row holds its PEM chain).
const LIST_ORDER = "priority DESC, uploaded_on ASC, seq ASC";
const REVERSE_ORDER = "priority ASC, uploaded_on DESC, seq DESC";

/** A WHERE clause of this module's own text, every value bound. */
type Filter = { clause: string; params: SqlStorageValue[] };

/**
 * The query's search requirements as one WHERE clause (null: none, every
 * certificate). `status` compares `expires_on` with `now` as a record's
 * status is derived (active until `expires_on`, then expired; both are
 * toISOString() text, so text order is time order); a status this service
 * never has matches nothing. `match` joins the requirements with AND
 * (`all`, Cloudflare's default) or OR (`any`); with one, both are the same.
 */
function searchFilter(query: CertificateListQuery, now: string): Filter | null {
  const requirements: Filter[] = [];
  if (query.status === "active") requirements.push({ clause: "expires_on >= ?", params: [now] });
  else if (query.status === "expired") requirements.push({ clause: "expires_on < ?", params: [now] });
  else if (query.status !== undefined) requirements.push({ clause: "0", params: [] });
  if (requirements.length === 0) return null;
  return {
    clause: requirements.map((r) => `(${r.clause})`).join(query.match === "any" ? " OR " : " AND "),
    params: requirements.flatMap((r) => r.params),
  };
}

/**
 * One page of a zone's certificates in list order (`direction: "desc"`
 * reverses the whole order), only those meeting the query's search
 * requirements at `now`, and `total`, the count of exactly those
 * (`unfiltered`: the kept count of every row, when there are none).
 *
 * As src/storage/paging.ts's readPage: a page past the middle is read from
 * the other end, so OFFSET never walks more than half of the index; the
 * page's seqs are picked in the index first, then only their rows are read.
 */
export function certificatePage(sql: Sql, query: CertificateListQuery, now: Date, unfiltered: () => number): { rows: CertificateRow[]; total: number } {
  const filter = searchFilter(query, now.toISOString());
  const total = filter === null ? unfiltered() : sql.one<{ n: number }>(`SELECT count(*) AS n FROM certificates WHERE ${filter.clause}`, ...filter.params)!.n;
  const offset = (query.page - 1) * query.per_page;
  if (offset >= total) return { rows: [], total };
  const limit = Math.min(query.per_page, total - offset);
  const fromEnd = offset > 0 && offset + limit > total / 2;
  const order = (query.direction === "asc") !== fromEnd ? LIST_ORDER : REVERSE_ORDER;
  const where = filter === null ? "" : ` WHERE ${filter.clause}`;
  const rows = sql.all<CertificateRow>(
    `SELECT ${CERTIFICATE_COLUMNS} FROM certificates
       WHERE seq IN (SELECT seq FROM certificates${where} ORDER BY ${order} LIMIT ? OFFSET ?)
       ORDER BY ${order}`,
    ...(filter?.params ?? []),
    limit,
    fromEnd ? total - offset - limit : offset,
  );
  if (fromEnd) rows.reverse();
  return { rows, total };
}
