import type { Actor, TenantCall } from "../core/call";
import { type Scope, isScopeId } from "../core/scope";
import { readJson } from "./body";
import type { Forbidden, NoCredentials } from "../auth/refusals";
import type { BodyShapeRefusal, InvalidQuery, NoRoute } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";
import type { Entitlement } from "../tenant/entitlements";
import { tenant, uuidParam } from "./csr-routes";
import { EMPTY_SCOPE } from "../tenant/empty-scope";
import { readableTenant } from "./scopes";
import { MAX_POOL_SIZE } from "../tenant/key-pool";
import { refuse, unwrap } from "./results";
import { success } from "./envelope";
import { type ApiRequest, type ApiRouter, connectingIp } from "./request";

const ADMIN: Actor = { type: "admin", id: "admin" };

const ADMIN_BASE = "/admin/v1/:kind/:scopeId";

async function digest(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/**
 * The operator's routes are guarded by ADMIN_SECRET alone (no API token can
 * reach them). Comparing digests keeps the comparison constant-time and
 * independent of the secret's length. Returns the admin actor.
 */
export async function adminActor(request: ApiRequest, env: Env): Promise<Result<Actor, NoCredentials | Forbidden>> {
  const header = request.headers.get("authorization");
  if (!header) return fail({ reason: "no_authorization" });
  const presented = header.startsWith("Bearer ") ? header.slice(7) : "";
  if (!env.ADMIN_SECRET) return fail({ reason: "forbidden" });
  const [a, b] = await Promise.all([digest(presented), digest(env.ADMIN_SECRET)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  if (diff !== 0) return fail({ reason: "forbidden" });
  const ip = connectingIp(request);
  return ok(ip === undefined ? ADMIN : { ...ADMIN, ip });
}

/** The admin actor, or the request ends refused (1402, 10000). */
export async function requireAdminSecret(request: ApiRequest, env: Env): Promise<Actor> {
  return unwrap(await adminActor(request, env));
}

/** The scope an admin route on an account or zone names (7000 for another kind, 1434 for a malformed id). */
function adminScope(request: ApiRequest): Result<Scope, NoRoute | { readonly reason: "invalid_scope_id" }> {
  const kind = request.params.kind;
  const id = request.params.scopeId ?? "";
  if (kind !== "accounts" && kind !== "zones") return fail({ reason: "no_route" });
  if (!isScopeId(id)) return fail({ reason: "invalid_scope_id" });
  return ok({ kind, id });
}

/** The admin secret, then the scope of an admin route on an account or zone. */
export async function requireAdmin(request: ApiRequest, env: Env): Promise<TenantCall> {
  const actor = await requireAdminSecret(request, env);
  return { scope: unwrap(adminScope(request)), actor };
}

function bodyObject(body: unknown): Result<Record<string, unknown>, BodyShapeRefusal> {
  return typeof body !== "object" || body === null || Array.isArray(body) ? fail({ reason: "invalid_json" }) : ok(body as Record<string, unknown>);
}

/** `{"granted": boolean, "quota": integer ≥ 0}`, both required. */
function parseEntitlement(body: unknown): Result<Entitlement, BodyShapeRefusal> {
  const b = bodyObject(body);
  if (!b.ok) return b;
  const { granted, quota } = b.value;
  if (typeof granted !== "boolean") return fail({ reason: "invalid_field_type", pointer: "/granted" });
  if (typeof quota !== "number" || !Number.isSafeInteger(quota)) return fail({ reason: "invalid_field_type", pointer: "/quota" });
  if (quota < 0) return fail({ reason: "field_out_of_range", pointer: "/quota", range: "an integer of 0 or more" });
  return ok({ granted, quota });
}

/** `{"size": integer 0–MAX_POOL_SIZE}`. */
function parsePoolSize(body: unknown): Result<number, BodyShapeRefusal> {
  const b = bodyObject(body);
  if (!b.ok) return b;
  const { size } = b.value;
  if (typeof size !== "number" || !Number.isSafeInteger(size)) return fail({ reason: "invalid_field_type", pointer: "/size" });
  if (size < 0 || size > MAX_POOL_SIZE) return fail({ reason: "field_out_of_range", pointer: "/size", range: `an integer from 0 to ${MAX_POOL_SIZE}` });
  return ok(size);
}

/** `?limit=` 1–500, default 100. */
function parseRewrapLimit(params: URLSearchParams): Result<number, InvalidQuery> {
  const limit = Number(params.get("limit") ?? "100");
  return Number.isInteger(limit) && limit >= 1 && limit <= 500 ? ok(limit) : fail({ reason: "invalid_query", parameter: "limit", rule: "must be an integer from 1 to 500" });
}

async function getEntitlement(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const stub = await readableTenant(env, call.scope);
  return success(stub ? unwrap(await stub.getEntitlement(call)) : EMPTY_SCOPE.entitlement(env));
}

/** Body: {"granted": boolean, "quota": integer ≥ 0}; both required. */
async function putEntitlement(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const entitlement = unwrap(parseEntitlement(unwrap(await readJson(request, env))));
  return success(unwrap(await tenant(env, call.scope).setEntitlement(call, entitlement)));
}

/** Proves a stored key still unwraps and matches its CSR's public key. */
async function verifyKey(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const id = unwrap(uuidParam(request, "csrId", { reason: "invalid_csr_id" }));
  const stub = await readableTenant(env, call.scope);
  if (!stub) refuse({ reason: "csr_not_found" });
  return success(unwrap(await stub.verifyCsrKey(call, id)));
}

/** Counts and database size of a scope. */
async function stats(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const stub = await readableTenant(env, call.scope);
  return success(stub ? unwrap(await stub.getStats(call)) : EMPTY_SCOPE.stats());
}

/**
 * Re-wraps the scope's keys under the current KEK, one batch per call
 * (`?limit=` 1–500, default 100; `?after=` the previous call's next_after).
 */
async function rewrap(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const params = new URL(request.url).searchParams;
  const limit = unwrap(parseRewrapLimit(params));
  const after = params.get("after") ?? "";
  return success(unwrap(await tenant(env, call.scope).rewrapKeys(call, limit, after)));
}

/** The scope's RSA key pool: its size and how many keys are ready. */
async function getKeyPool(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const stub = await readableTenant(env, call.scope);
  return success(stub ? unwrap(await stub.getKeyPool(call)) : EMPTY_SCOPE.keyPool(env));
}

/** Body: {"size": integer 0–64}: how many RSA keys the scope keeps ready; 0 turns its pool off. */
async function putKeyPool(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const size = unwrap(parsePoolSize(unwrap(await readJson(request, env))));
  return success(unwrap(await tenant(env, call.scope).setKeyPool(call, size)));
}

/** Self-check of every pooled key. */
async function verifyKeyPool(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const stub = await readableTenant(env, call.scope);
  return success(stub ? unwrap(await stub.verifyKeyPool(call)) : EMPTY_SCOPE.poolCheck());
}

/** Registers the operator's routes; returns their path patterns. */
export function adminRoutes(router: ApiRouter): RegExp[] {
  router.get(`${ADMIN_BASE}/entitlement`, getEntitlement).put(`${ADMIN_BASE}/entitlement`, putEntitlement);
  router.get(`${ADMIN_BASE}/key_pool`, getKeyPool).put(`${ADMIN_BASE}/key_pool`, putKeyPool);
  router.post(`${ADMIN_BASE}/key_pool/verify`, verifyKeyPool);
  router.post(`${ADMIN_BASE}/custom_csrs/:csrId/verify`, verifyKey);
  router.post(`${ADMIN_BASE}/rewrap`, rewrap);
  router.get(`${ADMIN_BASE}/stats`, stats);
  return [
    /^\/admin\/v1\/[^/]+\/[^/]+\/entitlement\/?$/,
    /^\/admin\/v1\/[^/]+\/[^/]+\/key_pool(?:\/verify)?\/?$/,
    /^\/admin\/v1\/[^/]+\/[^/]+\/custom_csrs\/[^/]+\/verify\/?$/,
    /^\/admin\/v1\/[^/]+\/[^/]+\/rewrap\/?$/,
    /^\/admin\/v1\/[^/]+\/[^/]+\/stats\/?$/,
  ];
}
