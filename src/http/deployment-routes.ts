import { parseScopeName, scopeName } from "../core/scope";
import { requireAdminSecret } from "./admin";
import { readJson } from "./body";
import type { BodyShapeRefusal, InvalidQuery } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";
import { tenant } from "./csr-routes";
import { unwrap } from "./results";
import { success } from "./envelope";
import type { ApiRequest, ApiRouter } from "./request";
import { EDGE_REGISTRY_NAME } from "../core/objects";
import { edgeRegistry } from "./edge-routes";
import { deploymentRegistry } from "./scopes";

// Scopes per page of GET /admin/v1/scopes, and per call of the deployment-wide rewrap.
const SCOPES_PER_PAGE = { default: 100, max: 1000 } as const;
const REWRAP_SCOPES = { default: 10, max: 100 } as const;
// CSR keys per tenant rewrap call while the deployment-wide rewrap works through a scope.
const REWRAP_BATCH = 500;
// The most names one import may carry (npm start sends them in batches).
const IMPORT_MAX = 10_000;

function intParam(params: URLSearchParams, name: string, bounds: { default: number; max: number }): Result<number, InvalidQuery> {
  const raw = params.get(name);
  if (raw === null) return ok(bounds.default);
  const n = Number(raw);
  return /^\d{1,6}$/.test(raw) && n >= 1 && n <= bounds.max ? ok(n) : fail({ reason: "invalid_query", parameter: name, rule: `must be an integer from 1 to ${bounds.max}` });
}

function afterParam(params: URLSearchParams): Result<string, InvalidQuery> {
  const after = params.get("after") ?? "";
  return after === "" || parseScopeName(after) !== null ? ok(after) : fail({ reason: "invalid_query", parameter: "after", rule: "must be a scope name such as zones:<id>" });
}

/** `{"scopes": ["zones:<id>", …], "complete": boolean}`: the names, canonical. */
function parseImport(body: unknown): Result<{ names: string[]; complete: boolean }, BodyShapeRefusal | { readonly reason: "invalid_scope_id"; readonly pointer: string }> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return fail({ reason: "invalid_json" });
  const { scopes, complete } = body as Record<string, unknown>;
  if (!Array.isArray(scopes) || scopes.length > IMPORT_MAX) return fail({ reason: "invalid_field_type", pointer: "/scopes" });
  const names: string[] = [];
  for (const [i, name] of scopes.entries()) {
    const parsed = typeof name === "string" ? parseScopeName(name) : null;
    if (!parsed) return fail({ reason: "invalid_scope_id", pointer: `/scopes/${i}` });
    names.push(scopeName(parsed));
  }
  if (typeof complete !== "boolean") return fail({ reason: "invalid_field_type", pointer: "/complete" });
  return ok({ names, complete });
}

/**
 * GET /admin/v1/keys: the configured key-encryption keys against the ones
 * the data recorded (each with its check, and how many scopes use it), and
 * which may be retired. A KEK may leave KEY_ENCRYPTION_KEYS once it is in
 * `retirable`: no scope's data is under it.
 */
async function keys(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  const { status, failures } = unwrap(await deploymentRegistry(env).keyStatus());
  return success({ ...status, problems: failures.map((f) => ({ reason: f.reason, kek_id: "kek_id" in f ? f.kek_id : null })) });
}

/** GET /admin/v1/scopes?after=&limit=: every scope with data, by name, with the KEKs its data uses. */
async function listScopes(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  const params = new URL(request.url).searchParams;
  return success(unwrap(await deploymentRegistry(env).listScopes(unwrap(afterParam(params)), unwrap(intParam(params, "limit", SCOPES_PER_PAGE)))));
}

/**
 * POST /admin/v1/scopes/import with {"scopes": ["zones:<id>", …], "complete":
 * true|false}: lists scopes found in an existing data directory (npm start
 * sends them on the first start of a directory from before the registry);
 * `complete` says the list now holds every scope with data, after which
 * reads of unlisted scopes are answered without waking an object.
 */
async function importScopes(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  const { names, complete } = unwrap(parseImport(unwrap(await readJson(request, env))));
  return success(unwrap(await deploymentRegistry(env).importScopes(names, complete)));
}

/**
 * POST /admin/v1/rewrap?limit=&after=: the deployment-wide rewrap. Visits up
 * to `limit` scopes whose data is under a KEK other than the current one
 * (after `after`, by name), rewraps each completely, and reports each; call
 * again with `next` until it is null, then GET /admin/v1/keys says which
 * KEKs may be retired. A scope whose keys did not all open keeps its old
 * KEK in use, and its report says which keys and why.
 */
async function rewrapAll(request: ApiRequest, env: Env): Promise<Response> {
  const actor = await requireAdminSecret(request, env);
  const params = new URL(request.url).searchParams;
  const limit = unwrap(intParam(params, "limit", REWRAP_SCOPES));
  const registry = deploymentRegistry(env);
  const { status } = unwrap(await registry.keyStatus());
  const names = unwrap(await registry.scopesNotUnder(status.current_kek_id, unwrap(afterParam(params)), limit));
  const scopes = [];
  for (const name of names) {
    // The edge registry holds KEK-wrapped data too (the service key, sealed rows).
    if (name === EDGE_REGISTRY_NAME) {
      const report = unwrap(await edgeRegistry(env).rewrap());
      const remaining = report.kek_ids.filter((id) => id !== status.current_kek_id).length;
      scopes.push({ scope: name, rewrapped: (report.service_key_rewrapped ? 1 : 0) + report.resealed, remaining, failures: report.failed.map((id) => ({ id, reason: "unsealed" })) });
      continue;
    }
    const scope = parseScopeName(name)!;
    const call = { scope, actor };
    let rewrapped = 0;
    let rekeyed = 0;
    const failures = [];
    const auditFailed = new Set<number>();
    let report;
    // Through the CSR keys once (a cursor), then again while audit entries
    // are still being re-keyed (a batch per call, no cursor needed).
    for (let after = ""; ; ) {
      report = unwrap(await tenant(env, scope).rewrapKeys(call, REWRAP_BATCH, after));
      rewrapped += report.rewrapped + report.pooled_rewrapped;
      rekeyed += report.audit_rekeyed;
      if (after === "" || report.next_after !== null) failures.push(...report.failures, ...report.pooled_failures);
      for (const seq of report.audit_failed) auditFailed.add(seq);
      if (report.next_after !== null) after = report.next_after;
      else if (report.audit_rekeyed > 0 && report.remaining > 0) after = "";
      else break;
    }
    scopes.push({
      scope: name,
      rewrapped,
      audit_rekeyed: rekeyed,
      remaining: report.remaining,
      failures,
      audit_failed: [...auditFailed].sort((a, b) => a - b),
      certificates_failed: report.certificates_failed,
    });
  }
  return success({ kek_id: status.current_kek_id, scopes, next: names.length === limit ? names[names.length - 1]! : null });
}

/** Registers the operator's deployment-wide routes; returns their path patterns. */
export function deploymentRoutes(router: ApiRouter): RegExp[] {
  router.get("/admin/v1/keys", keys);
  router.get("/admin/v1/scopes", listScopes);
  router.post("/admin/v1/scopes/import", importScopes);
  router.post("/admin/v1/rewrap", rewrapAll);
  return [/^\/admin\/v1\/keys\/?$/, /^\/admin\/v1\/scopes\/?$/, /^\/admin\/v1\/scopes\/import\/?$/, /^\/admin\/v1\/rewrap\/?$/];
}
