import type { GeoLabel, PlacementRule } from "../pki/geo-policy";
import type { ListQuery } from "./records";
import type { CertificateNotFound } from "./refusals";

/**
 * A custom certificate as the API returns it (the SDK's CustomCertificate,
 * what can be known), in the SDK's field order. `geo_restrictions` and
 * `policy_restrictions` appear only when set, as on Cloudflare.
 */
export interface CertificateRecord {
  id: string;
  zone_id: string;
  bundle_method: string;
  custom_csr_id: string;
  expires_on: string;
  geo_restrictions?: { label: GeoLabel };
  hosts: string[];
  issuer: string;
  modified_on: string;
  policy_restrictions?: string;
  priority: number;
  signature: string;
  status: "active" | "expired";
  uploaded_on: string;
}

export type CertificateRow = {
  id: string;
  custom_csr_id: string;
  hosts: string;
  issuer: string;
  signature: string;
  bundle_method: string;
  priority: number;
  expires_on: string;
  uploaded_on: string;
  modified_on: string;
  policy: string | null;
  geo_restriction: string | null;
};

export const CERTIFICATE_COLUMNS =
  "id, custom_csr_id, hosts, issuer, signature, bundle_method, priority, expires_on, uploaded_on, modified_on, policy, geo_restriction";

export const BUNDLE_METHODS = ["ubiquitous", "optimal", "force"] as const;
export type BundleMethod = (typeof BUNDLE_METHODS)[number];

/** What the Worker validated of an upload; the Durable Object checks the certificate itself. */
export interface CertificateUpload {
  certificate: unknown;
  custom_csr_id: string;
  bundle_method: BundleMethod;
  /** Which edges may receive the key (both null: every registered edge). */
  placement: PlacementRule;
}

/**
 * What the Worker validated of an edit (Cloudflare's PATCH): each member
 * absent is left as it is. `custom_csr_id`, when sent, must be the
 * certificate's own: a certificate keeps its key.
 */
export interface CertificateEdit {
  certificate?: unknown;
  custom_csr_id?: string;
  bundle_method?: BundleMethod;
  placement?: PlacementChange;
}

/**
 * A change of placement: a member present is set, or cleared when null;
 * setting one clears the other, since a certificate has at most one.
 */
export interface PlacementChange {
  policy?: string | null;
  geo_restriction?: GeoLabel | null;
}

/**
 * The statuses Cloudflare's list filter takes (the SDK's CustomCertificate
 * `status`). A certificate here is only ever `active` or `expired` (derived
 * from `expires_on` when read); the others name nothing this service has.
 */
export const CERTIFICATE_STATUSES = ["active", "expired", "deleted", "pending", "initializing"] as const;
export type CertificateStatus = (typeof CERTIFICATE_STATUSES)[number];

/** Cloudflare's `match`: whether a certificate must meet every search requirement (`all`, the default) or one (`any`). */
export const MATCHES = ["any", "all"] as const;
export type Match = (typeof MATCHES)[number];

/**
 * A custom certificate list as the Worker validated it: a page, its
 * direction, and Cloudflare's search requirements (today only `status`),
 * combined by `match`. Lists run highest `priority` first, then in upload
 * order; `direction: "desc"` reverses the whole order.
 */
export interface CertificateListQuery extends Pick<ListQuery, "page" | "per_page" | "direction"> {
  status?: CertificateStatus;
  match?: Match;
}

/** Cloudflare's priorities, here: integers from 0 (every certificate's until set) to 2^31 - 1. */
export const PRIORITY = { min: 0, max: 2_147_483_647 } as const;

/** One entry of a prioritize body as the Worker validated it; `pointer` names it in the body, for a refusal. */
export interface PriorityChange {
  id: string;
  priority: number;
  pointer: string;
}

/**
 * A prioritize body that is not a list of distinct certificates with their
 * priorities (ours, 1478): which member, and what it must be.
 */
export type InvalidPriorities = { readonly reason: "invalid_priorities"; readonly pointer: string; readonly rule: string };

/** A prioritize entry naming no certificate of the zone (1449), with the entry's pointer. */
export type PriorityTargetNotFound = Required<CertificateNotFound>;

/** Row to API object, in the SDK's field order; status is derived from the clock, so it is never stale. */
export function toCertificateRecord(row: CertificateRow, zoneId: string, now: number): CertificateRecord {
  return {
    id: row.id,
    zone_id: zoneId,
    bundle_method: row.bundle_method,
    custom_csr_id: row.custom_csr_id,
    expires_on: row.expires_on,
    ...(row.geo_restriction === null ? {} : { geo_restrictions: { label: row.geo_restriction as GeoLabel } }),
    hosts: JSON.parse(row.hosts) as string[],
    issuer: row.issuer,
    modified_on: row.modified_on,
    ...(row.policy === null ? {} : { policy_restrictions: row.policy }),
    priority: row.priority,
    signature: row.signature,
    status: Date.parse(row.expires_on) < now ? "expired" : "active",
    uploaded_on: row.uploaded_on,
  };
}
