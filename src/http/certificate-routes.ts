import { BUNDLE_METHODS, type CertificateUpload } from "../tenant/certificate-records";
import { readJson } from "./body";
import { CSR_ID, tenant, unwrap, uuidParam } from "./csr-routes";
import { ApiError } from "./errors";
import { pageOf, success } from "./envelope";
import { parseListQuery } from "./list-query";
import { API_PREFIXES, type ApiRequest, type ApiRouter, tenantContext } from "./request";

const certificateId = (request: ApiRequest) => uuidParam(request, "certificateId", "invalid_certificate_id");

/**
 * The body of an upload: `certificate` and `custom_csr_id` (required here,
 * since this service only installs certificates for keys it generated), an
 * optional `bundle_method`; `private_key` is refused. Cloudflare's other
 * options (`type`, `geo_restrictions`, `policy`, `deploy`) are accepted and
 * have no effect on a self-hosted store.
 */
function parseUpload(body: unknown): CertificateUpload {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ApiError("invalid_json");
  const b = body as Record<string, unknown>;
  if (b.private_key !== undefined && b.private_key !== null) throw new ApiError("private_key_not_accepted", { pointer: "/private_key" });
  if (b.custom_csr_id === undefined || b.custom_csr_id === null) throw new ApiError("missing_custom_csr_id", { pointer: "/custom_csr_id" });
  if (typeof b.custom_csr_id !== "string" || !CSR_ID.test(b.custom_csr_id.toLowerCase())) {
    throw new ApiError("invalid_csr_id", { pointer: "/custom_csr_id" });
  }
  const bundle = b.bundle_method ?? "ubiquitous";
  if (typeof bundle !== "string" || !(BUNDLE_METHODS as readonly string[]).includes(bundle)) {
    throw new ApiError("invalid_bundle_method", { pointer: "/bundle_method" });
  }
  return {
    certificate: b.certificate,
    custom_csr_id: b.custom_csr_id.toLowerCase(),
    bundle_method: bundle as CertificateUpload["bundle_method"],
  };
}

async function upload(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  const input = parseUpload(unwrap(await readJson(request)));
  return success(unwrap(await tenant(env, scope).uploadCertificate(call, input)));
}

async function list(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  const query = unwrap(parseListQuery(new URL(request.url).searchParams, scope));
  const page = unwrap(await tenant(env, scope).listCertificates(call, query));
  return pageOf(page, query);
}

async function get(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "read");
  return success(unwrap(await tenant(env, scope).getCertificate(call, certificateId(request))));
}

async function remove(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, call } = await tenantContext(request, env, "write");
  return success(unwrap(await tenant(env, scope).deleteCertificate(call, certificateId(request))));
}

/** Registers the zone-scoped custom certificate endpoints; returns their path patterns. */
export function certificateRoutes(router: ApiRouter): RegExp[] {
  for (const prefix of API_PREFIXES) {
    const base = `${prefix}/zones/:scopeId/custom_certificates`;
    router.post(base, upload).get(base, list);
    router.get(`${base}/:certificateId`, get).delete(`${base}/:certificateId`, remove);
  }
  return [
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/custom_certificates\/?$/,
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/custom_certificates\/[^/]+\/?$/,
  ];
}
