import type { BodyShapeRefusal } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";
import type { CsrAcme, HostnameCreate, HostnameEdit, HostnameSettings, HostnameSslInput } from "../hostnames/hostname-records";
import { type HostnameNameRefusal, type OriginNameRefusal, checkHostname, checkOriginName } from "../pki/hostname";
import { BUNDLE_METHODS, type BundleMethod } from "../tenant/certificate-records";
import { CSR_ID } from "./csr-routes";

/** Why a custom hostname body is refused (Cloudflare's custom hostname codes, and ours from 1450). */
export type HostnameBodyRefusal =
  | BodyShapeRefusal
  | HostnameNameRefusal
  | OriginNameRefusal
  | { readonly reason: "hostname_metadata_invalid"; readonly pointer: string }
  | { readonly reason: "hostname_ssl_invalid"; readonly pointer: string }
  | { readonly reason: "hostname_setting_invalid"; readonly pointer: string; readonly setting: "http2" | "tls_1_3" | "min_tls_version" | "ciphers" | "early_hints" }
  | { readonly reason: "hostname_ciphers_with_tls_1_3"; readonly pointer: string }
  | { readonly reason: "hostname_method_unsupported"; readonly pointer: string }
  | { readonly reason: "hostname_email_validation"; readonly pointer: string }
  | { readonly reason: "hostname_type_unsupported"; readonly pointer: string }
  | { readonly reason: "hostname_method_and_type_required"; readonly pointer: string }
  | { readonly reason: "hostname_bundle_method_invalid"; readonly pointer: string }
  | { readonly reason: "hostname_csr_id_invalid"; readonly pointer: string }
  | { readonly reason: "hostname_certificate_empty"; readonly pointer: string }
  | { readonly reason: "hostname_custom_key_refused"; readonly pointer: string }
  | { readonly reason: "hostname_certificate_needs_csr"; readonly pointer: string }
  | { readonly reason: "hostname_http_wildcard"; readonly pointer: string }
  | { readonly reason: "hostname_not_modifiable"; readonly pointer: string };

type Refusal<T> = Result<T, HostnameBodyRefusal>;

// Cloudflare's custom metadata is at most 4 KB of JSON per hostname.
const MAX_METADATA_BYTES = 4096;
const MAX_CIPHERS = 64;
const CIPHER = /^[A-Z0-9_-]{1,64}$/;
const SETTINGS_ON_OFF = ["http2", "tls_1_3", "early_hints"] as const;
const TLS_VERSIONS = ["1.0", "1.1", "1.2", "1.3"];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function metadata(raw: unknown): Refusal<Record<string, string> | null> {
  if (raw === null) return ok(null);
  const pointer = "/custom_metadata";
  if (!isObject(raw) || Object.values(raw).some((v) => typeof v !== "string")) return fail({ reason: "hostname_metadata_invalid", pointer });
  if (new TextEncoder().encode(JSON.stringify(raw)).byteLength > MAX_METADATA_BYTES) return fail({ reason: "hostname_metadata_invalid", pointer });
  return ok(raw as Record<string, string>);
}

function originServer(raw: unknown, pointer: string): Refusal<string | null> {
  if (raw === null) return ok(null);
  if (typeof raw !== "string") return fail({ reason: "invalid_field_type", pointer });
  const name = raw.trim().toLowerCase();
  if (pointer === "/custom_origin_sni" && name === ":request_host_header:") return ok(name);
  const refusal = checkOriginName(name, pointer);
  return refusal ? fail(refusal) : ok(name);
}

