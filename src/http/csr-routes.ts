import { parseCsrInput } from "../pki/csr-input";
import type { Scope } from "../core/scope";
import { scopeName } from "../core/scope";
import type { TenantStore } from "../tenant/tenant-store";
import { readJson } from "./body";
import { EMPTY_SCOPE } from "../tenant/empty-scope";
import { type Result, fail, ok } from "../core/result";
import { MESSAGES } from "./errors";
import { pageOf, success, successJson } from "./envelope";
import { parseListQuery } from "./list-query";
import { API_PREFIXES, type ApiRequest, type ApiRouter, tenantContext } from "./request";
import { readableTenant } from "./scopes";
import { LIST_READS, pageInTurn } from "./read-queue";
import { admitCreate } from "../tenant/csr-store";
import { defaultEntitlement } from "../tenant/entitlements";
import { refuse, unwrap } from "./results";


// Custom CSR (and certificate) ids are UUIDs (Cloudflare's schema: at most 36 characters).
export const CSR_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// Object ids by scope name: idFromName hashes the name on every call, and an
// id is a plain value, safe to keep across requests (stubs are not kept).
const TENANT_IDS = new Map<string, DurableObjectId>();
const TENANT_IDS_MAX = 10_000;

/** The scope's Durable Object: one per account or zone, named by its scope. */
export function tenant(env: Env, scope: Scope): DurableObjectStub<TenantStore> {
  const name = scopeName(scope);
  let id = TENANT_IDS.get(name);
  if (!id) {
    if (TENANT_IDS.size >= TENANT_IDS_MAX) TENANT_IDS.delete(TENANT_IDS.keys().next().value!);
    id = env.TENANTS.idFromName(name);
    TENANT_IDS.set(name, id);
  }
  return env.TENANTS.get(id);
}

/** A UUID path parameter, lower-cased; malformed (or badly escaped) is `refusal`. */
export function uuidParam<R extends { readonly reason: string }>(request: ApiRequest, name: string, refusal: R): Result<string, R> {
  let raw: string;
  try {
    raw = decodeURIComponent(request.params[name] ?? "");
  } catch {
    return fail(refusal);
  }
  const id = raw.toLowerCase();
  return CSR_ID.test(id) ? ok(id) : fail(refusal);
}

const csrId = (request: ApiRequest) => unwrap(uuidParam(request, "csrId", { reason: "invalid_csr_id" }));

/**
 * rsa2048 creates of one scope in flight in this isolate, at most
 * RSA_CREATES_IN_FLIGHT: beyond, a create is refused at once with 429 (971)
 * and Retry-After. Its object generates RSA keys one at a time (50–65 ms
 * each, src/tenant/tenant-store.ts), so more would only wait, holding their
 * connections and queueing the isolate's work behind them.
 */
export const RSA_CREATES_IN_FLIGHT = 16;
const rsaCreates = new Map<string, number>();

async function createCsr(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const body = await readJson(request, env);
  // A body that fails to parse or validate is still sent, as a refusal, so
  // the object can answer entitlement (1403/1404) before body errors.
  const input = body.ok ? parseCsrInput(body.value) : body;
  // A scope with no data answers a malformed body as its object would,
  // without waking it (and creating its database file): unless the
  // deployment's default entitlement refuses first, which the object records.
  if (!input.ok && !(await readableTenant(env, scope))) {
    const admitted = admitCreate(input, defaultEntitlement(env), 0);
    if (!admitted.ok && !("refuse" in admitted)) refuse(admitted);
  }
  const rsa = input.ok && input.value.key_type === "rsa2048" ? scopeName(scope) : null;
  if (rsa !== null) {
    const now = rsaCreates.get(rsa) ?? 0;
    if (now >= RSA_CREATES_IN_FLIGHT) refuse({ reason: "rate_limited" });
    rsaCreates.set(rsa, now + 1);
  }
  let record;
  try {
    record = unwrap(await tenant(env, scope).createCsr(call, input));
  } finally {
    if (rsa !== null) {
      const left = (rsaCreates.get(rsa) ?? 1) - 1;
      if (left > 0) rsaCreates.set(rsa, left);
      else rsaCreates.delete(rsa);
    }
  }
  const messages = record.sans.some((san) => san.toLowerCase() === record.common_name.toLowerCase())
    ? []
    : [MESSAGES.common_name_not_in_sans];
  return success(record, { status: 201, messages: messages.map((m) => ({ ...m })) });
}

async function listCsrs(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const query = unwrap(parseListQuery(new URL(request.url).searchParams, scope));
  const stub = await readableTenant(env, scope);
  if (!stub) return pageOf(EMPTY_SCOPE.page, query);
  return pageInTurn(LIST_READS, async () => unwrap(await stub.listCsrs(call, query)), (page) => pageOf(page, query));
}

async function getCsr(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const id = csrId(request);
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "csr_not_found" });
  return successJson(unwrap(await stub.getCsr(call, id)));
}

async function deleteCsr(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const id = csrId(request);
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "csr_not_found" });
  return success(unwrap(await stub.deleteCsr(call, id)));
}

/** Registers the four Custom CSR endpoints under both API prefixes; returns their path patterns. */
export function csrRoutes(router: ApiRouter): RegExp[] {
  for (const prefix of API_PREFIXES) {
    for (const kind of ["accounts", "zones"]) {
      const base = `${prefix}/${kind}/:scopeId/custom_csrs`;
      router.post(base, createCsr).get(base, listCsrs);
      router.get(`${base}/:csrId`, getCsr).delete(`${base}/:csrId`, deleteCsr);
    }
  }
  return [
    /^\/(?:client|api)\/v4\/(?:accounts|zones)\/[^/]*\/custom_csrs\/?$/,
    /^\/(?:client|api)\/v4\/(?:accounts|zones)\/[^/]*\/custom_csrs\/[^/]+\/?$/,
  ];
}
