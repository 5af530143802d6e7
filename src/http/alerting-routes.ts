import { ALERT_FILTERS, AVAILABLE_ALERTS, REQUIRED_FILTERS } from "../alerting/alert-types";
import { isEdgeId } from "../core/edge-id";
import type { PolicyInput, WebhookInput } from "../alerting/alerting-store";
import { type Result, fail, ok } from "../core/result";
import { isScopeId } from "../core/scope";
import { readJson } from "./body";
import { tenant } from "./csr-routes";
import { success } from "./envelope";
import type { AlertingInputRefusal } from "./errors";
import { pagingParams } from "./list-query";
import { API_PREFIXES, type ApiRequest, type ApiRouter, tenantContext } from "./request";
import { refuse, unwrap } from "./results";
import { readableTenant } from "./scopes";

// Ids are UUIDs; Cloudflare's are 32 hex digits too, so both spellings are taken (lower-cased, dashes as stored).
const ID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/;
const HISTORY_PER_PAGE = { min: 5, max: 1000, default: 25 } as const;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;
const MAX_NAME = 256;
const MAX_DESCRIPTION = 1024;
const MAX_URL = 2048;
const MAX_SECRET = 1024;

type Body = Record<string, unknown>;
const bad = (pointer: string) => fail<AlertingInputRefusal>({ reason: "alert_field_invalid", pointer });
const text = (value: unknown, max: number) => typeof value === "string" && value.trim().length > 0 && value.length <= max && !/[\u0000-\u001f\u007f]/.test(value);

function objectBody(body: unknown): Body {
  if (typeof body !== "object" || body === null || Array.isArray(body)) refuse({ reason: "invalid_json" });
  return body as Body;
}

