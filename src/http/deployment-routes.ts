import { parseScopeName, scopeName } from "../core/scope";
import type { Actor } from "../core/call";
import { requireAdminSecret } from "./admin";
import { readJson } from "./body";
import type { BodyShapeRefusal, InvalidQuery } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";
import type { ScopeImport } from "../deployment/deployment-registry";
import { KEK_ID } from "../pki/keyring";
import { tenant } from "./csr-routes";
import { unwrap } from "./results";
import { errorInfo, success } from "./envelope";
import type { Refusal } from "./errors";
import type { ApiRequest, ApiRouter } from "./request";
import { EDGE_REGISTRY_NAME } from "../core/objects";
import { edgeRegistry } from "./edge-routes";
import { deploymentRegistry } from "./scopes";

// Scopes per page of GET /admin/v1/scopes, and per call of the deployment-wide rewrap.
const SCOPES_PER_PAGE = { default: 100, max: 1000 } as const;
const REWRAP_SCOPES = { default: 10, max: 100 } as const;
// CSR keys per tenant rewrap call while the deployment-wide rewrap works through a scope.
const REWRAP_BATCH = 500;
// The most names one import may carry (npm start sends them in batches), and KEK ids per scope.
const IMPORT_MAX = 10_000;
const KEK_IDS_MAX = 100;
// A KEK's check value: hex of 32 bytes (src/pki/keyring.ts).
const CHECK_VALUE = /^[0-9a-f]{64}$/;

function intParam(params: URLSearchParams, name: string, bounds: { default: number; max: number }): Result<number, InvalidQuery> {
  const raw = params.get(name);
  if (raw === null) return ok(bounds.default);
  const n = Number(raw);
  return /^\d{1,6}$/.test(raw) && n >= 1 && n <= bounds.max ? ok(n) : fail({ reason: "invalid_query", parameter: name, rule: `must be an integer from 1 to ${bounds.max}` });
}

/**
 * Where a page starts: after a scope name, or after the edge registry (a
 * holder of KEK-wrapped data the deployment-wide rewrap visits, and so a
 * `next` it can answer).
 */
function afterParam(params: URLSearchParams): Result<string, InvalidQuery> {
  const after = params.get("after") ?? "";
  return after === "" || after === EDGE_REGISTRY_NAME || parseScopeName(after) !== null
    ? ok(after)
    : fail({ reason: "invalid_query", parameter: "after", rule: "must be a scope name such as zones:<id>, or edge-registry" });
}

type ImportRefusal = BodyShapeRefusal | { readonly reason: "invalid_scope_id"; readonly pointer: string };

/** One entry of an import: `"zones:<id>"` (by name only), or `{"name": "zones:<id>" | "edge-registry", "kek_ids": [...]}`. */
function parseImportEntry(entry: unknown, pointer: string): Result<ScopeImport, ImportRefusal> {
  if (typeof entry === "string") {
    const parsed = parseScopeName(entry);
    return parsed ? ok({ name: scopeName(parsed), kek_ids: null }) : fail({ reason: "invalid_scope_id", pointer });
  }
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return fail({ reason: "invalid_scope_id", pointer });
  const { name, kek_ids } = entry as Record<string, unknown>;
  const parsed = typeof name === "string" ? parseScopeName(name) : null;
  if (!parsed && name !== EDGE_REGISTRY_NAME) return fail({ reason: "invalid_scope_id", pointer: `${pointer}/name` });
  if (!Array.isArray(kek_ids) || kek_ids.length > KEK_IDS_MAX || !kek_ids.every((id) => typeof id === "string" && KEK_ID.test(id))) {
    return fail({ reason: "invalid_field_type", pointer: `${pointer}/kek_ids` });
  }
  return ok({ name: parsed ? scopeName(parsed) : EDGE_REGISTRY_NAME, kek_ids: [...new Set(kek_ids as string[])].sort() });
}

/**
 * `{"scopes": [entry, …], "complete": boolean, "checks": {"<kek id>": "<check value>", …}}`:
 * the scopes, canonical, each by name only or with the KEK ids its data
 * uses; `checks` (optional) the check values verified against the data.
 */
