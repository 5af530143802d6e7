import { isScopeId } from "../core/scope";
import { requireAdmin } from "./admin";
import { readJson } from "./body";
import type { BodyShapeRefusal } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";
import { tenant } from "./csr-routes";
import { pageOf, success } from "./envelope";
import { refuse, unwrap } from "./results";
import { pagingParams } from "./list-query";
import type { ApiRequest, ApiRouter } from "./request";
import { directory, forgetZoneAccount } from "./zone-accounts";

// An account's zones, per page (ours: Cloudflare's zone list allows 5–50, default 20).
const ZONES_PER_PAGE = { min: 5, max: 50, default: 20 } as const;

/** The admin call of a route that exists for one scope kind only; the other is 404 (7000). */
async function adminOf(request: ApiRequest, env: Env, kind: "accounts" | "zones") {
  const call = await requireAdmin(request, env);
  if (call.scope.kind !== kind) refuse({ reason: "no_route" });
  return call;
}

/** `{"account_id": "…"}`: a well-formed account id. */
function parseAccountId(body: unknown): Result<string, BodyShapeRefusal | { readonly reason: "invalid_scope_id"; readonly pointer: string }> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return fail({ reason: "invalid_json" });
  const accountId = (body as Record<string, unknown>).account_id;
  if (typeof accountId !== "string") return fail({ reason: "invalid_field_type", pointer: "/account_id" });
  return isScopeId(accountId) ? ok(accountId) : fail({ reason: "invalid_scope_id", pointer: "/account_id" });
}

/** GET /admin/v1/zones/{zone_id}/account: the account the zone is recorded under (404, 1490, when none). */
async function getAccount(request: ApiRequest, env: Env): Promise<Response> {
  const call = await adminOf(request, env, "zones");
  return success(unwrap(await directory(env).getZone(call.scope.id)));
}

/**
 * PUT /admin/v1/zones/{zone_id}/account with {"account_id": "…"}: records the
 * zone under an account, or moves it to another. The zone's own object goes
 * first: it stamps its CSRs with the account's tag and records the move in
 * its audit trail, in one transaction, and numbers the link; then the
 * directory, which authorization reads (every isolate within
 * ZONE_ACCOUNT_TTL_MS, this one at once) and which keeps the link with the
 * highest number, so concurrent moves end where the zone's object ended.
 * Repeating the call after a failure finishes the move.
 */
async function putAccount(request: ApiRequest, env: Env): Promise<Response> {
  const call = await adminOf(request, env, "zones");
  const accountId = unwrap(parseAccountId(unwrap(await readJson(request, env))));
  const { revision } = await directory(env).standing(call.scope.id);
  const linked = unwrap(await tenant(env, call.scope).linkAccount(call, accountId, revision));
  const record = unwrap(await directory(env).setZone(call.scope.id, accountId, linked.revision));
  forgetZoneAccount(call.scope.id);
  // A newer move that overtook this one is what stands: it is what the answer shows.
  if (!record) refuse({ reason: "zone_account_not_recorded" });
  return success({ ...record, previous_account_id: linked.previous, csrs_retagged: linked.csrs_retagged });
}

/** DELETE /admin/v1/zones/{zone_id}/account: the zone belongs to no account again (404, 1490, when it did not). */
async function deleteAccount(request: ApiRequest, env: Env): Promise<Response> {
  const call = await adminOf(request, env, "zones");
  const standing = await directory(env).standing(call.scope.id);
  if (standing.account_id === null) refuse({ reason: "zone_account_not_recorded" });
  const linked = unwrap(await tenant(env, call.scope).linkAccount(call, null, standing.revision));
  const record = unwrap(await directory(env).setZone(call.scope.id, null, linked.revision));
  forgetZoneAccount(call.scope.id);
  // A newer move that overtook this one stands: the zone has an account again.
  if (record) refuse({ reason: "zone_account_moved", account_id: record.account_id });
  return success({ zone_id: call.scope.id, previous_account_id: linked.previous, csrs_retagged: linked.csrs_retagged });
}

/** GET /admin/v1/accounts/{account_id}/zones?page=&per_page=: the zones recorded under the account, by zone id. */
async function listZones(request: ApiRequest, env: Env): Promise<Response> {
  const call = await adminOf(request, env, "accounts");
  const paging = unwrap(pagingParams(new URL(request.url).searchParams, ZONES_PER_PAGE));
  return pageOf(unwrap(await directory(env).listZones(call.scope.id, paging.page, paging.per_page)), paging);
}

/** Registers the operator's zone → account routes; returns their path patterns. */
export function directoryRoutes(router: ApiRouter): RegExp[] {
  const account = "/admin/v1/:kind/:scopeId/account";
  router.get(account, getAccount).put(account, putAccount).delete(account, deleteAccount);
  router.get("/admin/v1/:kind/:scopeId/zones", listZones);
  return [/^\/admin\/v1\/[^/]+\/[^/]+\/account\/?$/, /^\/admin\/v1\/[^/]+\/[^/]+\/zones\/?$/];
}
