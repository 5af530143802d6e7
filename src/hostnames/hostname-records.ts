import type { BundleMethod } from "../tenant/certificate-records";
import type { TwinSummary } from "../tenant/hostname-twins";

/** Cloudflare's TLS settings of a custom hostname (the SDK's `ssl.settings`), stored and returned as sent. */
export interface HostnameSettings {
  ciphers?: string[];
  early_hints?: "on" | "off";
  http2?: "on" | "off";
  min_tls_version?: "1.0" | "1.1" | "1.2" | "1.3";
  tls_1_3?: "on" | "off";
}

/** How a custom CSR's certificate is renewed by ACME, when the hostname asks for it (`method` and `type` beside `custom_csr_id`). */
export interface CsrAcme {
  readonly method: "http" | "txt";
  readonly type: "dv";
  readonly certificate_authority: string | null;
}

/** How a custom hostname's certificate comes to be. */
export type HostnameSslInput =
  | {
      /**
       * A certificate for one of the zone's custom CSRs (the key is the CSR's):
       * uploaded (`custom_certificate`, signed by the customer's CA), or, with
       * `acme`, obtained and renewed by ACME, finalized with the CSR itself;
       * both together: the uploaded one now, ACME renewals after it.
       */
      readonly kind: "custom_csr";
      readonly custom_csr_id: string;
      readonly custom_certificate: string | null;
      readonly acme: CsrAcme | null;
      readonly bundle_method: BundleMethod;
      readonly settings: HostnameSettings;
    }
  | {
      /** A certificate this service obtains by ACME and renews itself (its key made and kept here). */
      readonly kind: "managed";
      readonly method: "http" | "txt";
      readonly type: "dv";
      readonly certificate_authority: string | null;
      readonly wildcard: boolean;
      readonly bundle_method: BundleMethod;
      readonly settings: HostnameSettings;
    };

/** A create body the Worker validated (the SDK's CustomHostnameCreateParams). */
export interface HostnameCreate {
  readonly hostname: string;
  readonly custom_metadata: Record<string, string> | null;
  readonly custom_origin_server: string | null;
  readonly custom_origin_sni: string | null;
  readonly ssl: HostnameSslInput | null;
}

/** An edit body the Worker validated (PATCH): each member absent is left as it is; null clears it. */
export interface HostnameEdit {
  readonly custom_metadata?: Record<string, string> | null;
  readonly custom_origin_server?: string | null;
  readonly custom_origin_sni?: string | null;
  readonly ssl?: HostnameSslInput;
}

/** A validation record as Cloudflare returns it (what the customer must publish for DCV). */
export interface ValidationRecord {
  status?: string;
  txt_name?: string;
  txt_value?: string;
  http_url?: string;
  http_body?: string;
}

/** A custom hostname as the API returns it (the SDK's CustomHostname), in its field order. */
export interface CustomHostnameRecord {
  id: string;
  hostname: string;
  created_at: string;
  custom_metadata?: Record<string, string>;
  custom_origin_server?: string;
  custom_origin_sni?: string;
  ssl?: {
    id: string;
    bundle_method: string;
    certificate_authority?: string;
    /** Ours, with dual certificates: every certificate in force, the P-256 one (whose id is the hostname's) and its RSA twin. */
    certificates?: TwinSummary[];
    custom_certificate?: string;
    custom_csr_id?: string;
    expires_on?: string;
    hosts?: string[];
    issuer?: string;
    method?: "http" | "txt";
    serial_number?: string;
    settings: HostnameSettings;
    signature?: string;
    status: string;
    type?: "dv";
    uploaded_on?: string;
    validation_errors?: Array<{ message: string }>;
    validation_records?: ValidationRecord[];
    wildcard: boolean;
  };
  status: "active" | "pending";
  verification_errors: string[];
}

/** A custom_hostnames row, as read with HOSTNAME_COLUMNS. */
export type HostnameRow = {
  id: string;
  hostname: string;
  created_at: string;
  modified_on: string;
  custom_metadata: string | null;
  custom_origin_server: string | null;
  custom_origin_sni: string | null;
  ssl_id: string;
  ssl_kind: "none" | "custom_csr" | "managed";
  ssl_method: string | null;
  ssl_type: string | null;
  ssl_wildcard: number;
  bundle_method: string;
  certificate_authority: string | null;
  ssl_settings: string;
  custom_csr_id: string | null;
  ssl_status: string;
  certificate: string | null;
  hosts: string | null;
  issuer: string | null;
  serial_number: string | null;
  signature: string | null;
  expires_on: string | null;
  uploaded_on: string | null;
  validation_records: string;
  validation_errors: string;
};

