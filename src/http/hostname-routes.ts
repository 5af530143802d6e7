import { type Result, fail, ok } from "../core/result";
import type { HostnameListQuery } from "../hostnames/hostname-records";
import { hostnameShardName } from "../hostnames/shard";
import { checkOriginName } from "../pki/hostname";
import { EMPTY_SCOPE } from "../tenant/empty-scope";
import { requireAdmin } from "./admin";
import { readJson } from "./body";
import { CSR_ID, tenant } from "./csr-routes";
import { pageOf, success } from "./envelope";
import type { HostnameQueryRefusal } from "./errors";
import { parseHostnameCreate, parseHostnameEdit } from "./hostname-input";
import { pagingParams } from "./list-query";
import { LIST_READS, pageInTurn } from "./read-queue";
import { API_PREFIXES, type ApiRequest, type ApiRouter, tenantContext } from "./request";
import { refuse, unwrap } from "./results";
import { readableTenant } from "./scopes";

// Cloudflare's custom hostname list: per_page 5–1000, default 20.
const HOSTNAMES_PER_PAGE = { min: 5, max: 1000, default: 20 } as const;
const SSL_STATUSES = [
  "initializing", "pending_validation", "deleted", "pending_issuance", "pending_deployment", "pending_deletion", "pending_expiration",
  "expired", "active", "initializing_timed_out", "validation_timed_out", "issuance_timed_out", "deployment_timed_out", "deletion_timed_out",
  "pending_cleanup", "staging_deployment", "staging_active", "deactivating", "inactive", "backup_issued", "holding_deployment",
];
const HOSTNAME_FILTERS = ["hostname", "hostname.exact", "hostname.contain", "hostname.startsWith"] as const;
const FILTERS = [...HOSTNAME_FILTERS, "ssl", "ssl_status", "hostname_status", "wildcard", "certificate_authority", "custom_origin_server"];

const hostnameId = (request: ApiRequest): string => {
  let raw: string;
  try {
    raw = decodeURIComponent(request.params.hostnameId ?? "").toLowerCase();
  } catch {
    return refuse({ reason: "hostname_id_invalid" });
  }
  return CSR_ID.test(raw) ? raw : refuse({ reason: "hostname_id_invalid" });
};

/**
 * The SDK's list query (dotted keys, as it sends them): paging, order and
 * direction, and filters; `id` alone or not at all (1438). A malformed
 * filter names itself (1437); Cloudflare's plain `hostname=` is an exact match.
 */
