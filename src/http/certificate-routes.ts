import type { BodyShapeRefusal, InvalidQuery } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";
import type { Scope } from "../core/scope";
import { type GeoLabel, placementAllows } from "../pki/geo-policy";
import {
  BUNDLE_METHODS,
  type BundleMethod,
  CERTIFICATE_STATUSES,
  type CertificateEdit,
  type CertificateListQuery,
  type CertificateRecord,
  type CertificateUpload,
  type InvalidPriorities,
  MATCHES,
  PRIORITY,
  type PriorityChange,
} from "../tenant/certificate-records";
import { readJson } from "./body";
import { CSR_ID, uuidParam } from "./csr-routes";
import { EMPTY_SCOPE } from "../tenant/empty-scope";
import { readableTenant } from "./scopes";
import { LIST_READS, pageInTurn } from "./read-queue";
import { edgeRegistry } from "./edge-routes";
import { MESSAGES, type RequestRefusal } from "./errors";
import { refuse, unwrap } from "./results";
import type { ResponseInfo } from "./envelope";
import { type PlacementRefusal, parsePlacement, parsePlacementChange } from "./placement-input";
import { pageOf, success } from "./envelope";
import { parseListQuery } from "./list-query";
import { API_PREFIXES, type ApiRequest, type ApiRouter, tenantContext } from "./request";

const certificateId = (request: ApiRequest) => unwrap(uuidParam(request, "certificateId", { reason: "invalid_certificate_id" }));

/** Why an upload or edit body is refused before it reaches the zone's object. */
type CertificateBodyRefusal =
  | BodyShapeRefusal
  | PlacementRefusal
  | Extract<RequestRefusal, { reason: "private_key_not_accepted" | "missing_custom_csr_id" | "invalid_bundle_method" | "invalid_csr_id" }>;

function bodyObject(body: unknown): Result<Record<string, unknown>, BodyShapeRefusal> {
  return typeof body !== "object" || body === null || Array.isArray(body) ? fail({ reason: "invalid_json" }) : ok(body as Record<string, unknown>);
}

function bundleMethod(raw: unknown): Result<BundleMethod, CertificateBodyRefusal> {
  return typeof raw === "string" && (BUNDLE_METHODS as readonly string[]).includes(raw)
    ? ok(raw as BundleMethod)
    : fail({ reason: "invalid_bundle_method", pointer: "/bundle_method" });
}

function csrIdField(raw: unknown): Result<string, CertificateBodyRefusal> {
  return typeof raw === "string" && CSR_ID.test(raw.toLowerCase()) ? ok(raw.toLowerCase()) : fail({ reason: "invalid_csr_id", pointer: "/custom_csr_id" });
}

/**
 * The body of an upload: `certificate` and `custom_csr_id` (required here,
 * since this service only installs certificates for keys it generated), an
 * optional `bundle_method`, and Geo Key Manager's `policy` or
 * `geo_restrictions`, which decide which registered edges may receive the
 * key; `private_key` is refused. `type` and `deploy` are accepted and have
 * no effect on a self-hosted store.
 */
function parseUpload(body: unknown): Result<CertificateUpload, CertificateBodyRefusal> {
  const b = bodyObject(body);
  if (!b.ok) return b;
  const { private_key, custom_csr_id, certificate } = b.value;
  if (private_key !== undefined && private_key !== null) return fail({ reason: "private_key_not_accepted", pointer: "/private_key" });
  if (custom_csr_id === undefined || custom_csr_id === null) return fail({ reason: "missing_custom_csr_id", pointer: "/custom_csr_id" });
  const csr = csrIdField(custom_csr_id);
  if (!csr.ok) return csr;
  const method = bundleMethod(b.value.bundle_method ?? "ubiquitous");
  if (!method.ok) return method;
  const placement = parsePlacement(b.value);
  if (!placement.ok) return placement;
  return ok({ certificate, custom_csr_id: csr.value, bundle_method: method.value, placement: placement.value });
}

/**
 * The body of an edit (Cloudflare's PATCH, the SDK's customCertificates.edit):
 * any of `certificate` (a renewal for the same key: every upload check),
 * `bundle_method`, `policy` / `geo_restrictions`; `custom_csr_id`, if sent,
 * must be the certificate's own. `private_key` is refused as on upload.
 */