function idParam(request: ApiRequest, name: string): string {
  const raw = (request.params[name] ?? "").toLowerCase();
  if (!ID.test(raw)) refuse({ reason: "alert_id_invalid" });
  const hex = raw.replaceAll("-", "");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A destination's body: `name`, an http(s) `url` without credentials, an optional `secret` (sent as cf-webhook-auth). */
export function parseWebhook(body: Body): Result<WebhookInput, AlertingInputRefusal> {
  if (!text(body.name, MAX_NAME)) return bad("/name");
  if (typeof body.url !== "string" || body.url.length > MAX_URL) return bad("/url");
  let url: URL;
  try {
    url = new URL(body.url);
  } catch {
    return bad("/url");
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.username !== "" || url.password !== "" || url.hash !== "") return bad("/url");
  if (body.secret !== undefined && body.secret !== null && !text(body.secret, MAX_SECRET)) return bad("/secret");
  return ok({ name: (body.name as string).trim(), url: url.toString(), secret: typeof body.secret === "string" ? body.secret : null });
}

/**
 * A policy's body, whole (create) or in part (PUT): a known `alert_type`,
 * `mechanisms.webhooks` naming at least one destination, `filters` only of
 * the keys its type takes (each a list of strings), no `alert_interval`.
 */
export function parsePolicy(body: Body, partial: boolean): Result<Partial<PolicyInput>, AlertingInputRefusal> {
  const out: Partial<PolicyInput> = {};
  const has = (key: string) => body[key] !== undefined;
  if (has("alert_interval")) return fail({ reason: "alert_interval_unsupported" });
  if (!partial || has("name")) {
    if (!text(body.name, MAX_NAME)) return bad("/name");
    out.name = (body.name as string).trim();
  }
  if (!partial || has("alert_type")) {
    if (typeof body.alert_type !== "string") return bad("/alert_type");
    if (!ALERT_FILTERS.has(body.alert_type)) return fail({ reason: "alert_type_invalid", alert_type: body.alert_type.slice(0, 64) });
    out.alert_type = body.alert_type;
  }
  if (!partial || has("enabled")) {
    if (typeof body.enabled !== "boolean") return bad("/enabled");
    out.enabled = body.enabled;
  }
  if (has("description")) {
    if (body.description !== null && (typeof body.description !== "string" || body.description.length > MAX_DESCRIPTION)) return bad("/description");
    out.description = (body.description as string | null) ?? "";
  } else if (!partial) out.description = "";
  if (!partial || has("mechanisms")) {
    const m = body.mechanisms;
    if (typeof m !== "object" || m === null || Array.isArray(m)) return bad("/mechanisms");
    const { webhooks, ...others } = m as Body;
    const offered = Object.entries(others).filter(([, v]) => Array.isArray(v) && v.length > 0);
    if (offered.length > 0) return bad(`/mechanisms/${offered[0]![0]}`);
    if (webhooks !== undefined && !Array.isArray(webhooks)) return bad("/mechanisms/webhooks");
    const ids: Array<{ id: string }> = [];
    for (const [i, w] of ((webhooks as unknown[] | undefined) ?? []).entries()) {
      const id = typeof w === "object" && w !== null ? (w as Body).id : undefined;
      if (typeof id !== "string" || !ID.test(id.toLowerCase())) return bad(`/mechanisms/webhooks/${i}/id`);
      const hex = id.toLowerCase().replaceAll("-", "");
      ids.push({ id: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}` });
    }
    if (ids.length === 0) return fail({ reason: "alert_mechanisms_required" });
    out.mechanisms = { webhooks: ids };
  }
  if (!partial || has("filters")) {
    const f = body.filters ?? {};
    if (typeof f !== "object" || f === null || Array.isArray(f)) return bad("/filters");
    const allowed = ALERT_FILTERS.get(out.alert_type ?? "") ?? [...new Set([...ALERT_FILTERS.values()].flat())];
    const filters: Record<string, string[]> = {};
    for (const [key, values] of Object.entries(f as Body)) {
      if (!allowed.includes(key)) return fail({ reason: "alert_filter_invalid", problem: `${key.slice(0, 64)} is not a filter of this alert type (${allowed.join(", ")})` });
      if (!Array.isArray(values) || values.some((v) => typeof v !== "string")) return bad(`/filters/${key}`);
      if (key === "zones" && values.some((v) => !isScopeId(v as string))) return fail({ reason: "alert_filter_invalid", problem: "zones must be zone ids" });
      if (key === "edges" && values.some((v) => !isEdgeId(v as string))) return fail({ reason: "alert_filter_invalid", problem: "edges must be edge ids" });
      if (key === "max_age_minutes" && (values.length !== 1 || !/^[1-9][0-9]{0,5}$/.test(values[0] as string))) {
        return fail({ reason: "alert_filter_invalid", problem: "max_age_minutes takes one whole number of minutes, 1 to 999999" });
      }
      filters[key] = values as string[];
    }
    const missing = (REQUIRED_FILTERS.get(out.alert_type ?? "") ?? []).filter((key) => (filters[key] ?? []).length === 0);
    if (missing.length > 0) return fail({ reason: "alert_filters_required", filters: missing.join(", ") });
    out.filters = filters;
  }
  return ok(out);
}

async function accountContext(request: ApiRequest, env: Env, permission: "notifications_read" | "notifications_write") {
  const context = await tenantContext(request, env, permission);
  if (context.scope.kind !== "accounts") refuse({ reason: "no_route" });
  return context;
}

async function createWebhook(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_write");
  const input = unwrap(parseWebhook(objectBody(unwrap(await readJson(request, env)))));
  return success(unwrap(await tenant(env, scope).createWebhook(call, input)));
}

async function updateWebhook(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_write");
  const id = idParam(request, "webhookId");
  const input = unwrap(parseWebhook(objectBody(unwrap(await readJson(request, env)))));
  return success(unwrap(await tenant(env, scope).updateWebhook(call, id, input)));
}

async function listWebhooks(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_read");
  const stub = await readableTenant(env, scope);
  return success(stub ? unwrap(await stub.listWebhooks(call)) : []);
}

async function getWebhook(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_read");
  const id = idParam(request, "webhookId");
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "alert_webhook_not_found" });
  return success(unwrap(await stub.getWebhook(call, id)));
}

async function deleteWebhook(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_write");
  const id = idParam(request, "webhookId");
  unwrap(await tenant(env, scope).deleteWebhook(call, id));
  return success(null);
}

async function createPolicy(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_write");
  const input = unwrap(parsePolicy(objectBody(unwrap(await readJson(request, env))), false)) as PolicyInput;
  return success(unwrap(await tenant(env, scope).createPolicy(call, input)));
}

async function updatePolicy(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_write");
  const id = idParam(request, "policyId");
  const edit = unwrap(parsePolicy(objectBody(unwrap(await readJson(request, env))), true));
  return success(unwrap(await tenant(env, scope).updatePolicy(call, id, edit)));
}

async function listPolicies(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_read");
  const stub = await readableTenant(env, scope);
  return success(stub ? unwrap(await stub.listPolicies(call)) : []);
}

async function getPolicy(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_read");
  const id = idParam(request, "policyId");
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "alert_policy_not_found" });
  return success(unwrap(await stub.getPolicy(call, id)));
}

async function deletePolicy(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_write");
  const id = idParam(request, "policyId");
  unwrap(await tenant(env, scope).deletePolicy(call, id));
  return success(null);
}

/** The history, newest first, Cloudflare's paging (a page past the end is empty, which ends the SDK's iteration). */
async function history(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await accountContext(request, env, "notifications_read");
  const params = new URL(request.url).searchParams;
  const paging = unwrap(pagingParams(params, HISTORY_PER_PAGE));
  const query: { page: number; per_page: number; since?: string; before?: string } = { ...paging };
  for (const name of ["since", "before"] as const) {
    const value = params.get(name);
    if (value === null) continue;
    if (!RFC3339.test(value) || Number.isNaN(Date.parse(value))) refuse({ reason: "alert_field_invalid", pointer: name });
    query[name] = new Date(value).toISOString();
  }
  const stub = await readableTenant(env, scope);
  const { items, total } = stub ? unwrap(await stub.alertHistory(call, query)) : { items: [], total: 0 };
  return success(items, { resultInfo: { count: items.length, page: query.page, per_page: query.per_page, total_count: total, total_pages: Math.ceil(total / query.per_page) } });
}

async function availableAlerts(request: ApiRequest, env: Env): Promise<Response> {
  await accountContext(request, env, "notifications_read");
  return success(AVAILABLE_ALERTS);
}

/** Registers Cloudflare's alerting v3 routes (accounts); returns their path patterns. */
export function alertingRoutes(router: ApiRouter): RegExp[] {
  for (const prefix of API_PREFIXES) {
    const base = `${prefix}/accounts/:scopeId/alerting/v3`;
    router.get(`${base}/available_alerts`, availableAlerts);
    router.post(`${base}/destinations/webhooks`, createWebhook).get(`${base}/destinations/webhooks`, listWebhooks);
    router.get(`${base}/destinations/webhooks/:webhookId`, getWebhook).put(`${base}/destinations/webhooks/:webhookId`, updateWebhook).delete(`${base}/destinations/webhooks/:webhookId`, deleteWebhook);
    router.post(`${base}/policies`, createPolicy).get(`${base}/policies`, listPolicies);
    router.get(`${base}/policies/:policyId`, getPolicy).put(`${base}/policies/:policyId`, updatePolicy).delete(`${base}/policies/:policyId`, deletePolicy);
    router.get(`${base}/history`, history);
  }
  return [
    /^\/(?:client|api)\/v4\/accounts\/[^/]*\/alerting\/v3\/(?:available_alerts|history|destinations\/webhooks|policies)\/?$/,
    /^\/(?:client|api)\/v4\/accounts\/[^/]*\/alerting\/v3\/(?:destinations\/webhooks|policies)\/[^/]+\/?$/,
  ];
}

