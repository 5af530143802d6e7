import type { TenantCall } from "../core/call";
import type { Clock } from "../core/clock";
import { type Result, fail, ok } from "../core/result";
import { type HostnameTaken } from "../hostnames/hostname-registry";
import {
  HOSTNAME_COLUMNS,
  type ValidationRecord,
  type CustomHostnameRecord,
  type HostnameCreate,
  type HostnameEdit,
  type HostnameListQuery,
  type HostnameRow,
  type HostnameSslInput,
  toHostnameRecord,
} from "../hostnames/hostname-records";
import { type CertificateRefusal, type CheckedCertificate, checkCertificate } from "../pki/certificate-check";
import type { Keyring } from "../pki/keyring";
import { type SealRefusal, rowSealed, sealRefusal, sealRow } from "../pki/row-seal";
import { type JsonText, type Page, readPage } from "../storage/paging";
import type { Storage } from "../storage/storage";
import type { AuditTrail } from "./audit-trail";
import type { Counters } from "./counters";
import type { DeliveryRow } from "./certificate-store";
import type { CsrStore } from "./csr-store";
import type { HostnameKeys } from "./hostname-keys";
import type { HostnameTwins } from "./hostname-twins";
import { type RenewBefore, renewalDue } from "./acme-config";

/** No such custom hostname in the zone (Cloudflare's 1436). */
export type HostnameNotFound = { readonly reason: "hostname_not_found" };

/** The zone's custom hostname quota: none allocated (1404), or its hard cap reached (1405). */
export type HostnameQuotaRefusal = { readonly reason: "hostname_quota_unallocated" } | { readonly reason: "hostname_quota_exceeded" };

/** A custom CSR's certificate that does not name the hostname (Cloudflare's 1446). */
export type HostnameNotInCertificate = { readonly reason: "hostname_not_in_certificate"; readonly pointer: string; readonly hostname: string };

/** ACME for a custom CSR whose names this hostname does not cover, each of them validated by it (ours, 1455). */
export type CsrNamesUncovered = { readonly reason: "hostname_csr_names_uncovered"; readonly pointer: string; readonly names: string };

/** An http-01 validation asked for a wildcard (ours, 1451; RFC 8555 §7.1.3). */
export type HttpForWildcard = { readonly reason: "hostname_http_wildcard"; readonly pointer: string };

/**
 * A custom CSR's certificate refused, in the custom hostname API's codes:
 * not parseable (1426), not for the CSR's key (1429), no such CSR (1431),
 * or not usable now (ours, 1454: expired, not yet valid, a broken chain, a
 * name that is not a DNS name).
 */
export type HostnameCertificateRefusal =
  | { readonly reason: "hostname_certificate_unparseable"; readonly pointer: string }
  | { readonly reason: "hostname_certificate_key_mismatch"; readonly pointer: string }
  | { readonly reason: "hostname_csr_not_found"; readonly pointer: string }
  | { readonly reason: "hostname_certificate_invalid"; readonly pointer: string; readonly problem: string };

/** A managed certificate asked of a CA this deployment has not configured (ours, 1453). */
export type UnknownCertificateAuthority = { readonly reason: "hostname_certificate_authority_unknown"; readonly pointer: string; readonly name: string };

/** What a create can refuse, beyond the body the Worker checked. */
export type HostnameCreateRefusal = HostnameTaken | HostnameQuotaRefusal | HostnameCertificateRefusal | HostnameNotInCertificate | CsrNamesUncovered | HttpForWildcard;

export type HostnameEditRefusal = HostnameNotFound | HostnameCertificateRefusal | HostnameNotInCertificate | CsrNamesUncovered | HttpForWildcard | SealRefusal;

/** The rows the ACME machinery works on: managed certificates, and custom CSRs whose hostname asked for ACME. */
const ACME_ROWS = `(ssl_kind = 'managed' OR (ssl_kind = 'custom_csr' AND ssl_method IS NOT NULL))`;

const CERTIFICATE_PROBLEMS: Record<Exclude<CertificateRefusal["reason"], "invalid_certificate" | "certificate_key_mismatch">, string> = {
  certificate_expired: "it has expired",
  certificate_not_yet_valid: "it is not valid yet",
  invalid_chain: "each certificate of the chain must be issued and signed by the one that follows it",
  invalid_certificate_host: "it names a host that is not a DNS name",
};

function asHostnameRefusal(refusal: CertificateRefusal): HostnameCertificateRefusal {
  const pointer = "/ssl/custom_certificate";
  if (refusal.reason === "invalid_certificate") return { reason: "hostname_certificate_unparseable", pointer };
  if (refusal.reason === "certificate_key_mismatch") return { reason: "hostname_certificate_key_mismatch", pointer };
  return { reason: "hostname_certificate_invalid", pointer, problem: CERTIFICATE_PROBLEMS[refusal.reason] };
}

/** The quota as the SDK's quota.get answers it. */
export interface HostnameQuota {
  allocated: number;
  exceeded: boolean;
  hard_cap: number;
  used: number;
}