function parseEdit(body: unknown): Result<CertificateEdit, CertificateBodyRefusal> {
  const b = bodyObject(body);
  if (!b.ok) return b;
  const { private_key, custom_csr_id, certificate, bundle_method } = b.value;
  if (private_key !== undefined && private_key !== null) return fail({ reason: "private_key_not_accepted", pointer: "/private_key" });
  const edit: CertificateEdit = {};
  if (certificate !== undefined && certificate !== null) edit.certificate = certificate;
  if (custom_csr_id !== undefined && custom_csr_id !== null) {
    const csr = csrIdField(custom_csr_id);
    if (!csr.ok) return csr;
    edit.custom_csr_id = csr.value;
  }
  if (bundle_method !== undefined && bundle_method !== null) {
    const method = bundleMethod(bundle_method);
    if (!method.ok) return method;
    edit.bundle_method = method.value;
  }
  const placement = parsePlacementChange(b.value);
  if (!placement.ok) return placement;
  if (placement.value.policy !== undefined || placement.value.geo_restriction !== undefined) edit.placement = placement.value;
  return ok(edit);
}

/** One of `allowed`, given at most once; absent: undefined. */
function oneOf<T extends string>(params: URLSearchParams, name: string, allowed: readonly T[]): Result<T | undefined, InvalidQuery> {
  const values = params.getAll(name);
  if (values.length > 1) return fail({ reason: "invalid_query", parameter: name, rule: "is given more than once" });
  if (values.length === 0) return ok(undefined);
  return (allowed as readonly string[]).includes(values[0]!)
    ? ok(values[0] as T)
    : fail({ reason: "invalid_query", parameter: name, rule: `must be one of ${allowed.join(", ")}` });
}

/**
 * A certificate list's query: paging and direction as every list
 * (src/http/list-query.ts), and Cloudflare's `status` (one of the SDK's
 * statuses) and `match` (`any`, `all`), each at most once; anything else
 * is 1435 naming the parameter.
 */
export function parseCertificateListQuery(params: URLSearchParams, scope: Scope): Result<CertificateListQuery, InvalidQuery> {
  const list = parseListQuery(params, scope);
  if (!list.ok) return list;
  const status = oneOf(params, "status", CERTIFICATE_STATUSES);
  if (!status.ok) return status;
  const match = oneOf(params, "match", MATCHES);
  if (!match.ok) return match;
  const { page, per_page, direction } = list.value;
  return ok({
    page,
    per_page,
    direction,
    ...(status.value === undefined ? {} : { status: status.value }),
    ...(match.value === undefined ? {} : { match: match.value }),
  });
}

/** Why a prioritize body is refused before it reaches the zone's object. */
export type PrioritizeBodyRefusal = BodyShapeRefusal | InvalidPriorities | { readonly reason: "invalid_certificate_id"; readonly pointer: string };

/**
 * The body of a prioritize (Cloudflare's PUT …/custom_certificates/prioritize,
 * the SDK's customCertificates.prioritize.update): `certificates`, a list of
 * `{id, priority}`, each certificate at most once, each priority an integer
 * from 0 to 2^31 - 1. A member of the wrong JSON type is 1430, a malformed id
 * 1448, anything else 1478; each names its member in `source.pointer`.
 * Unknown members are ignored; an empty list changes nothing.
 */
export function parsePriorities(body: unknown): Result<PriorityChange[], PrioritizeBodyRefusal> {
  const b = bodyObject(body);
  if (!b.ok) return b;
  const list = b.value.certificates;
  if (list === undefined || list === null) return fail({ reason: "invalid_priorities", pointer: "/certificates", rule: "is required" });
  if (!Array.isArray(list)) return fail({ reason: "invalid_field_type", pointer: "/certificates" });
  const changes: PriorityChange[] = [];
  const seen = new Map<string, string>();
  for (const [index, entry] of list.entries()) {
    const at = `/certificates/${index}`;
    const e = bodyObject(entry);
    if (!e.ok) return fail({ reason: "invalid_field_type", pointer: at });
    const { id, priority } = e.value;
    if (id === undefined || id === null) return fail({ reason: "invalid_priorities", pointer: `${at}/id`, rule: "is required" });
    if (typeof id !== "string") return fail({ reason: "invalid_field_type", pointer: `${at}/id` });
    const lower = id.toLowerCase();
    if (!CSR_ID.test(lower)) return fail({ reason: "invalid_certificate_id", pointer: `${at}/id` });
    const first = seen.get(lower);
    if (first !== undefined) return fail({ reason: "invalid_priorities", pointer: `${at}/id`, rule: `repeats ${first}` });
    seen.set(lower, `${at}/id`);
    if (priority === undefined || priority === null) return fail({ reason: "invalid_priorities", pointer: `${at}/priority`, rule: "is required" });
    if (typeof priority !== "number") return fail({ reason: "invalid_field_type", pointer: `${at}/priority` });
    if (!Number.isInteger(priority) || priority < PRIORITY.min || priority > PRIORITY.max) {
      return fail({ reason: "invalid_priorities", pointer: `${at}/priority`, rule: `must be an integer from ${PRIORITY.min} to ${PRIORITY.max}` });
    }
    changes.push({ id: lower, priority, pointer: `${at}/id` });
  }
  return ok(changes);
}