function parseImport(body: unknown): Result<{ scopes: ScopeImport[]; complete: boolean; checks: Record<string, string> }, ImportRefusal> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return fail({ reason: "invalid_json" });
  const { scopes, complete, checks } = body as Record<string, unknown>;
  if (!Array.isArray(scopes) || scopes.length > IMPORT_MAX) return fail({ reason: "invalid_field_type", pointer: "/scopes" });
  const entries: ScopeImport[] = [];
  for (const [i, entry] of scopes.entries()) {
    const parsed = parseImportEntry(entry, `/scopes/${i}`);
    if (!parsed.ok) return parsed;
    entries.push(parsed.value);
  }
  if (typeof complete !== "boolean") return fail({ reason: "invalid_field_type", pointer: "/complete" });
  const verified: Record<string, string> = {};
  if (checks !== undefined) {
    if (typeof checks !== "object" || checks === null || Array.isArray(checks)) return fail({ reason: "invalid_field_type", pointer: "/checks" });
    const pairs = Object.entries(checks as Record<string, unknown>);
    if (pairs.length > KEK_IDS_MAX) return fail({ reason: "invalid_field_type", pointer: "/checks" });
    for (const [id, value] of pairs) {
      if (!KEK_ID.test(id) || typeof value !== "string" || !CHECK_VALUE.test(value)) return fail({ reason: "invalid_field_type", pointer: `/checks/${id}` });
      verified[id] = value;
    }
  }
  return ok({ scopes: entries, complete, checks: verified });
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
 * POST /admin/v1/scopes/import with {"scopes": [...], "complete":
 * true|false, "checks": {...}}: lists scopes found in an existing data
 * directory (npm start sends them while the registry cannot vouch for every
 * scope: a directory from before the registry, or scopes listed by name
 * only), each with the KEK ids its data uses, and the check values npm
 * start verified against that data (1505 naming a KEK whose recorded check
 * value differs; nothing is written then). `complete` says the list now
 * holds every scope with data, after which reads of unlisted scopes are
 * answered without waking an object.
 */
async function importScopes(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  const { scopes, complete, checks } = unwrap(parseImport(unwrap(await readJson(request, env))));
  return success(unwrap(await deploymentRegistry(env).importScopes(scopes, complete, checks)));
}

/** What the deployment-wide rewrap answers for one scope (or the edge registry). */
interface ScopeReport {
  scope: string;
  rewrapped: number;
  /** Keys, pooled keys, audit MACs and sealed rows still under another KEK; null when the scope's rewrap stopped with `error`. */
  remaining: number | null;
  /** Each key (CSR or pooled) that did not open, once, with its KEK and why. */
  failures: Array<{ id: string; kek_id?: string; reason: string }>;
  audit_rekeyed?: number;
  audit_failed?: number[];
  /** Certificate rows (a scope) or edges (the edge registry) that had no MAC, sealed now: the operator should check them. */
  certificates_sealed?: string[];
  unsealed?: string[];
  certificates_failed?: string[];
  /** Custom hostname rows whose MAC did not check out under its old KEK: left as they are. */
  hostnames_failed?: string[];
  /** Why the scope's rewrap stopped (its code and message, as an error reply would carry them); the other scopes go on. */
  error?: { code: number; message: string };
}

/** Where one scope's rewrap stopped: a refusal as its reply would say it, anything else as the internal error it is (logged). */
function stopped(scope: string, cause: { refusal: Refusal } | { thrown: unknown }): { code: number; message: string } {
  if ("refusal" in cause) return errorInfo(cause.refusal);
  const message = cause.thrown instanceof Error ? cause.thrown.message : String(cause.thrown);
  console.error(JSON.stringify({ level: "error", event: "rewrap_scope_failed", scope, message }));
  return errorInfo({ reason: "internal" });
}

/** The edge registry's rewrap: its service key and sealed rows. */
async function rewrapEdgeRegistry(env: Env, current: string): Promise<ScopeReport> {
  const result = await edgeRegistry(env).rewrap();
  if (!result.ok) return { scope: EDGE_REGISTRY_NAME, rewrapped: 0, remaining: null, failures: [], error: stopped(EDGE_REGISTRY_NAME, { refusal: result }) };
  const report = result.value;
  const remaining = report.kek_ids.filter((id) => id !== current).length;
  const failures: ScopeReport["failures"] = report.failed.map((id) => ({ id, reason: "record_integrity_failed" }));
  if (report.service_key_failure !== null) failures.push({ id: "service_key", reason: report.service_key_failure });
  return { scope: EDGE_REGISTRY_NAME, rewrapped: (report.service_key_rewrapped ? 1 : 0) + report.resealed, remaining, failures, unsealed: report.unsealed };
}