/** A managed custom hostname, as the ACME machinery sees it. */
export interface ManagedHostname {
  id: string;
  hostname: string;
  wildcard: boolean;
  method: "http" | "txt";
  ca: string | null;
  ssl_status: string;
  has_certificate: boolean;
  /** A custom CSR whose certificate ACME renews (finalized with the CSR itself, its key); null for a managed key. */
  csr_id: string | null;
}

/** The deployment-wide name of a hostname's holder, as the hostname registry keeps it. */
export interface HostnameClaims {
  claim(hostname: string, customHostnameId: string): Promise<Result<unknown, HostnameTaken>>;
  release(hostname: string, customHostnameId: string): Promise<void>;
}

// What a hostname row's MAC covers: what decides whose key is delivered for which name.
const SEAL_PURPOSE = "custom_hostname";
const SEALED_COLUMNS = "id, hostname, ssl_kind, custom_csr_id, expires_on, modified_on, leaf_sha256";
type Sealed = { id: string; hostname: string; ssl_kind: string; custom_csr_id: string | null; expires_on: string | null; modified_on: string; leaf_sha256: string | null };
const sealedFields = (row: Sealed) => [row.id, row.hostname, row.ssl_kind, row.custom_csr_id, row.expires_on, row.modified_on, row.leaf_sha256];

type DeliveryColumns = Sealed & { hosts: string | null; mac: ArrayBuffer | null; mac_kek: string | null };
const DELIVERY_COLUMNS = `${SEALED_COLUMNS}, hosts, mac, mac_kek`;

function toDeliveryRow(row: DeliveryColumns): DeliveryRow {
  return {
    id: row.id,
    key: row.ssl_kind === "custom_csr" ? { kind: "csr", id: row.custom_csr_id! } : { kind: "hostname", id: row.id },
    hostname: row.hostname,
    custom_csr_id: row.custom_csr_id ?? "",
    hosts: row.hosts === null ? [row.hostname] : (JSON.parse(row.hosts) as string[]),
    expires_on: row.expires_on ?? "",
    modified_on: row.modified_on,
    placement: { policy: null, geo_restriction: null },
  };
}

/** Whether a certificate's names cover `hostname` (RFC 6125 §6.4.3: a wildcard covers one label). */
export function certificateCovers(hosts: readonly string[], hostname: string): boolean {
  const name = hostname.toLowerCase();
  return hosts.some((host) => {
    const h = host.toLowerCase();
    if (h === name) return true;
    if (!h.startsWith("*.") || name.startsWith("*.")) return false;
    const dot = name.indexOf(".");
    return dot > 0 && name.slice(dot + 1) === h.slice(2);
  });
}

/**
 * The zone's custom hostnames (Cloudflare for SaaS): the only writer of
 * `custom_hostnames`, `hostname_quota` and `fallback_origin`. A hostname is
 * claimed deployment-wide (the hostname registry) before its row is written
 * and released after its row is deleted, so a name exists once. Its
 * certificate is a custom CSR's (checked as a custom certificate upload is,
 * and it must name the hostname) or a managed one, which the ACME machinery
 * obtains and renews (src/tenant/acme-*.ts).
 */
export class HostnameStore {
  constructor(
    private readonly storage: Storage,
    /** A managed hostname's keys, erased with its row. */
    private readonly keys: Pick<HostnameKeys, "removeAll">,
    /** A managed hostname's RSA twin certificates, deleted with its row. */
    private readonly twins: Pick<HostnameTwins, "remove" | "summaries">,
    private readonly csrs: Pick<CsrStore, "pem" | "names">,
    private readonly counters: Counters,
    private readonly audit: Pick<AuditTrail, "record">,
    private readonly claims: HostnameClaims,
    private readonly defaults: { allocated: number; hard_cap: number },
    private readonly clock: Clock,
  ) {}

  quota(): HostnameQuota {
    const set = this.storage.sql.one<{ allocated: number; hard_cap: number }>(`SELECT allocated, hard_cap FROM hostname_quota`);
    const { allocated, hard_cap } = set ?? this.defaults;
    const used = this.counters.get("custom_hostnames");
    return { allocated, exceeded: used >= allocated, hard_cap, used };
  }

  /** Sets the zone's quota (admin), recorded. */
  setQuota(call: TenantCall, quota: { allocated: number; hard_cap: number }): HostnameQuota {
    this.storage.transaction(() => {
      this.storage.sql.run(
        `INSERT INTO hostname_quota (singleton, allocated, hard_cap) VALUES (1, ?, ?)
         ON CONFLICT (singleton) DO UPDATE SET allocated = excluded.allocated, hard_cap = excluded.hard_cap`,
        quota.allocated,
        quota.hard_cap,
      );
      this.audit.record(call, { action: "update", resource: { type: "hostname_quota", id: null }, result: true, metadata: { ...quota } });
    });
    return this.quota();
  }