export function parseHostnameQuery(params: URLSearchParams): Result<HostnameListQuery, HostnameQueryRefusal> {
  const bad = (parameter: string) => fail({ reason: "hostname_filter_invalid", parameter });
  // In this API's table 1435 is a malformed hostname id: a bad page or per_page names itself (1437).
  const paging = pagingParams(params, HOSTNAMES_PER_PAGE);
  if (!paging.ok) return bad(paging.parameter);
  for (const name of ["direction", "order", "id", ...FILTERS]) if (params.getAll(name).length > 1) return bad(name);
  const query: HostnameListQuery = { ...paging.value, direction: "asc", order: "ssl" };
  const direction = params.get("direction");
  if (direction !== null) {
    if (direction !== "asc" && direction !== "desc") return bad("direction");
    query.direction = direction;
  }
  const order = params.get("order");
  if (order !== null) {
    if (order !== "ssl" && order !== "ssl_status") return bad("order");
    query.order = order;
  }
  const id = params.get("id");
  if (id !== null) {
    if (FILTERS.some((name) => params.has(name))) return fail({ reason: "hostname_id_with_filters" });
    if (!CSR_ID.test(id.toLowerCase())) return fail({ reason: "hostname_id_invalid" });
    query.id = id.toLowerCase();
    return ok(query);
  }
  const hostname: NonNullable<HostnameListQuery["hostname"]> = {};
  for (const name of HOSTNAME_FILTERS) {
    const value = params.get(name);
    if (value === null) continue;
    if (value.length === 0 || value.length > 255 || /[\s\u0000-\u001f\u007f]/.test(value)) return bad(name);
    const v = value.toLowerCase();
    if (name === "hostname" || name === "hostname.exact") hostname.exact = v;
    else if (name === "hostname.contain") hostname.contain = v;
    else hostname.startsWith = v;
  }
  if (Object.keys(hostname).length > 0) query.hostname = hostname;
  const ssl = params.get("ssl");
  if (ssl !== null) {
    if (ssl !== "0" && ssl !== "1") return bad("ssl");
    query.ssl = ssl === "1" ? 1 : 0;
  }
  const sslStatus = params.get("ssl_status");
  if (sslStatus !== null) {
    if (!SSL_STATUSES.includes(sslStatus)) return bad("ssl_status");
    query.ssl_status = sslStatus;
  }
  const hostnameStatus = params.get("hostname_status");
  if (hostnameStatus !== null) {
    if (hostnameStatus !== "active" && hostnameStatus !== "pending") return bad("hostname_status");
    query.hostname_status = hostnameStatus;
  }
  const wildcard = params.get("wildcard");
  if (wildcard !== null) {
    if (wildcard !== "true" && wildcard !== "false") return bad("wildcard");
    query.wildcard = wildcard === "true";
  }
  for (const name of ["certificate_authority", "custom_origin_server"] as const) {
    const value = params.get(name);
    if (value === null) continue;
    if (value.length === 0 || value.length > 255) return bad(name);
    query[name] = value.toLowerCase();
  }
  return ok(query);
}

/** The billing warning Cloudflare adds to a create past the allocated quota (below the hard cap). */
const OVER_QUOTA = {
  code: 1463,
  message: "This zone has more custom hostnames than its allocated quota: it was created, up to the hard cap.",
};

async function create(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const input = unwrap(parseHostnameCreate(unwrap(await readJson(request, env))));
  const { record, overQuota } = unwrap(await tenant(env, scope).createHostname(call, input));
  return success(record, { status: 201, messages: overQuota ? [{ ...OVER_QUOTA }] : [] });
}

async function list(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const query = unwrap(parseHostnameQuery(new URL(request.url).searchParams));
  const stub = await readableTenant(env, scope);
  if (!stub) return pageOf(EMPTY_SCOPE.page, query);
  return pageInTurn(LIST_READS, async () => unwrap(await stub.listHostnames(call, query)), (page) => pageOf(page, query));
}

async function get(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const id = hostnameId(request);
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "hostname_not_found" });
  return success(unwrap(await stub.getHostname(call, id)));
}

/** Cloudflare answers an edit with 202 (Accepted): a new `ssl` starts validation again. */
async function edit(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const id = hostnameId(request);
  const input = unwrap(parseHostnameEdit(unwrap(await readJson(request, env)), null));
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "hostname_not_found" });
  return success(unwrap(await stub.editHostname(call, id, input)), { status: 202 });
}

/**
 * Cloudflare answers a delete with a bare `{"id": …}`, not an envelope (the
 * SDK's customHostnames.delete does not unwrap it); errors are envelopes.
 */
async function remove(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const id = hostnameId(request);
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "hostname_not_found" });
  const removed = unwrap(await stub.deleteHostname(call, id));
  return new Response(JSON.stringify({ id: removed.id }), { status: 200, headers: success(null).headers });
}

async function quota(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const stub = await readableTenant(env, scope);
  return success(stub ? unwrap(await stub.getHostnameQuota(call)) : EMPTY_SCOPE.hostnameQuota(env));
}

/** The fallback origin as the SDK's FallbackOrigin: status `active` once set (this service routes no traffic itself). */
function fallbackShape(origin: { origin: string; created_at: string; updated_at: string } | null, status: "active" | "pending_deletion") {
  return origin === null ? {} : { created_at: origin.created_at, errors: [], origin: origin.origin, status, updated_at: origin.updated_at };
}

