import { type GeoLabel, placementAllows } from "../pki/geo-policy";
import {
  BUNDLE_METHODS,
  type BundleMethod,
  type CertificateEdit,
  type CertificateRecord,
  type CertificateUpload,
} from "../tenant/certificate-records";
import { readJson } from "./body";
import { CSR_ID, EMPTY_PAGE, unwrap, uuidParam } from "./csr-routes";
import { readableTenant } from "./scopes";
import { edgeRegistry } from "./edge-routes";
import { ApiError, MESSAGES } from "./errors";
import type { ResponseInfo } from "./envelope";
import { parsePlacement, parsePlacementChange } from "./placement-input";
import { pageOf, success } from "./envelope";
import { parseListQuery } from "./list-query";
import { API_PREFIXES, type ApiRequest, type ApiRouter, tenantContext } from "./request";

const certificateId = (request: ApiRequest) => uuidParam(request, "certificateId", "invalid_certificate_id");

function bodyObject(body: unknown): Record<string, unknown> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError("invalid_json");
  return body as Record<string, unknown>;
}

function bundleMethod(raw: unknown): BundleMethod {
  if (typeof raw !== "string" || !(BUNDLE_METHODS as readonly string[]).includes(raw)) {
    throw new ApiError("invalid_bundle_method", { pointer: "/bundle_method" });
  }
  return raw as BundleMethod;
}

function csrIdField(raw: unknown): string {
  if (typeof raw !== "string" || !CSR_ID.test(raw.toLowerCase())) throw new ApiError("invalid_csr_id", { pointer: "/custom_csr_id" });
  return raw.toLowerCase();
}

/**
 * The body of an upload: `certificate` and `custom_csr_id` (required here,
 * since this service only installs certificates for keys it generated), an
 * optional `bundle_method`, and Geo Key Manager's `policy` or
 * `geo_restrictions`, which decide which registered edges may receive the
 * key; `private_key` is refused. `type` and `deploy` are accepted and have
 * no effect on a self-hosted store.
 */
function parseUpload(body: unknown): CertificateUpload {
  const b = bodyObject(body);
  if (b.private_key !== undefined && b.private_key !== null) throw new ApiError("private_key_not_accepted", { pointer: "/private_key" });
  if (b.custom_csr_id === undefined || b.custom_csr_id === null) throw new ApiError("missing_custom_csr_id", { pointer: "/custom_csr_id" });
  return {
    certificate: b.certificate,
    custom_csr_id: csrIdField(b.custom_csr_id),
    bundle_method: bundleMethod(b.bundle_method ?? "ubiquitous"),
    placement: unwrap(parsePlacement(b)),
  };
}

/**
 * The body of an edit (Cloudflare's PATCH, the SDK's customCertificates.edit):
 * any of `certificate` (a renewal for the same key: every upload check),
 * `bundle_method`, `policy` / `geo_restrictions`; `custom_csr_id`, if sent,
 * must be the certificate's own. `private_key` is refused as on upload.
 */
function parseEdit(body: unknown): CertificateEdit {
  const b = bodyObject(body);
  if (b.private_key !== undefined && b.private_key !== null) throw new ApiError("private_key_not_accepted", { pointer: "/private_key" });
  const edit: CertificateEdit = {};
  if (b.certificate !== undefined && b.certificate !== null) edit.certificate = b.certificate;
  if (b.custom_csr_id !== undefined && b.custom_csr_id !== null) edit.custom_csr_id = csrIdField(b.custom_csr_id);
  if (b.bundle_method !== undefined && b.bundle_method !== null) edit.bundle_method = bundleMethod(b.bundle_method);
  const placement = unwrap(parsePlacementChange(b));
  if (placement.policy !== undefined || placement.geo_restriction !== undefined) edit.placement = placement;
  return edit;
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
  const input = parseUpload(unwrap(await readJson(request, env)));
  const stub = await readableTenant(env, scope);
  if (!stub) throw new ApiError("csr_not_found", { pointer: "/custom_csr_id" });
  const record = unwrap(await stub.uploadCertificate(call, input));
  return success(record, { messages: [...chainMessages(input.certificate), ...(await placementMessages(request, env, record))] });
}

async function edit(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const id = certificateId(request);
  const input = parseEdit(unwrap(await readJson(request, env)));
  const stub = await readableTenant(env, scope);
  if (!stub) throw new ApiError("certificate_not_found");
  const record = unwrap(await stub.editCertificate(call, id, input));
  const renewed = input.certificate === undefined ? [] : chainMessages(input.certificate);
  return success(record, { messages: [...renewed, ...(await placementMessages(request, env, record))] });
}

async function list(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const query = unwrap(parseListQuery(new URL(request.url).searchParams, scope));
  const stub = await readableTenant(env, scope);
  return pageOf(stub ? unwrap(await stub.listCertificates(call, query)) : EMPTY_PAGE, query);
}

async function get(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const id = certificateId(request);
  const stub = await readableTenant(env, scope);
  if (!stub) throw new ApiError("certificate_not_found");
  return success(unwrap(await stub.getCertificate(call, id)));
}

async function remove(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const id = certificateId(request);
  const stub = await readableTenant(env, scope);
  if (!stub) throw new ApiError("certificate_not_found");
  return success(unwrap(await stub.deleteCertificate(call, id)));
}

/** Registers the zone-scoped custom certificate endpoints; returns their path patterns. */
export function certificateRoutes(router: ApiRouter): RegExp[] {
  for (const prefix of API_PREFIXES) {
    const base = `${prefix}/zones/:scopeId/custom_certificates`;
    router.post(base, upload).get(base, list);
    router.get(`${base}/:certificateId`, get).patch(`${base}/:certificateId`, edit).delete(`${base}/:certificateId`, remove);
  }
  return [
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/custom_certificates\/?$/,
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/custom_certificates\/[^/]+\/?$/,
  ];
}
