import { requireAdmin } from "./admin";
import { parseAuditQuery } from "./audit-query";
import { EMPTY_PAGE, tenant } from "./csr-routes";
import { readableTenant } from "./scopes";
import { refuse, unwrap } from "./results";
import type { AccessRefusal, AuditEntryNotFound } from "../tenant/refusals";
import { pageOf, releasedWhenSent, streamed, success } from "./envelope";
import type { Result } from "../core/result";
import type { JsonText, Page } from "../tenant/records";
import { TaskQueue } from "../core/task-queue";

type ExportBatch = { lines: string; next: string | null };
import { API_PREFIXES, type ApiRequest, type ApiRouter, tenantContext } from "./request";

// Entries, and about bytes, per RPC while exporting: large enough to keep
// the stream busy, small enough that one call stays far under the RPC size
// limit (32 MiB) whatever the entries hold (one entry is at most about as
// large as the 64 KiB request body that made it).
const EXPORT_BATCH = 500;
const EXPORT_BYTES = 1024 * 1024;

/**
 * Audit pages and export batches are built in memory (a page of 100 entries
 * can reach megabytes): at most this many at once per isolate, the rest
 * waiting in turn; beyond AUDIT_READS_WAITING a read is refused with 429
 * (971) and Retry-After, so concurrent large reads cannot exhaust memory or
 * hold every other request behind them.
 */
export const AUDIT_READS_AT_ONCE = 4;
export const AUDIT_READS_WAITING = 64;
const reads = new TaskQueue(AUDIT_READS_AT_ONCE, AUDIT_READS_WAITING);

/** Runs one audit read in turn; 429 when too many wait. */
async function inTurn<T>(read: () => Promise<T>): Promise<T> {
  const done = await reads.run(read);
  if (done === null) refuse({ reason: "rate_limited" });
  return done;
}

// A page at least this large holds its slot until it has been sent, not only
// built: its bytes waiting for a slow client are what take memory. Smaller
// pages give it back at once (following a body to its end costs a stream).
const SENT_BEFORE_RELEASE_BYTES = 256 * 1024;

/** A page read in turn; a large one keeps its slot until it has been sent. */
async function pageInTurn(read: () => Promise<Page<JsonText>>, reply: (page: Page<JsonText>) => Response): Promise<Response> {
  const release = await reads.acquire();
  if (release === null) refuse({ reason: "rate_limited" });
  try {
    const page = await read();
    if (page.items.length < SENT_BEFORE_RELEASE_BYTES) {
      release();
      return reply(page);
    }
    return releasedWhenSent(reply(page), release);
  } catch (error) {
    release();
    throw error;
  }
}
const AUDIT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** GET …/{accounts|zones}/{id}/audit_logs: Cloudflare's account audit-log API, per scope. */
async function list(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "audit");
  const query = unwrap(parseAuditQuery(new URL(request.url).searchParams));
  const stub = await readableTenant(env, scope);
  if (!stub) return pageOf(EMPTY_PAGE, query);
  return pageInTurn(async () => unwrap(await stub.listAudit(call, query)), (page) => pageOf(page, query));
}

/** POST /admin/v1/{kind}/{id}/audit/verify: recomputes the scope's hash chain. */
async function verify(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  return success(unwrap(await tenant(env, call.scope).verifyAudit(call)));
}

/**
 * GET /admin/v1/{kind}/{id}/audit/export[?after=<id>]: every entry after
 * `after` (from the first when absent), oldest first, as JSON lines with
 * their chain hashes. Streamed in batches; a broken download resumes with
 * `after` set to the last line's id.
 */
async function exportTrail(request: ApiRequest, env: Env, ctx: ExecutionContext): Promise<Response> {
  const call = await requireAdmin(request, env);
  const after = new URL(request.url).searchParams.get("after");
  if (after !== null && !AUDIT_ID.test(after)) refuse({ reason: "invalid_audit_id" });
  const stub = tenant(env, call.scope);
  // The first batch is read before answering, so an unknown `after` is a
  // clean 404 rather than a stream that breaks.
  const batch = async (from: string | null): Promise<Result<ExportBatch, AccessRefusal | AuditEntryNotFound>> => stub.exportAudit(call, from, EXPORT_BATCH, EXPORT_BYTES);
  let page = unwrap(await inTurn(() => batch(after)));
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  const pump = async () => {
    try {
      for (;;) {
        if (page.lines.length > 0) await writer.write(encoder.encode(page.lines));
        if (page.next === null) break;
        const next = await inTurn(() => batch(page.next));
        if (!next.ok) throw new Error(`export stopped: ${next.reason}`);
        page = next.value;
      }
      await writer.close();
    } catch (error) {
      console.error(
        JSON.stringify({ level: "error", request_id: request.requestId, event: "audit_export_failed", message: String(error) }),
      );
      await writer.abort(error).catch(() => undefined);
    }
  };
  ctx.waitUntil(pump());
  return streamed(readable, "application/x-ndjson; charset=utf-8");
}

/** Registers the audit-log routes; returns their path patterns. */
export function auditRoutes(router: ApiRouter): RegExp[] {
  for (const prefix of API_PREFIXES) {
    for (const kind of ["accounts", "zones"]) router.get(`${prefix}/${kind}/:scopeId/audit_logs`, list);
  }
  router.post("/admin/v1/:kind/:scopeId/audit/verify", verify);
  router.get("/admin/v1/:kind/:scopeId/audit/export", exportTrail);
  return [
    /^\/(?:client|api)\/v4\/(?:accounts|zones)\/[^/]*\/audit_logs\/?$/,
    /^\/admin\/v1\/[^/]+\/[^/]+\/audit\/verify\/?$/,
    /^\/admin\/v1\/[^/]+\/[^/]+\/audit\/export\/?$/,
  ];
}
