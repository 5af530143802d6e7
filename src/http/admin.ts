import type { Actor, TenantCall } from "../core/call";
import { isScopeId } from "../core/scope";
import { readJson } from "./body";
import { tenant, unwrap, uuidParam } from "./csr-routes";
import { MAX_POOL_SIZE } from "../tenant/key-pool";
import { ApiError } from "./errors";
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
export async function requireAdminSecret(request: ApiRequest, env: Env): Promise<Actor> {
  const header = request.headers.get("authorization");
  if (!header) throw new ApiError("no_authorization");
  const presented = header.startsWith("Bearer ") ? header.slice(7) : "";
  if (!env.ADMIN_SECRET) throw new ApiError("forbidden");
  const [a, b] = await Promise.all([digest(presented), digest(env.ADMIN_SECRET)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  if (diff !== 0) throw new ApiError("forbidden");
  const ip = connectingIp(request);
  return ip === undefined ? ADMIN : { ...ADMIN, ip };
}

/** The admin secret, then the scope of an admin route on an account or zone. */
export async function requireAdmin(request: ApiRequest, env: Env): Promise<TenantCall> {
  const actor = await requireAdminSecret(request, env);
  const kind = request.params.kind;
  const id = request.params.scopeId ?? "";
  if (kind !== "accounts" && kind !== "zones") throw new ApiError("no_route");
  if (!isScopeId(id)) throw new ApiError("invalid_scope_id");
  return { scope: { kind, id }, actor };
}

async function getEntitlement(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  return success(unwrap(await tenant(env, call.scope).getEntitlement(call)));
}

/** Body: {"granted": boolean, "quota": integer ≥ 0}; both required. */
async function putEntitlement(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const body = unwrap(await readJson(request, env));
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError("invalid_json");
  const { granted, quota } = body as Record<string, unknown>;
  if (typeof granted !== "boolean") throw new ApiError("invalid_field_type", { pointer: "/granted" });
  if (typeof quota !== "number" || !Number.isSafeInteger(quota) || quota < 0) {
    throw new ApiError("invalid_field_type", { pointer: "/quota" });
  }
  return success(unwrap(await tenant(env, call.scope).setEntitlement(call, { granted, quota })));
}

/** Proves a stored key still unwraps and matches its CSR's public key. */
async function verifyKey(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const id = uuidParam(request, "csrId", "invalid_csr_id");
  return success(unwrap(await tenant(env, call.scope).verifyCsrKey(call, id)));
}

/** Counts and database size of a scope. */
async function stats(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  return success(unwrap(await tenant(env, call.scope).getStats(call)));
}

/**
 * Re-wraps the scope's keys under the current KEK, one batch per call
 * (`?limit=` 1–500, default 100; `?after=` the previous call's next_after).
 */
async function rewrap(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const params = new URL(request.url).searchParams;
  const limit = Number(params.get("limit") ?? "100");
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
    throw new ApiError("invalid_query", { detail: "limit must be an integer from 1 to 500" });
  }
  const after = params.get("after") ?? "";
  return success(unwrap(await tenant(env, call.scope).rewrapKeys(call, limit, after)));
}

/** The scope's RSA key pool: its size and how many keys are ready. */
async function getKeyPool(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  return success(unwrap(await tenant(env, call.scope).getKeyPool(call)));
}

/** Body: {"size": integer 0–64}: how many RSA keys the scope keeps ready; 0 turns its pool off. */
async function putKeyPool(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  const body = unwrap(await readJson(request, env));
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError("invalid_json");
  const { size } = body as Record<string, unknown>;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0 || size > MAX_POOL_SIZE) {
    throw new ApiError("invalid_field_type", { pointer: "/size" });
  }
  return success(unwrap(await tenant(env, call.scope).setKeyPool(call, size)));
}

/** Self-check of every pooled key. */
async function verifyKeyPool(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  return success(unwrap(await tenant(env, call.scope).verifyKeyPool(call)));
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
