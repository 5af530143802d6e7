import type { TenantCall } from "../core/call";
import { type Result, fail, ok } from "../core/result";
import type { Scope } from "../core/scope";
import { checkCertificate } from "../pki/certificate-check";
import {
  CERTIFICATE_COLUMNS,
  type CertificateRecord,
  type CertificateRow,
  type CertificateUpload,
  toCertificateRecord,
} from "./certificate-records";
import type { AuditTrail } from "./audit-trail";
import type { Counters } from "./counters";
import type { CsrStore } from "./csr-store";
import { readPage } from "./paging";
import type { JsonText, ListQuery, Page } from "./records";
import type { TenantStorage } from "./storage";

/**
 * Custom certificates uploaded against the zone's custom CSRs. The only
 * writer of `certificates`; while a row names a CSR, the CSR stays (1420).
 */
export class CertificateStore {
  constructor(
    private readonly storage: TenantStorage,
    private readonly csrs: CsrStore,
    private readonly counters: Counters,
    private readonly audit: AuditTrail,
  ) {}

  /**
   * Installs a CA-signed certificate for one of this zone's CSRs. The check
   * (parse, key match, validity, chain) runs first; the row is written in a
   * transaction that finds the CSR still there.
   */
  async upload(call: TenantCall, upload: CertificateUpload): Promise<Result<CertificateRecord>> {
    const scope = call.scope;
    const csr = this.csrs.pem(upload.custom_csr_id);
    if (csr === null) return fail("csr_not_found", { pointer: "/custom_csr_id" });
    const checked = await checkCertificate(upload.certificate, csr, new Date());
    if (!checked.ok) {
      // A certificate for another key is a decision worth keeping; a
      // malformed or expired upload is only a bad request.
      if (checked.reason === "certificate_key_mismatch") {
        this.audit.record(call, {
          action: "create",
          resource: { type: "custom_certificate", id: null },
          result: false,
          info: "the certificate is for another key (1441)",
          metadata: { custom_csr_id: upload.custom_csr_id },
        });
      }
      return checked;
    }
    const id = crypto.randomUUID();
    return this.storage.transaction((): Result<CertificateRecord> => {
      if (this.csrs.pem(upload.custom_csr_id) === null) return fail("csr_not_found", { pointer: "/custom_csr_id" });
      const now = new Date().toISOString();
      this.storage.sql.run(
        `INSERT INTO certificates (id, custom_csr_id, certificate, hosts, issuer, signature, bundle_method, priority,
           expires_on, uploaded_on, modified_on)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
        id,
        upload.custom_csr_id,
        checked.value.pem,
        JSON.stringify(checked.value.hosts),
        checked.value.issuer,
        checked.value.signature,
        upload.bundle_method,
        checked.value.expires_on,
        now,
        now,
      );
      this.counters.bump("certificates", 1);
      this.audit.record(call, {
        action: "create",
        resource: { type: "custom_certificate", id },
        result: true,
        metadata: {
          custom_csr_id: upload.custom_csr_id,
          hosts: checked.value.hosts,
          issuer: checked.value.issuer,
          expires_on: checked.value.expires_on,
          bundle_method: upload.bundle_method,
        },
      });
      return ok(this.#record(scope, id)!);
    });
  }

  get(scope: Scope, id: string): Result<CertificateRecord> {
    const record = this.#record(scope, id);
    return record ? ok(record) : fail("certificate_not_found");
  }

  /** One page of certificates in upload order. */
  list(scope: Scope, query: Pick<ListQuery, "page" | "per_page" | "direction">): Result<Page<JsonText>> {
    const total = this.counters.get("certificates");
    const rows = readPage((statement, ...params) => this.storage.sql.all<CertificateRow>(statement, ...params), {
      table: "certificates",
      columns: CERTIFICATE_COLUMNS,
      order: "uploaded_on",
      direction: query.direction,
      page: query.page,
      perPage: query.per_page,
      total,
    });
    const now = Date.now();
    const items = rows.map((row) => toCertificateRecord(row, scope.id, now));
    return ok({ items: JSON.stringify(items) as JsonText, count: items.length, total });
  }

  /** Deletes a certificate; its CSR becomes deletable again. */
  remove(call: TenantCall, id: string): Result<{ id: string }> {
    return this.storage.transaction((): Result<{ id: string }> => {
      const row = this.storage.sql.one<{ custom_csr_id: string; hosts: string }>(
        `DELETE FROM certificates WHERE id = ? RETURNING custom_csr_id, hosts`,
        id,
      );
      if (!row) return fail("certificate_not_found");
      this.counters.bump("certificates", -1);
      this.audit.record(call, {
        action: "delete",
        resource: { type: "custom_certificate", id },
        result: true,
        metadata: { custom_csr_id: row.custom_csr_id, hosts: JSON.parse(row.hosts) as string[] },
      });
      return ok({ id });
    });
  }

  /** Whether any certificate was issued for the CSR `csrId`. */
  referencing(csrId: string): boolean {
    return this.storage.sql.one(`SELECT 1 AS found FROM certificates WHERE custom_csr_id = ? LIMIT 1`, csrId) !== null;
  }

  #record(scope: Scope, id: string): CertificateRecord | null {
    const row = this.storage.sql.one<CertificateRow>(`SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE id = ?`, id);
    return row ? toCertificateRecord(row, scope.id, Date.now()) : null;
  }
}