/**
 * One scope rewrapped completely: through its CSR keys once (a cursor),
 * then again while audit entries are still being re-keyed (a batch per
 * call). Every call's failures are kept, each key once (a key that does not
 * open fails again on every pass, and pooled keys are tried on every call).
 */
async function rewrapTenant(env: Env, name: string, actor: Actor): Promise<ScopeReport> {
  const call = { scope: parseScopeName(name)!, actor };
  let rewrapped = 0;
  let rekeyed = 0;
  const failures = new Map<string, ScopeReport["failures"][number]>();
  const auditFailed = new Set<number>();
  const sealed = new Set<string>();
  const stop = (cause: Parameters<typeof stopped>[1]): ScopeReport => ({ scope: name, rewrapped, remaining: null, failures: [...failures.values()], error: stopped(name, cause) });
  for (let after = ""; ; ) {
    let result;
    try {
      result = await tenant(env, call.scope).rewrapKeys(call, REWRAP_BATCH, after);
    } catch (thrown) {
      return stop({ thrown });
    }
    if (!result.ok) return stop({ refusal: result });
    const report = result.value;
    rewrapped += report.rewrapped + report.pooled_rewrapped + report.hostname_keys_rewrapped + report.acme_accounts_rewrapped;
    rekeyed += report.audit_rekeyed;
    for (const f of report.failures) failures.set(`csr:${f.id}`, f);
    for (const f of report.pooled_failures) failures.set(`pool:${f.id}`, f);
    for (const f of report.key_failures) failures.set(`${f.kind}:${f.id}`, f);
    for (const seq of report.audit_failed) auditFailed.add(seq);
    for (const id of report.certificates_sealed) sealed.add(id);
    if (report.next_after !== null) after = report.next_after;
    else if (report.audit_rekeyed > 0 && report.remaining > 0) after = "";
    else {
      // Its object reported its KEKs (or has no data): nothing unknown is left of it.
      await deploymentRegistry(env).scopeRewrapped(name);
      return {
        scope: name,
        rewrapped,
        audit_rekeyed: rekeyed,
        remaining: report.remaining,
        failures: [...failures.values()],
        audit_failed: [...auditFailed].sort((a, b) => a - b),
        certificates_sealed: [...sealed].sort(),
        certificates_failed: report.certificates_failed,
        hostnames_failed: report.hostnames_failed,
      };
    }
  }
}

/**
 * POST /admin/v1/rewrap?limit=&after=: the deployment-wide rewrap. Visits up
 * to `limit` scopes whose data is under a KEK other than the current one, or
 * whose KEKs the registry does not know yet (after `after`, by name),
 * rewraps each completely, and reports each; call again with `next` until
 * it is null, then GET /admin/v1/keys says which KEKs may be retired. A
 * scope whose keys did not all open keeps its old KEK in use, and its
 * report says which keys and why; a scope whose rewrap stopped (its KEK
 * refused, or a failure) says why in its own entry, and the page goes on.
 */
async function rewrapAll(request: ApiRequest, env: Env): Promise<Response> {
  const actor = await requireAdminSecret(request, env);
  const params = new URL(request.url).searchParams;
  const limit = unwrap(intParam(params, "limit", REWRAP_SCOPES));
  const after = unwrap(afterParam(params));
  const registry = deploymentRegistry(env);
  const { status } = unwrap(await registry.keyStatus());
  const names = unwrap(await registry.scopesNotUnder(status.current_kek_id, after, limit));
  // The first page always visits the edge registry as well: rows of it without
  // a MAC (from before rows were sealed) are sealed only by a rewrap, and need
  // not be under another KEK for that.
  const visits = after === "" && !names.includes(EDGE_REGISTRY_NAME) ? [EDGE_REGISTRY_NAME, ...names] : names;
  const scopes: ScopeReport[] = [];
  for (const name of visits) {
    try {
      // The edge registry holds KEK-wrapped data too (the service key, sealed rows).
      scopes.push(name === EDGE_REGISTRY_NAME ? await rewrapEdgeRegistry(env, status.current_kek_id) : await rewrapTenant(env, name, actor));
    } catch (thrown) {
      scopes.push({ scope: name, rewrapped: 0, remaining: null, failures: [], error: stopped(name, { thrown }) });
    }
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