function settings(raw: unknown): Refusal<HostnameSettings> {
  if (raw === undefined || raw === null) return ok({});
  if (!isObject(raw)) return fail({ reason: "hostname_ssl_invalid", pointer: "/ssl/settings" });
  const out: HostnameSettings = {};
  for (const name of SETTINGS_ON_OFF) {
    const value = raw[name];
    if (value === undefined) continue;
    if (value !== "on" && value !== "off") return fail({ reason: "hostname_setting_invalid", pointer: `/ssl/settings/${name}`, setting: name });
    out[name] = value;
  }
  if (raw.min_tls_version !== undefined) {
    if (typeof raw.min_tls_version !== "string" || !TLS_VERSIONS.includes(raw.min_tls_version)) {
      return fail({ reason: "hostname_setting_invalid", pointer: "/ssl/settings/min_tls_version", setting: "min_tls_version" });
    }
    out.min_tls_version = raw.min_tls_version as HostnameSettings["min_tls_version"];
  }
  if (raw.ciphers !== undefined) {
    const ciphers = raw.ciphers;
    if (!Array.isArray(ciphers) || ciphers.length > MAX_CIPHERS || ciphers.some((c) => typeof c !== "string" || !CIPHER.test(c))) {
      return fail({ reason: "hostname_setting_invalid", pointer: "/ssl/settings/ciphers", setting: "ciphers" });
    }
    // TLS 1.3's suites are not configurable (Cloudflare's 1443).
    if (out.min_tls_version === "1.3") return fail({ reason: "hostname_ciphers_with_tls_1_3", pointer: "/ssl/settings/ciphers" });
    out.ciphers = ciphers as string[];
  }
  return ok(out);
}

function bundleMethod(raw: unknown): Refusal<BundleMethod> {
  if (raw === undefined || raw === null) return ok("ubiquitous");
  return typeof raw === "string" && (BUNDLE_METHODS as readonly string[]).includes(raw)
    ? ok(raw as BundleMethod)
    : fail({ reason: "hostname_bundle_method_invalid", pointer: "/ssl/bundle_method" });
}

/** How a certificate is validated: `method` (`http` or `txt`; `email` refused), `type` (`dv`), optional `certificate_authority`. */
function validation(raw: Record<string, unknown>): Refusal<CsrAcme> {
  const dcv = raw.method;
  const type = raw.type;
  if (dcv === "email") return fail({ reason: "hostname_email_validation", pointer: "/ssl/method" });
  if (dcv !== undefined && dcv !== "http" && dcv !== "txt") return fail({ reason: "hostname_method_unsupported", pointer: "/ssl/method" });
  if (type !== undefined && type !== "dv") return fail({ reason: "hostname_type_unsupported", pointer: "/ssl/type" });
  if (dcv === undefined || type === undefined) return fail({ reason: "hostname_method_and_type_required", pointer: dcv === undefined ? "/ssl/method" : "/ssl/type" });
  const ca = raw.certificate_authority;
  if (ca !== undefined && ca !== null && (typeof ca !== "string" || !/^[a-z0-9_-]{1,64}$/.test(ca))) return fail({ reason: "hostname_ssl_invalid", pointer: "/ssl/certificate_authority" });
  return ok({ method: dcv, type: "dv", certificate_authority: typeof ca === "string" ? ca : null });
}

/**
 * `ssl`: either a custom CSR's certificate (`custom_csr_id` and
 * `custom_certificate`), or a managed certificate (`method` and `type`,
 * optional `certificate_authority` and `wildcard`). A private key is never
 * accepted (`custom_key`, `custom_cert_bundle`): keys are made and kept here.
 */