  /**
   * Creates a custom hostname: the quota (1404, 1405), a custom CSR's
   * certificate checked (and naming the hostname, 1446), the name claimed
   * deployment-wide (1406), then the row, in one transaction with its audit
   * entry. A claim whose row could not be written is released.
   */
  async create(
    call: TenantCall,
    input: HostnameCreate,
    keyring: Keyring,
    renewBefore: RenewBefore | null = null,
  ): Promise<Result<{ record: CustomHostnameRecord; overQuota: boolean }, HostnameCreateRefusal>> {
    const quota = this.quota();
    if (quota.allocated === 0 && quota.hard_cap === 0) return fail({ reason: "hostname_quota_unallocated" });
    if (quota.used >= quota.hard_cap) return fail({ reason: "hostname_quota_exceeded" });
    const checked = await this.#certificate(input.ssl, input.hostname);
    if (!checked.ok) return checked;
    const id = crypto.randomUUID();
    const claimed = await this.claims.claim(input.hostname, id);
    if (!claimed.ok) return claimed;
    let written: Result<CustomHostnameRecord, HostnameCreateRefusal>;
    try {
      written = this.storage.transaction((): Result<CustomHostnameRecord, HostnameCreateRefusal> => {
        if (this.counters.get("custom_hostnames") >= this.quota().hard_cap) return fail({ reason: "hostname_quota_exceeded" });
        if (this.storage.sql.one(`SELECT 1 AS taken FROM custom_hostnames WHERE hostname = ?`, input.hostname)) return fail({ reason: "hostname_duplicate" });
        if (input.ssl?.kind === "custom_csr" && this.csrs.pem(input.ssl.custom_csr_id) === null) return fail({ reason: "hostname_csr_not_found", pointer: "/ssl/custom_csr_id" });
        const now = this.clock().toISOString();
        this.#insert(id, input, checked.value, now, keyring, call, renewBefore);
        this.counters.bump("custom_hostnames", 1);
        this.audit.record(call, {
          action: "create",
          resource: { type: "custom_hostname", id },
          result: true,
          metadata: { hostname: input.hostname, ...sslMetadata(input.ssl, checked.value) },
        });
        return ok(this.#record(id)!);
      });
    } catch (error) {
      await this.claims.release(input.hostname, id);
      throw error;
    }
    if (!written.ok) {
      await this.claims.release(input.hostname, id);
      return written;
    }
    return ok({ record: written.value, overQuota: quota.used + 1 > quota.allocated });
  }

  get(id: string): Result<CustomHostnameRecord, HostnameNotFound> {
    const record = this.#record(id);
    return record ? ok(record) : fail({ reason: "hostname_not_found" });
  }

  /** The hostname of a custom hostname, or null. */
  hostnameOf(id: string): string | null {
    return this.storage.sql.one<{ hostname: string }>(`SELECT hostname FROM custom_hostnames WHERE id = ?`, id)?.hostname ?? null;
  }

  /** One page, filtered as the SDK asks. */
  list(query: HostnameListQuery): Page<JsonText> {
    const now = this.clock().toISOString();
    const clauses: string[] = [];
    const params: SqlStorageValue[] = [];
    const where = (clause: string, ...values: SqlStorageValue[]) => {
      clauses.push(clause);
      params.push(...values);
    };
    const activeNow = `(ssl_status = 'active' AND (expires_on IS NULL OR expires_on >= ?))`;
    if (query.id !== undefined) where(`id = ?`, query.id);
    if (query.hostname?.exact !== undefined) where(`hostname = ?`, query.hostname.exact);
    if (query.hostname?.contain !== undefined) where(`instr(hostname, ?) > 0`, query.hostname.contain);
    if (query.hostname?.startsWith !== undefined) where(`substr(hostname, 1, ?) = ?`, query.hostname.startsWith.length, query.hostname.startsWith);
    if (query.ssl === 1) where(`ssl_kind != 'none'`);
    if (query.ssl_status === "expired") where(`ssl_status = 'active' AND expires_on < ?`, now);
    else if (query.ssl_status === "active") where(activeNow, now);
    else if (query.ssl_status !== undefined) where(`ssl_status = ?`, query.ssl_status);
    if (query.hostname_status === "active") where(activeNow, now);
    if (query.hostname_status === "pending") where(`NOT ${activeNow}`, now);
    if (query.wildcard !== undefined) where(`ssl_wildcard = ?`, query.wildcard ? 1 : 0);
    if (query.certificate_authority !== undefined) where(`certificate_authority = ?`, query.certificate_authority);
    if (query.custom_origin_server !== undefined) where(`custom_origin_server = ?`, query.custom_origin_server);
    const filter = clauses.length > 0 ? { clause: clauses.join(" AND "), params } : undefined;
    const total = filter
      ? this.storage.sql.one<{ n: number }>(`SELECT count(*) AS n FROM custom_hostnames WHERE ${filter.clause}`, ...filter.params)!.n
      : this.counters.get("custom_hostnames");
    const rows = readPage((statement, ...values) => this.storage.sql.all<HostnameRow>(statement, ...values), {
      table: "custom_hostnames",
      columns: HOSTNAME_COLUMNS,
      order: query.order === "ssl_status" ? "ssl_status" : "seq",
      direction: query.direction,
      page: query.page,
      perPage: query.per_page,
      total,
      ...(filter ? { where: filter } : {}),
    });
    const nowMs = Date.parse(now);
    const twins = this.twins.summaries(rows.map((row) => row.id));
    const items = rows.map((row) => toHostnameRecord(row, nowMs, twins.get(row.id)));
    return { items: JSON.stringify(items) as JsonText, count: items.length, total };
  }

  /**
   * Cloudflare's edit: metadata and origins change in place; a custom CSR's
   * certificate sent again renews it (every check of an upload); a managed
   * `ssl` sent again (the same, or another method) restarts validation.
   */
  async edit(call: TenantCall, id: string, edit: HostnameEdit, keyring: Keyring, renewBefore: RenewBefore | null = null): Promise<Result<CustomHostnameRecord, HostnameEditRefusal>> {
    const current = this.storage.sql.one<Sealed & { mac: ArrayBuffer | null; mac_kek: string | null }>(`SELECT ${SEALED_COLUMNS}, mac, mac_kek FROM custom_hostnames WHERE id = ?`, id);
    if (!current) return fail({ reason: "hostname_not_found" });
    if (current.ssl_kind !== "none" && !this.#intact(current, keyring, call)) return fail(sealRefusal(keyring, current.mac_kek, "custom_hostname", id));
    if (edit.ssl?.kind === "managed" && edit.ssl.method === "http" && (edit.ssl.wildcard || current.hostname.startsWith("*."))) {
      return fail({ reason: "hostname_http_wildcard", pointer: "/ssl/method" });
    }
    const checked = await this.#certificate(edit.ssl ?? null, current.hostname);
    if (!checked.ok) return checked;
    return this.storage.transaction((): Result<CustomHostnameRecord, HostnameEditRefusal> => {
      const row = this.storage.sql.one<{ modified_on: string }>(`SELECT modified_on FROM custom_hostnames WHERE id = ?`, id);
      if (!row) return fail({ reason: "hostname_not_found" });
      if (edit.ssl?.kind === "custom_csr" && this.csrs.pem(edit.ssl.custom_csr_id) === null) return fail({ reason: "hostname_csr_not_found", pointer: "/ssl/custom_csr_id" });
      const modified = new Date(Math.max(this.clock().getTime(), Date.parse(row.modified_on) + 1)).toISOString();
      const sets: string[] = ["modified_on = ?"];
      const values: SqlStorageValue[] = [modified];
      const set = (column: string, value: SqlStorageValue) => {
        sets.push(`${column} = ?`);
        values.push(value);
      };
      if (edit.custom_metadata !== undefined) set("custom_metadata", edit.custom_metadata === null ? null : JSON.stringify(edit.custom_metadata));
      if (edit.custom_origin_server !== undefined) set("custom_origin_server", edit.custom_origin_server);
      if (edit.custom_origin_sni !== undefined) set("custom_origin_sni", edit.custom_origin_sni);
      // A certificate in force stays while ACME obtains its successor: a managed one sent again, or a custom CSR's
      // (the same CSR) for which the hostname now asks ACME without uploading a new certificate.
      const keep =
        current.expires_on !== null &&
        ((edit.ssl?.kind === "managed" && current.ssl_kind === "managed") ||
          (edit.ssl?.kind === "custom_csr" && edit.ssl.acme !== null && edit.ssl.custom_certificate === null && current.ssl_kind === "custom_csr" && current.custom_csr_id === edit.ssl.custom_csr_id));
      if (edit.ssl !== undefined) for (const [column, value] of sslColumns(edit.ssl, checked.value, modified, keep, renewBefore)) set(column, value);
      // A hostname that is no longer managed has no use for its managed keys: they are erased with the change.
      if (edit.ssl !== undefined && edit.ssl.kind !== "managed" && current.ssl_kind === "managed") {
        this.keys.removeAll(id);
        this.twins.remove(id);
      }
      this.storage.sql.run(`UPDATE custom_hostnames SET ${sets.join(", ")} WHERE id = ?`, ...values, id);
      this.#seal(id, keyring, call);
      this.audit.record(call, {
        action: "update",
        resource: { type: "custom_hostname", id },
        result: true,
        metadata: {
          hostname: current.hostname,
          ...(edit.custom_metadata !== undefined ? { custom_metadata_changed: true } : {}),
          ...(edit.custom_origin_server !== undefined ? { custom_origin_server: edit.custom_origin_server } : {}),
          ...(edit.custom_origin_sni !== undefined ? { custom_origin_sni: edit.custom_origin_sni } : {}),
          ...(edit.ssl !== undefined ? sslMetadata(edit.ssl, checked.value) : {}),
        },
      });
      return ok(this.#record(id)!);
    });
  }

  /** Deletes a custom hostname (its claim is released afterwards); the SDK's delete answers `{id}`. */
  async remove(call: TenantCall, id: string): Promise<Result<{ id: string }, HostnameNotFound>> {
    const removed = this.storage.transaction((): Result<{ hostname: string }, HostnameNotFound> => {
      const row = this.storage.sql.one<{ seq: number; hostname: string; ssl_kind: string; custom_csr_id: string | null }>(
        `SELECT seq, hostname, ssl_kind, custom_csr_id FROM custom_hostnames WHERE id = ?`,
        id,
      );
      if (!row) return fail({ reason: "hostname_not_found" });
      this.storage.sql.run(`DELETE FROM custom_hostnames WHERE seq = ?`, row.seq);
      this.keys.removeAll(id);
      this.twins.remove(id);
      this.counters.bump("custom_hostnames", -1);
      this.audit.record(call, {
        action: "delete",
        resource: { type: "custom_hostname", id },
        result: true,
        metadata: { hostname: row.hostname, ssl_kind: row.ssl_kind, ...(row.custom_csr_id ? { custom_csr_id: row.custom_csr_id } : {}) },
      });
      return ok({ hostname: row.hostname });
    });
    if (!removed.ok) return removed;
    await this.claims.release(removed.value.hostname, id);
    return ok({ id });
  }

  /** Whether any custom hostname uses the CSR (it cannot be deleted then: 1420). */
  referencing(csrId: string): boolean {
    return this.storage.sql.one(`SELECT 1 AS found FROM custom_hostnames WHERE custom_csr_id = ? LIMIT 1`, csrId) !== null;
  }

  /** Cloudflare's fallback origin of the zone (null: none). */
  fallbackOrigin(): { origin: string; created_at: string; updated_at: string } | null {
    return this.storage.sql.one<{ origin: string; created_at: string; updated_at: string }>(`SELECT origin, created_at, updated_at FROM fallback_origin`);
  }

  setFallbackOrigin(call: TenantCall, origin: string | null): { origin: string; created_at: string; updated_at: string } | null {
    const before = this.fallbackOrigin();
    const now = this.clock().toISOString();
    this.storage.transaction(() => {
      if (origin === null) this.storage.sql.run(`DELETE FROM fallback_origin`);
      else {
        this.storage.sql.run(
          `INSERT INTO fallback_origin (singleton, origin, created_at, updated_at) VALUES (1, ?, ?, ?)
           ON CONFLICT (singleton) DO UPDATE SET origin = excluded.origin, updated_at = excluded.updated_at`,
          origin,
          now,
          now,
        );
      }
      this.audit.record(call, {
        action: origin === null ? "delete" : "update",
        resource: { type: "fallback_origin", id: null },
        result: true,
        metadata: { origin, previous: before?.origin ?? null },
      });
    });
    return origin === null ? before : this.fallbackOrigin();
  }

  /**
   * Every custom hostname with a certificate in force and an intact row, as a
   * delivery sees it (every registered edge may receive it: a custom hostname
   * has no placement). A row changed in storage is left out, and logged.
   */
  placements(keyring: Keyring, call: TenantCall): DeliveryRow[] {
    return this.storage.sql
      .all<DeliveryColumns>(`SELECT ${DELIVERY_COLUMNS} FROM custom_hostnames WHERE certificate IS NOT NULL ORDER BY seq`)
      .filter((row) => this.#intact(row, keyring, call))
      .map(toDeliveryRow);
  }

  /** One custom hostname's delivery row and PEM; null when there is none (or no certificate yet). */
  forDelivery(id: string, keyring: Keyring, call: TenantCall): Result<(DeliveryRow & { certificate: string }) | null, SealRefusal> {
    const row = this.storage.sql.one<DeliveryColumns & { certificate: string }>(
      `SELECT ${DELIVERY_COLUMNS}, certificate FROM custom_hostnames WHERE id = ? AND certificate IS NOT NULL`,
      id,
    );
    if (!row) return ok(null);
    if (!this.#intact(row, keyring, call)) return fail(sealRefusal(keyring, row.mac_kek, "custom_hostname", id));
    return ok({ ...toDeliveryRow(row), certificate: row.certificate });
  }

  /** A managed custom hostname as the ACME machinery needs it; null when there is none (or it is not managed). */
  managed(id: string): ManagedHostname | null {
    const row = this.storage.sql.one<{
      hostname: string;
      ssl_wildcard: number;
      ssl_method: string;
      certificate_authority: string | null;
      ssl_status: string;
      expires_on: string | null;
      custom_csr_id: string | null;
    }>(`SELECT hostname, ssl_wildcard, ssl_method, certificate_authority, ssl_status, expires_on, custom_csr_id FROM custom_hostnames WHERE id = ? AND ${ACME_ROWS}`, id);
    if (!row) return null;
    return {
      id,
      hostname: row.hostname,
      wildcard: row.ssl_wildcard === 1,
      method: row.ssl_method === "http" ? "http" : "txt",
      ca: row.certificate_authority,
      ssl_status: row.ssl_status,
      has_certificate: row.expires_on !== null,
      csr_id: row.custom_csr_id,
    };
  }

  /**
   * Records where a managed certificate's validation stands (ssl.status,
   * validation_records, validation_errors, as Cloudflare shows them); what a
   * delivery depends on is not touched, so neither is the row's MAC.
   */
  setProgress(id: string, progress: { ssl_status?: string; validation_records?: ValidationRecord[]; validation_errors?: string[] }): void {
    const sets: string[] = [];
    const values: SqlStorageValue[] = [];
    if (progress.ssl_status !== undefined) {
      sets.push("ssl_status = ?");
      values.push(progress.ssl_status);
    }
    if (progress.validation_records !== undefined) {
      sets.push("validation_records = ?");
      values.push(JSON.stringify(progress.validation_records));
    }
    if (progress.validation_errors !== undefined) {
      sets.push("validation_errors = ?");
      values.push(JSON.stringify(progress.validation_errors.map((message) => ({ message }))));
    }
    if (sets.length > 0) this.storage.sql.run(`UPDATE custom_hostnames SET ${sets.join(", ")} WHERE id = ? AND ${ACME_ROWS}`, ...values, id);
  }

  /**
   * Installs a managed certificate the CA issued (checked against the CSR it
   * was finalized with): active at once, due for renewal at `renewAt`, the
   * row sealed again and the change recorded. Call inside the transaction
   * that also makes its key current.
   */
  installManaged(call: TenantCall, id: string, checked: CheckedCertificate, renewAt: string, keyring: Keyring, purpose: "issue" | "renew"): boolean {
    const row = this.storage.sql.one<{ hostname: string; modified_on: string }>(`SELECT hostname, modified_on FROM custom_hostnames WHERE id = ? AND ${ACME_ROWS}`, id);
    if (!row) return false;
    const now = this.clock();
    const modified = new Date(Math.max(now.getTime(), Date.parse(row.modified_on) + 1)).toISOString();
    this.storage.sql.run(
      `UPDATE custom_hostnames SET certificate = ?, hosts = ?, issuer = ?, serial_number = ?, signature = ?, expires_on = ?, uploaded_on = ?,
         leaf_sha256 = ?, renew_at = ?, ssl_status = 'active', validation_records = '[]', validation_errors = '[]', modified_on = ? WHERE id = ?`,
      checked.pem,
      JSON.stringify(checked.hosts),
      checked.issuer,
      checked.serial_number,
      checked.signature,
      checked.expires_on,
      now.toISOString(),
      checked.leaf_sha256,
      renewAt,
      modified,
      id,
    );
    this.#seal(id, keyring, call);
    this.audit.record(call, {
      action: purpose === "issue" ? "create" : "update",
      resource: { type: "custom_hostname_certificate", id },
      result: true,
      metadata: { hostname: row.hostname, issuer: checked.issuer, serial_number: checked.serial_number, expires_on: checked.expires_on, renew_at: renewAt, renewed: purpose === "renew" },
    });
    return true;
  }

  /** Managed hostnames waiting for a first certificate with no order (one whose order was lost between two transactions). */
  unordered(): string[] {
    return this.storage.sql
      .all<{ id: string }>(
        `SELECT id FROM custom_hostnames WHERE ${ACME_ROWS} AND expires_on IS NULL AND ssl_status IN ('initializing', 'pending_validation', 'pending_issuance')
           AND id NOT IN (SELECT custom_hostname_id FROM acme_orders) LIMIT 100`,
      )
      .map((r) => r.id);
  }

  /** Managed hostnames whose certificate is due for renewal at `now` (at most `limit`), for the ACME machinery to order. */
  dueForRenewal(now: string, limit: number): string[] {
    return this.storage.sql
      .all<{ id: string }>(
        `SELECT id FROM custom_hostnames WHERE ${ACME_ROWS} AND renew_at IS NOT NULL AND renew_at <= ?
           AND id NOT IN (SELECT custom_hostname_id FROM acme_orders) ORDER BY renew_at LIMIT ?`,
        now,
        limit,
      )
      .map((r) => r.id);
  }

  /** The earliest renewal due after the present ones (null: none), for the alarm. */
  nextRenewal(): string | null {
    // A hostname with an order in progress is the order's to schedule, not its renew_at (past, while it runs).
    return (
      this.storage.sql.one<{ at: string | null }>(
        `SELECT min(renew_at) AS at FROM custom_hostnames WHERE renew_at IS NOT NULL AND ${ACME_ROWS} AND id NOT IN (SELECT custom_hostname_id FROM acme_orders)`,
      )?.at ?? null
    );
  }

  /** Every KEK id a row's MAC is keyed under. */
  kekIds(): string[] {
    return this.storage.sql.all<{ mac_kek: string }>(`SELECT DISTINCT mac_kek FROM custom_hostnames WHERE mac_kek IS NOT NULL`).map((r) => r.mac_kek);
  }

  async #certificate(
    ssl: HostnameSslInput | null,
    hostname: string,
  ): Promise<Result<CheckedCertificate | null, HostnameCertificateRefusal | HostnameNotInCertificate | CsrNamesUncovered | HttpForWildcard>> {
    if (ssl?.kind !== "custom_csr") return ok(null);
    const csr = this.csrs.pem(ssl.custom_csr_id);
    if (csr === null) return fail({ reason: "hostname_csr_not_found", pointer: "/ssl/custom_csr_id" });
    if (ssl.acme !== null) {
      // ACME finalizes with the CSR itself, so the order names every name of the CSR, and this hostname's
      // challenges must prove each: the hostname, and its wildcard by DNS.
      const names = (this.csrs.names(ssl.custom_csr_id) ?? []).map((n) => n.toLowerCase());
      const own = [hostname, `*.${hostname}`];
      const foreign = names.filter((n) => !own.includes(n));
      if (foreign.length > 0 || !certificateCovers(names, hostname)) {
        return fail({ reason: "hostname_csr_names_uncovered", pointer: "/ssl/custom_csr_id", names: (foreign.length > 0 ? foreign : names).join(", ") });
      }
      if (ssl.acme.method === "http" && names.some((n) => n.startsWith("*."))) return fail({ reason: "hostname_http_wildcard", pointer: "/ssl/method" });
    }
    if (ssl.custom_certificate === null) return ok(null);
    const checked = await checkCertificate(ssl.custom_certificate, csr, this.clock());
    if (!checked.ok) return fail(asHostnameRefusal(checked));
    if (!certificateCovers(checked.value.hosts, hostname)) return fail({ reason: "hostname_not_in_certificate", pointer: "/ssl/custom_certificate", hostname });
    return checked;
  }

  #insert(id: string, input: HostnameCreate, checked: CheckedCertificate | null, now: string, keyring: Keyring, call: TenantCall, renewBefore: RenewBefore | null): void {
    const ssl = input.ssl;
    this.storage.sql.run(
      `INSERT INTO custom_hostnames (id, hostname, created_at, modified_on, custom_metadata, custom_origin_server, custom_origin_sni,
         ssl_id, ssl_kind, bundle_method, ssl_settings, ssl_status)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'none', 'ubiquitous', '{}', 'initializing')`,
      id,
      input.hostname,
      now,
      now,
      input.custom_metadata === null ? null : JSON.stringify(input.custom_metadata),
      input.custom_origin_server,
      input.custom_origin_sni,
      crypto.randomUUID(),
    );
    if (ssl !== null) {
      const columns = sslColumns(ssl, checked, now, false, renewBefore);
      this.storage.sql.run(`UPDATE custom_hostnames SET ${columns.map(([c]) => `${c} = ?`).join(", ")} WHERE id = ?`, ...columns.map(([, v]) => v), id);
    }
    this.#seal(id, keyring, call);
  }

  /**
   * The operator's rewrap: rows whose MAC is keyed under another KEK are
   * checked and sealed again under the current one; a row that does not
   * check out is left as it is (and named), as for certificates.
   */
  reseal(keyring: Keyring, call: TenantCall): { resealed: number; failed: string[] } {
    return this.storage.transaction(() => {
      const rows = this.storage.sql.all<Sealed & { mac: ArrayBuffer | null; mac_kek: string | null }>(
        `SELECT ${SEALED_COLUMNS}, mac, mac_kek FROM custom_hostnames WHERE mac_kek IS NOT NULL AND mac_kek != ?`,
        keyring.currentId,
      );
      const failed: string[] = [];
      for (const row of rows) {
        if (this.#intact(row, keyring, call)) this.#seal(row.id, keyring, call);
        else failed.push(row.id);
      }
      return { resealed: rows.length - failed.length, failed };
    });
  }

  /** Moves a renewal that was given up on to `at` (the certificate in force serves meanwhile). */
  deferRenewal(id: string, at: string): void {
    this.storage.sql.run(`UPDATE custom_hostnames SET renew_at = ? WHERE id = ? AND renew_at IS NOT NULL`, at, id);
  }

  /** Makes a managed hostname's certificate due for renewal now (its key was lost: a fresh one is ordered). */
  renewNow(id: string): void {
    // Only a managed certificate has a renew_at.
    this.storage.sql.run(`UPDATE custom_hostnames SET renew_at = ? WHERE id = ? AND renew_at IS NOT NULL`, this.clock().toISOString(), id);
  }

  #seal(id: string, keyring: Keyring, call: TenantCall): void {
    const row = this.storage.sql.one<Sealed>(`SELECT ${SEALED_COLUMNS} FROM custom_hostnames WHERE id = ?`, id);
    if (!row) return;
    const seal = sealRow(keyring, SEAL_PURPOSE, `${call.scope.kind}:${call.scope.id}`, sealedFields(row));
    this.storage.sql.run(`UPDATE custom_hostnames SET mac = ?, mac_kek = ? WHERE id = ?`, seal.mac, seal.kekId, id);
  }

  #intact(row: Sealed & { mac: ArrayBuffer | null; mac_kek: string | null }, keyring: Keyring, call: TenantCall): boolean {
    const intact = rowSealed(keyring, SEAL_PURPOSE, `${call.scope.kind}:${call.scope.id}`, sealedFields(row), { mac: row.mac, kekId: row.mac_kek });
    if (!intact) console.error(JSON.stringify({ level: "error", event: "hostname_row_tampered", custom_hostname_id: row.id, mac_kek: row.mac_kek }));
    return intact;
  }

  #record(id: string): CustomHostnameRecord | null {
    const row = this.storage.sql.one<HostnameRow>(`SELECT ${HOSTNAME_COLUMNS} FROM custom_hostnames WHERE id = ?`, id);
    return row ? toHostnameRecord(row, this.clock().getTime(), this.twins.summaries([id]).get(id)) : null;
  }
}

// The certificate columns of a hostname waiting for its first certificate.
const NO_CERTIFICATE: Array<[string, SqlStorageValue]> = [
  ["ssl_status", "initializing"],
  ["certificate", null],
  ["hosts", null],
  ["issuer", null],
  ["serial_number", null],
  ["signature", null],
  ["expires_on", null],
  ["uploaded_on", null],
  ["leaf_sha256", null],
  ["renew_at", null],
  ["validation_records", "[]"],
];

/**
 * The columns an `ssl` sets: a custom CSR's checked certificate (active at
 * once; due for ACME renewal when the hostname asked for it), or a
 * certificate to obtain by ACME (a managed one, or a custom CSR's). With
 * `keep`, the certificate in force stays until its successor is issued.
 */
function sslColumns(ssl: HostnameSslInput, checked: CheckedCertificate | null, now: string, keep = false, renewBefore: RenewBefore | null = null): Array<[string, SqlStorageValue]> {
  const common: Array<[string, SqlStorageValue]> = [
    ["ssl_kind", ssl.kind],
    ["bundle_method", ssl.bundle_method],
    ["ssl_settings", JSON.stringify(ssl.settings)],
    ["validation_errors", "[]"],
  ];
  if (ssl.kind === "custom_csr") {
    const acme: Array<[string, SqlStorageValue]> = [
      ...common,
      ["custom_csr_id", ssl.custom_csr_id],
      ["ssl_method", ssl.acme?.method ?? null],
      ["ssl_type", ssl.acme?.type ?? null],
      ["ssl_wildcard", 0],
      ["certificate_authority", ssl.acme?.certificate_authority ?? null],
    ];
    if (keep) return acme;
    if (checked === null) return [...acme, ...NO_CERTIFICATE];
    const c = checked;
    const renewAt = ssl.acme !== null && renewBefore !== null ? new Date(renewalDue(Date.parse(c.not_before), Date.parse(c.expires_on), renewBefore)).toISOString() : null;
    return [
      ...acme,
      ["renew_at", renewAt],
      ["ssl_status", "active"],
      ["certificate", c.pem],
      ["hosts", JSON.stringify(c.hosts)],
      ["issuer", c.issuer],
      ["serial_number", c.serial_number],
      ["signature", c.signature],
      ["expires_on", c.expires_on],
      ["uploaded_on", now],
      ["leaf_sha256", c.leaf_sha256],
      ["validation_records", "[]"],
    ];
  }
  const managed: Array<[string, SqlStorageValue]> = [
    ...common,
    ["custom_csr_id", null],
    ["ssl_method", ssl.method],
    ["ssl_type", ssl.type],
    ["ssl_wildcard", ssl.wildcard ? 1 : 0],
    ["certificate_authority", ssl.certificate_authority],
  ];
  // A managed certificate in force stays until its successor is issued (the
  // order the object starts renews it); otherwise the ACME machinery starts
  // from nothing, and a custom CSR's certificate it replaces is dropped.
  if (keep) return managed;
  return [...managed, ...NO_CERTIFICATE];
}

function sslMetadata(ssl: HostnameSslInput | null, checked: CheckedCertificate | null): Record<string, unknown> {
  if (ssl === null) return {};
  if (ssl.kind === "custom_csr") {
    return {
      ssl: "custom_csr",
      custom_csr_id: ssl.custom_csr_id,
      hosts: checked?.hosts,
      issuer: checked?.issuer,
      expires_on: checked?.expires_on,
      chain_checked: checked?.chain_checked,
      ...(ssl.acme ? { acme: { method: ssl.acme.method, certificate_authority: ssl.acme.certificate_authority } } : {}),
    };
  }
  return { ssl: "managed", method: ssl.method, wildcard: ssl.wildcard, certificate_authority: ssl.certificate_authority };
}
