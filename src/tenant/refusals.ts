import type { ScopeMismatch } from "../core/refusals";
import type { KeyRefusal } from "../pki/keyring";

/**
 * What a tenant object refuses, by concern. Every RPC method of TenantStore
 * names the union it can return; src/http/errors.ts maps each reason once.
 */

/** No such custom CSR in the scope (the seeds' 1419); `pointer` when a body member named it. */
export type CsrNotFound = { readonly reason: "csr_not_found"; readonly pointer?: string };

/** A CSR a custom certificate still uses (the seeds' 1420). */
export type CsrInUse = { readonly reason: "csr_in_use" };

/** The scope may not create CSRs (1404), or its quota is used up (1403). */
export type EntitlementRefusal = { readonly reason: "not_entitled" } | { readonly reason: "no_quota" };

/** No such custom certificate in the zone (ours: 1449); `pointer` when a body member named it (a prioritize entry). */
export type CertificateNotFound = { readonly reason: "certificate_not_found"; readonly pointer?: string };

/** The same leaf is already uploaded in the zone, as `certificate_id` (Cloudflare's 1220). */
export type CertificateExists = { readonly reason: "certificate_exists"; readonly pointer: string; readonly certificate_id: string };

/** An export's `after` names no entry of the trail (ours: 1481). */
export type AuditEntryNotFound = { readonly reason: "audit_entry_not_found" };

/** A delivery the certificate's placement or lifetime does not allow (ours: 1475, 1476). */
export type DeliveryRefusal = { readonly reason: "edge_excluded_by_policy" } | { readonly reason: "certificate_expired_not_delivered" };

/** What every call may meet before its own concern: the object holds another scope, or its keys cannot be used. */
export type AccessRefusal = ScopeMismatch | KeyRefusal;
