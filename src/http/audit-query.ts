import type { InvalidQuery } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";
import type { AuditQuery } from "../tenant/audit-trail";
import { pagingParams } from "./list-query";

// Cloudflare's audit-log API allows per_page up to 1000; here at most 100
// (the default), so that a page is bounded: an entry's metadata can hold a
// whole create body (up to 64 KiB), and a page is built in memory.
export const AUDIT_PER_PAGE = { min: 1, max: 100, default: 100 } as const;

const KNOWN = ["page", "per_page", "direction", "since", "before", "id", "action.type", "actor.email"];
// Filters of Cloudflare's API this service does not implement: refused
// rather than ignored, since ignoring a filter would answer with entries the
// caller asked to leave out.
const UNSUPPORTED = ["actor.ip", "zone.name", "export", "hide_user_logs"];

// RFC 3339 full-date (taken as UTC midnight, as Cloudflare does) or date-time.
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;
const AUDIT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const invalid = (parameter: string, rule: string) => fail({ reason: "invalid_query", parameter, rule });

/** Why an audit-log query is refused (1435, 1480). */
export type AuditQueryRefusal = InvalidQuery | { readonly reason: "invalid_audit_id" };

function time(raw: string, name: string): Result<number, InvalidQuery> {
  const ms = DATE.test(raw) ? Date.parse(`${raw}T00:00:00Z`) : DATE_TIME.test(raw) ? Date.parse(raw) : Number.NaN;
  return Number.isFinite(ms) ? ok(ms) : invalid(name, "must be an RFC 3339 date (2026-11-23) or date-time (2026-11-23T10:00:00Z)");
}

/**
 * The audit-log API's query: page, per_page, direction (default desc),
 * since (inclusive) and before (exclusive), id, action.type and actor.email,
 * as the SDK sends them (`action.type=create`). Anything malformed is a 400
 * naming the parameter; other unknown parameters are ignored.
 */
export function parseAuditQuery(params: URLSearchParams): Result<AuditQuery, AuditQueryRefusal> {
  for (const name of KNOWN) {
    if (params.getAll(name).length > 1) return invalid(name, "is given more than once");
  }
  for (const name of UNSUPPORTED) {
    if (params.has(name)) return invalid(name, "is not supported by this service");
  }
  const paging = pagingParams(params, AUDIT_PER_PAGE);
  if (!paging.ok) return paging;
  const query: AuditQuery = { ...paging.value, direction: "desc" };
  const direction = params.get("direction");
  if (direction !== null) {
    if (direction !== "asc" && direction !== "desc") return invalid("direction", "must be one of asc, desc");
    query.direction = direction;
  }
  for (const name of ["since", "before"] as const) {
    const raw = params.get(name);
    if (raw === null) continue;
    const ms = time(raw, name);
    if (!ms.ok) return ms;
    query[name] = ms.value;
  }
  const id = params.get("id");
  if (id !== null) {
    if (!AUDIT_ID.test(id)) return fail({ reason: "invalid_audit_id" });
    query.id = id;
  }
  const action = params.get("action.type");
  if (action !== null) {
    if (!/^[a-z_]{1,32}$/.test(action)) return invalid("action.type", "must be an action type such as create");
    query.action = action;
  }
  const email = params.get("actor.email");
  if (email !== null) {
    if (email.length === 0 || email.length > 254) return invalid("actor.email", "must be an email address");
    query.actor_email = email;
  }
  return ok(query);
}