export const HOSTNAME_COLUMNS =
  "id, hostname, created_at, modified_on, custom_metadata, custom_origin_server, custom_origin_sni, ssl_id, ssl_kind, ssl_method, ssl_type, ssl_wildcard, bundle_method, certificate_authority, ssl_settings, custom_csr_id, ssl_status, certificate, hosts, issuer, serial_number, signature, expires_on, uploaded_on, validation_records, validation_errors";

/**
 * Row to API object. An active certificate past its expiry reads `expired`
 * (derived from the clock, never stale). The hostname is `active` once its
 * certificate is: on this service a hostname's ownership is shown by its
 * certificate's domain control validation (a custom CSR's certificate was
 * validated by its CA), not by a separate CNAME check.
 */
export function toHostnameRecord(row: HostnameRow, now: number, twins: readonly TwinSummary[] = []): CustomHostnameRecord {
  const status = row.ssl_status === "active" && row.expires_on !== null && Date.parse(row.expires_on) < now ? "expired" : row.ssl_status;
  const record: CustomHostnameRecord = {
    id: row.id,
    hostname: row.hostname,
    created_at: row.created_at,
    status: status === "active" ? "active" : "pending",
    verification_errors: [],
  };
  if (row.custom_metadata !== null) record.custom_metadata = JSON.parse(row.custom_metadata) as Record<string, string>;
  if (row.custom_origin_server !== null) record.custom_origin_server = row.custom_origin_server;
  if (row.custom_origin_sni !== null) record.custom_origin_sni = row.custom_origin_sni;
  if (row.ssl_kind !== "none") {
    const ssl: NonNullable<CustomHostnameRecord["ssl"]> = {
      id: row.ssl_id,
      bundle_method: row.bundle_method,
      settings: JSON.parse(row.ssl_settings) as HostnameSettings,
      status,
      wildcard: row.ssl_wildcard === 1,
    };
    if (row.certificate_authority !== null) ssl.certificate_authority = row.certificate_authority;
    if (twins.length > 0 && row.expires_on !== null) {
      const own: TwinSummary = {
        id: row.id,
        key_type: "p256v1",
        issuer: row.issuer ?? "",
        serial_number: row.serial_number ?? "",
        signature: row.signature ?? "",
        expires_on: row.expires_on,
        uploaded_on: row.uploaded_on ?? "",
      };
      ssl.certificates = [own, ...twins];
    }
    if (row.ssl_kind === "custom_csr" && row.certificate !== null) ssl.custom_certificate = row.certificate;
    if (row.custom_csr_id !== null) ssl.custom_csr_id = row.custom_csr_id;
    if (row.expires_on !== null) ssl.expires_on = row.expires_on;
    if (row.hosts !== null) ssl.hosts = JSON.parse(row.hosts) as string[];
    if (row.issuer !== null) ssl.issuer = row.issuer;
    if (row.ssl_method !== null) ssl.method = row.ssl_method as "http" | "txt";
    if (row.serial_number !== null) ssl.serial_number = row.serial_number;
    if (row.signature !== null) ssl.signature = row.signature;
    if (row.ssl_type !== null) ssl.type = "dv";
    if (row.uploaded_on !== null) ssl.uploaded_on = row.uploaded_on;
    const errors = JSON.parse(row.validation_errors) as Array<{ message: string }>;
    if (errors.length > 0) ssl.validation_errors = errors;
    const records = JSON.parse(row.validation_records) as ValidationRecord[];
    if (records.length > 0) ssl.validation_records = records;
    record.ssl = orderKeys(ssl);
  }
  return record;
}

// The SDK's field order, as Cloudflare answers (JSON keeps insertion order).
function orderKeys<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}

/** A list request, validated by the Worker (the SDK's CustomHostnameListParams). */
export interface HostnameListQuery {
  page: number;
  per_page: number;
  direction: "asc" | "desc";
  order: "ssl" | "ssl_status";
  id?: string;
  hostname?: { exact?: string; contain?: string; startsWith?: string };
  ssl?: 0 | 1;
  ssl_status?: string;
  hostname_status?: "active" | "pending";
  wildcard?: boolean;
  certificate_authority?: string;
  custom_origin_server?: string;
}