/**
 * A `messages` entry (1461) when the certificate's placement admits none of
 * the registered edges: it is stored, but its key goes nowhere until such an
 * edge is registered. Asked after the change has committed, so it never
 * fails the request: if the registry cannot answer, the reply carries no
 * message (a client retrying a failed upload would make a second one).
 */
async function placementMessages(request: ApiRequest, env: Env, record: CertificateRecord): Promise<ResponseInfo[]> {
  const rule = { policy: record.policy_restrictions ?? null, geo_restriction: (record.geo_restrictions?.label ?? null) as GeoLabel | null };
  if (rule.policy === null && rule.geo_restriction === null) return [];
  try {
    const edges = await edgeRegistry(env).edgeLabels();
    if (!edges.ok) throw new Error(edges.reason);
    return edges.value.some((labels) => placementAllows(rule, labels)) ? [] : [{ ...MESSAGES.policy_matches_no_edge }];
  } catch (error) {
    console.error(JSON.stringify({ level: "error", request_id: request.requestId, event: "edge_registry_unavailable", message: String(error) }));
    return [];
  }
}

/** 1462 when the upload was a lone leaf: no chain, so no signature on it was checked. */
function chainMessages(certificate: unknown): ResponseInfo[] {
  const blocks = typeof certificate === "string" ? (certificate.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length : 0;
  return blocks === 1 ? [{ ...MESSAGES.chain_not_checked }] : [];
}

async function upload(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const input = unwrap(parseUpload(unwrap(await readJson(request, env))));
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "csr_not_found", pointer: "/custom_csr_id" });
  const record = unwrap(await stub.uploadCertificate(call, input));
  return success(record, { messages: [...chainMessages(input.certificate), ...(await placementMessages(request, env, record))] });
}

async function edit(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const id = certificateId(request);
  const input = unwrap(parseEdit(unwrap(await readJson(request, env))));
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "certificate_not_found" });
  const record = unwrap(await stub.editCertificate(call, id, input));
  const renewed = input.certificate === undefined ? [] : chainMessages(input.certificate);
  return success(record, { messages: [...renewed, ...(await placementMessages(request, env, record))] });
}

async function list(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const query = unwrap(parseCertificateListQuery(new URL(request.url).searchParams, scope));
  const stub = await readableTenant(env, scope);
  if (!stub) return pageOf(EMPTY_SCOPE.page, query);
  return pageInTurn(LIST_READS, async () => unwrap(await stub.listCertificates(call, query)), (page) => pageOf(page, query));
}

/**
 * Cloudflare's prioritize: new priorities for the certificates named, all or
 * none; the reply is the list as GET answers it with the same query (the
 * SDK reads it as a single page).
 */
async function prioritize(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const query = unwrap(parseCertificateListQuery(new URL(request.url).searchParams, scope));
  const changes = unwrap(parsePriorities(unwrap(await readJson(request, env))));
  const stub = await readableTenant(env, scope);
  if (!stub) {
    // A zone with no data has no certificate to name.
    if (changes.length > 0) refuse({ reason: "certificate_not_found", pointer: changes[0]!.pointer });
    return pageOf(EMPTY_SCOPE.page, query);
  }
  return pageInTurn(LIST_READS, async () => unwrap(await stub.prioritizeCertificates(call, changes, query)), (page) => pageOf(page, query));
}

async function get(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const id = certificateId(request);
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "certificate_not_found" });
  return success(unwrap(await stub.getCertificate(call, id)));
}

async function remove(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const id = certificateId(request);
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "certificate_not_found" });
  return success(unwrap(await stub.deleteCertificate(call, id)));
}

/** Registers the zone-scoped custom certificate endpoints; returns their path patterns. */
export function certificateRoutes(router: ApiRouter): RegExp[] {
  for (const prefix of API_PREFIXES) {
    const base = `${prefix}/zones/:scopeId/custom_certificates`;
    router.post(base, upload).get(base, list);
    router.put(`${base}/prioritize`, prioritize);
    router.get(`${base}/:certificateId`, get).patch(`${base}/:certificateId`, edit).delete(`${base}/:certificateId`, remove);
  }
  return [
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/custom_certificates\/?$/,
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/custom_certificates\/[^/]+\/?$/,
  ];
}