function ssl(raw: unknown, hostname: string | null): Refusal<HostnameSslInput> {
  if (!isObject(raw)) return fail({ reason: "hostname_ssl_invalid", pointer: "/ssl" });
  if (raw.custom_key !== undefined && raw.custom_key !== null) return fail({ reason: "hostname_custom_key_refused", pointer: "/ssl/custom_key" });
  if (raw.custom_cert_bundle !== undefined && raw.custom_cert_bundle !== null) return fail({ reason: "hostname_custom_key_refused", pointer: "/ssl/custom_cert_bundle" });
  const method = bundleMethod(raw.bundle_method);
  if (!method.ok) return method;
  const tls = settings(raw.settings);
  if (!tls.ok) return tls;
  const csrId = raw.custom_csr_id;
  const certificate = raw.custom_certificate;
  if (csrId !== undefined && csrId !== null) {
    if (typeof csrId !== "string" || !CSR_ID.test(csrId.toLowerCase())) return fail({ reason: "hostname_csr_id_invalid", pointer: "/ssl/custom_csr_id" });
    // With method and type, the CSR's certificate is obtained (or, after an uploaded one, renewed) by ACME.
    const acme = raw.method === undefined && raw.type === undefined ? ok(null) : validation(raw);
    if (!acme.ok) return acme;
    if (raw.wildcard !== undefined && raw.wildcard !== null && raw.wildcard !== false) return fail({ reason: "hostname_ssl_invalid", pointer: "/ssl/wildcard" });
    const uploaded = certificate === undefined || certificate === null ? null : certificate;
    if (uploaded !== null && (typeof uploaded !== "string" || uploaded.trim() === "")) return fail({ reason: "hostname_certificate_empty", pointer: "/ssl/custom_certificate" });
    if (uploaded === null && acme.value === null) return fail({ reason: "hostname_certificate_empty", pointer: "/ssl/custom_certificate" });
    return ok({ kind: "custom_csr", custom_csr_id: csrId.toLowerCase(), custom_certificate: uploaded, acme: acme.value, bundle_method: method.value, settings: tls.value });
  }
  if (certificate !== undefined && certificate !== null) return fail({ reason: "hostname_certificate_needs_csr", pointer: "/ssl/custom_certificate" });
  const dcv = validation(raw);
  if (!dcv.ok) return dcv;
  const wildcard = raw.wildcard ?? false;
  if (typeof wildcard !== "boolean") return fail({ reason: "hostname_ssl_invalid", pointer: "/ssl/wildcard" });
  // A CA validates a wildcard name by DNS only (RFC 8555 §7.1.3).
  if (dcv.value.method === "http" && (wildcard || hostname?.startsWith("*."))) return fail({ reason: "hostname_http_wildcard", pointer: "/ssl/method" });
  return ok({
    kind: "managed",
    ...dcv.value,
    wildcard,
    bundle_method: method.value,
    settings: tls.value,
  });
}

/** `POST /zones/{zone}/custom_hostnames`: the SDK's CustomHostnameCreateParams, validated in Cloudflare's order. */
export function parseHostnameCreate(body: unknown): Refusal<HostnameCreate> {
  if (!isObject(body)) return fail({ reason: "invalid_json" });
  const raw = body.hostname;
  if (typeof raw !== "string") return fail({ reason: "hostname_invalid", pointer: "/hostname" });
  const hostname = raw.trim().toLowerCase();
  const name = checkHostname(hostname, "/hostname");
  if (name) return fail(name);
  const meta = metadata(body.custom_metadata ?? null);
  if (!meta.ok) return meta;
  const origin = originServer(body.custom_origin_server ?? null, "/custom_origin_server");
  if (!origin.ok) return origin;
  const sni = originServer(body.custom_origin_sni ?? null, "/custom_origin_sni");
  if (!sni.ok) return sni;
  let tls: HostnameSslInput | null = null;
  if (body.ssl !== undefined && body.ssl !== null) {
    const parsed = ssl(body.ssl, hostname);
    if (!parsed.ok) return parsed;
    tls = parsed.value;
  }
  return ok({ hostname, custom_metadata: meta.value, custom_origin_server: origin.value, custom_origin_sni: sni.value, ssl: tls });
}

/**
 * `PATCH …/custom_hostnames/{id}`: any of custom_metadata, custom_origin_server,
 * custom_origin_sni and ssl (the same ssl again re-triggers validation, as
 * Cloudflare documents); the hostname itself cannot change (1439).
 */
export function parseHostnameEdit(body: unknown, hostname: string | null): Refusal<HostnameEdit> {
  if (!isObject(body)) return fail({ reason: "invalid_json" });
  if (body.hostname !== undefined) return fail({ reason: "hostname_not_modifiable", pointer: "/hostname" });
  const edit: { -readonly [K in keyof HostnameEdit]: HostnameEdit[K] } = {};
  if (body.custom_metadata !== undefined) {
    const meta = metadata(body.custom_metadata);
    if (!meta.ok) return meta;
    edit.custom_metadata = meta.value;
  }
  for (const name of ["custom_origin_server", "custom_origin_sni"] as const) {
    if (body[name] === undefined) continue;
    const origin = originServer(body[name], `/${name}`);
    if (!origin.ok) return origin;
    edit[name] = origin.value;
  }
  if (body.ssl !== undefined && body.ssl !== null) {
    const parsed = ssl(body.ssl, hostname);
    if (!parsed.ok) return parsed;
    edit.ssl = parsed.value;
  }
  return ok(edit);
}
