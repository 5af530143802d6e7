/** A custom certificate as the API returns it (the SDK's CustomCertificate, what can be known). */
export interface CertificateRecord {
  id: string;
  zone_id: string;
  bundle_method: string;
  custom_csr_id: string;
  expires_on: string;
  hosts: string[];
  issuer: string;
  modified_on: string;
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
};

export const CERTIFICATE_COLUMNS =
  "id, custom_csr_id, hosts, issuer, signature, bundle_method, priority, expires_on, uploaded_on, modified_on";

export const BUNDLE_METHODS = ["ubiquitous", "optimal", "force"] as const;

/** What the Worker validated of an upload; the Durable Object checks the certificate itself. */
export interface CertificateUpload {
  certificate: unknown;
  custom_csr_id: string;
  bundle_method: (typeof BUNDLE_METHODS)[number];
}

/** Row to API object; status is derived from the clock, so it is never stale. */
export function toCertificateRecord(row: CertificateRow, zoneId: string, now: number): CertificateRecord {
  return {
    id: row.id,
    zone_id: zoneId,
    bundle_method: row.bundle_method,
    custom_csr_id: row.custom_csr_id,
    expires_on: row.expires_on,
    hosts: JSON.parse(row.hosts) as string[],
    issuer: row.issuer,
    modified_on: row.modified_on,
    priority: row.priority,
    signature: row.signature,
    status: Date.parse(row.expires_on) < now ? "expired" : "active",
    uploaded_on: row.uploaded_on,
  };
}