async function getFallback(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const stub = await readableTenant(env, scope);
  return success(fallbackShape(stub ? unwrap(await stub.getFallbackOrigin(call)) : null, "active"));
}

async function putFallback(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const body = unwrap(await readJson(request, env));
  const origin = typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>).origin : undefined;
  if (typeof origin !== "string") refuse({ reason: "origin_invalid", pointer: "/origin" });
  const name = origin.trim().toLowerCase();
  const problem = checkOriginName(name, "/origin");
  if (problem) refuse(problem);
  return success(fallbackShape(unwrap(await tenant(env, scope).setFallbackOrigin(call, name)), "active"));
}

async function deleteFallback(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const stub = await readableTenant(env, scope);
  return success(fallbackShape(stub ? unwrap(await stub.setFallbackOrigin(call, null)) : null, "pending_deletion"));
}

/** PUT /admin/v1/zones/{zone_id}/custom_hostnames/quota with {"allocated": n, "hard_cap": m ≥ n}. */
async function setQuota(request: ApiRequest, env: Env): Promise<Response> {
  const call = await requireAdmin(request, env);
  if (call.scope.kind !== "zones") refuse({ reason: "no_route" });
  const body = unwrap(await readJson(request, env));
  const b = typeof body === "object" && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : null;
  if (b === null) refuse({ reason: "invalid_json" });
  const { allocated, hard_cap } = b;
  const count = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (!count(allocated)) refuse({ reason: "invalid_field_type", pointer: "/allocated" });
  if (!count(hard_cap) || hard_cap < allocated) refuse({ reason: "invalid_field_type", pointer: "/hard_cap" });
  return success(unwrap(await tenant(env, call.scope).setHostnameQuota(call, { allocated, hard_cap })));
}

/**
 * GET /.well-known/acme-challenge/{token}, without credentials: the key
 * authorization of a pending http-01 challenge of the hostname in `Host`
 * (RFC 8555 §8.3), as text; anything else is 404. Edges proxy this
 * location to the API (docs/nginx-edge.conf).
 */
async function acmeChallenge(request: ApiRequest, env: Env): Promise<Response> {
  const token = request.params.token ?? "";
  const host = (request.headers.get("host") ?? "").toLowerCase().replace(/:\d+$/, "");
  if (!/^[A-Za-z0-9_-]{16,128}$/.test(token) || !/^[a-z0-9._-]{1,253}$/.test(host)) refuse({ reason: "no_route" });
  const registry = env.HOSTNAMES.get(env.HOSTNAMES.idFromName(hostnameShardName(host)));
  const answer = unwrap(await registry.challenge(host, token));
  if (answer === null) refuse({ reason: "no_route" });
  return new Response(answer, { status: 200, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-content-type-options": "nosniff" } });
}

/** Registers the custom hostname routes (zones), their admin quota route and the http-01 answer; returns their path patterns. */
export function hostnameRoutes(router: ApiRouter): RegExp[] {
  for (const prefix of API_PREFIXES) {
    const base = `${prefix}/zones/:scopeId/custom_hostnames`;
    // quota and fallback_origin before :hostnameId.
    router.get(`${base}/quota`, quota);
    router.get(`${base}/fallback_origin`, getFallback).put(`${base}/fallback_origin`, putFallback).delete(`${base}/fallback_origin`, deleteFallback);
    router.post(base, create).get(base, list);
    router.get(`${base}/:hostnameId`, get).patch(`${base}/:hostnameId`, edit).delete(`${base}/:hostnameId`, remove);
  }
  router.put("/admin/v1/:kind/:scopeId/custom_hostnames/quota", setQuota);
  router.get("/.well-known/acme-challenge/:token", acmeChallenge);
  return [
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/custom_hostnames\/?$/,
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/custom_hostnames\/[^/]+\/?$/,
    /^\/admin\/v1\/[^/]+\/[^/]+\/custom_hostnames\/quota\/?$/,
    /^\/\.well-known\/acme-challenge\/[^/]+$/,
  ];
}
