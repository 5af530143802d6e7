import { requireAdmin } from "./admin";
import { parseAuditQuery } from "./audit-query";
import { EMPTY_SCOPE } from "../tenant/empty-scope";
import { readableTenant } from "./scopes";
import { refuse, unwrap } from "./results";
import type { AccessRefusal, AuditEntryNotFound } from "../tenant/refusals";
import { pageOf, streamed, success } from "./envelope";
import type { Result } from "../core/result";
import { AUDIT_READS, inTurn, pageInTurn, slotOf } from "./read-queue";

type ExportBatch = { lines: string; next: string | null };
import { API_PREFIXES, type ApiRequest, type ApiRouter, tenantContext } from "./request";

// Entries, and about bytes, per RPC while exporting: large enough to keep
// the stream busy, small enough that one call stays far under the RPC size
// limit (32 MiB) whatever the entries hold (one entry is at most about as
// large as the 64 KiB request body that made it).
const EXPORT_BATCH = 500;
const EXPORT_BYTES = 1024 * 1024;

const AUDIT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** GET …/{accounts|zones}/{id}/audit_logs: Cloudflare's account audit-log API, per scope. */
async function list(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "audit");
  const query = unwrap(parseAuditQuery(new URL(request.url).searchParams));
  const stub = await readableTenant(env, scope);
  if (!stub) return pageOf(EMPTY_SCOPE.page, query);
  return pageInTurn(AUDIT_READS, async () => unwrap(await stub.listAudit(call, query)), (page) => pageOf(page, query));
}

/** POST /admin/v1/{kind}/{id}/audit/verify: recomputes the scope's hash chain. */
async function verify(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const stub = await readableTenant(env, call.scope);
  return success(stub ? unwrap(await stub.verifyAudit(call)) : EMPTY_SCOPE.chain());
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
  const stub = await readableTenant(env, call.scope);
  if (!stub) {
    if (after !== null) refuse({ reason: "audit_entry_not_found" });
    return streamed(new ReadableStream({ start: (controller) => controller.close() }), "application/x-ndjson; charset=utf-8");
  }
  // The first batch is read before answering, so an unknown `after` is a
  // clean 404 rather than a stream that breaks.
  const batch = async (from: string | null): Promise<Result<ExportBatch, AccessRefusal | AuditEntryNotFound>> => stub.exportAudit(call, from, EXPORT_BATCH, EXPORT_BYTES);
  let page = unwrap(await inTurn(AUDIT_READS, () => batch(after)));
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  const pump = async () => {
    try {
      for (;;) {
        // The write resolves once the client has taken the batch: each later
        // batch holds its slot until then, so a slow download holds at most
        // one batch outside the queue.
        if (page.lines.length > 0) await writer.write(encoder.encode(page.lines));
        if (page.next === null) break;
        const release = await slotOf(AUDIT_READS);
        try {
          const next = await batch(page.next);
          if (!next.ok) throw new Error(`export stopped: ${next.reason}`);
          page = next.value;
          if (page.lines.length > 0) await writer.write(encoder.encode(page.lines));
          page = { lines: "", next: page.next };
        } finally {
          release();
        }
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
