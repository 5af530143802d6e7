import type { TenantCall } from "../core/call";
import type { Clock } from "../core/clock";
import { type Result, fail, ok } from "../core/result";
import { type Scope, scopeName } from "../core/scope";
import type { Keyring } from "../pki/keyring";
import type { KeyType } from "../pki/csr-input";
import { type SealRefusal, sealRefusal } from "../pki/row-seal";
import type { CertificateExists, CertificateNotFound, CsrNotFound } from "./refusals";
import { type CertificateRefusal, type CheckedCertificate, checkCertificate } from "../pki/certificate-check";
import type { GeoLabel, PlacementRule } from "../pki/geo-policy";
import {
  CERTIFICATE_COLUMNS,
  type CertificateEdit,
  type CertificateListQuery,
  type CertificateRecord,
  type CertificateRow,
  type CertificateUpload,
  type PriorityChange,
  type PriorityTargetNotFound,
  toCertificateRecord,
} from "./certificate-records";
import type { AuditTrail } from "./audit-trail";
import { certificatePage } from "./certificate-list";
import { type CertificateSeals, SEALED_COLUMNS, type SealedRow } from "./certificate-seal";
import type { Counters } from "./counters";
import type { CsrStore } from "./csr-store";
import type { JsonText, Page } from "./records";
import type { Storage } from "../storage/storage";

/** Why an upload is refused: the certificate itself, its CSR, or a twin already uploaded. */
export type UploadRefusal = CertificateRefusal | CsrNotFound | CertificateExists;

/** Why an edit is refused: as an upload, or no such certificate. */
export type EditRefusal = UploadRefusal | CertificateNotFound | SealRefusal;

/**
 * Custom certificates uploaded against the zone's custom CSRs. The only
 * writer of `certificates`; while a row names a CSR, the CSR stays (1420).
 */
export class CertificateStore {
  constructor(
    private readonly storage: Storage,
    /** The CSRs' PEMs, for checking an upload against its CSR's key. */
    private readonly csrs: Pick<CsrStore, "pem">,
    private readonly counters: Counters,
    private readonly audit: Pick<AuditTrail, "record">,
    private readonly seals: Pick<CertificateSeals, "seal" | "intact">,
    private readonly clock: Clock,
  ) {}

  /**
   * Installs a CA-signed certificate for one of this zone's CSRs. The check
   * (parse, key match, validity, chain) runs first; the row is written in a
   * transaction that finds the CSR still there.
   */
  async upload(call: TenantCall, upload: CertificateUpload, keyring: Keyring): Promise<Result<CertificateRecord, UploadRefusal>> {
    const scope = call.scope;
    const csr = this.csrs.pem(upload.custom_csr_id);
    if (csr === null) return fail({ reason: "csr_not_found", pointer: "/custom_csr_id" });
    const checked = await checkCertificate(upload.certificate, csr, this.clock());
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
    return this.storage.transaction((): Result<CertificateRecord, UploadRefusal> => {
      if (this.csrs.pem(upload.custom_csr_id) === null) return fail({ reason: "csr_not_found", pointer: "/custom_csr_id" });
      const twin = this.#withLeaf(checked.value.leaf_sha256);
      if (twin !== null) return fail({ reason: "certificate_exists", pointer: "/certificate", certificate_id: twin });
      const now = this.clock().toISOString();
      this.storage.sql.run(
        `INSERT INTO certificates (id, custom_csr_id, certificate, hosts, issuer, signature, bundle_method, priority,
           expires_on, uploaded_on, modified_on, policy, geo_restriction, leaf_sha256)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)`,
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
        upload.placement.policy,
        upload.placement.geo_restriction,
        checked.value.leaf_sha256,
      );
      this.seals.seal(id, keyring, scopeName(scope));
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
          // A lone leaf: no signature on it was checked (docs/api.md, "messages" 1462).
          chain_checked: checked.value.chain_checked,
          ...(upload.placement.policy === null ? {} : { policy: upload.placement.policy }),
          ...(upload.placement.geo_restriction === null ? {} : { geo_restriction: upload.placement.geo_restriction }),
        },
      });
      return ok(this.#record(scope, id)!);
    });
  }

  /**
   * Cloudflare's edit: a renewed certificate for the same key (every upload
   * check), and/or a new placement or bundle method. modified_on moves
   * forward on every change (strictly, so an edge that compares it never
   * misses one); an edit that changes nothing returns the record as it is.
   */
  async edit(call: TenantCall, id: string, edit: CertificateEdit, keyring: Keyring): Promise<Result<CertificateRecord, EditRefusal>> {
    const scope = call.scope;
    const current = this.storage.sql.one<SealedRow>(`SELECT ${SEALED_COLUMNS}, mac, mac_kek FROM certificates WHERE id = ?`, id);
    if (!current) return fail({ reason: "certificate_not_found" });
    // An edit keeps what it does not set: a row changed in storage must not be
    // sealed again by it (review H3). Such a row is deleted and uploaded anew.
    if (!this.seals.intact(current, keyring, scopeName(scope))) return fail(sealRefusal(keyring, current.mac_kek, "certificate", id));
    const anotherKey = (pointer: string) => {
      // Recorded as on upload: a certificate for another key is a decision worth keeping.
      this.audit.record(call, {
        action: "update",
        resource: { type: "custom_certificate", id },
        result: false,
        info: "the certificate is for another key (1441)",
        metadata: { custom_csr_id: current.custom_csr_id },
      });
      return fail({ reason: "certificate_key_mismatch", pointer });
    };
    // Another CSR means another key: refused as an upload for the wrong key is.
    if (edit.custom_csr_id !== undefined && edit.custom_csr_id !== current.custom_csr_id) return anotherKey("/custom_csr_id");
    let checked: CheckedCertificate | null = null;
    if (edit.certificate !== undefined) {
      const csr = this.csrs.pem(current.custom_csr_id);
      // A CSR cannot be deleted while a certificate names it (1420).
      if (csr === null) return fail({ reason: "csr_not_found", pointer: "/custom_csr_id" });
      const result = await checkCertificate(edit.certificate, csr, this.clock());
      if (!result.ok) return result.reason === "certificate_key_mismatch" ? anotherKey("/certificate") : result;
      checked = result.value;
    }
    const placementChanges = edit.placement !== undefined && (edit.placement.policy !== undefined || edit.placement.geo_restriction !== undefined);
    if (checked === null && edit.bundle_method === undefined && !placementChanges) return this.get(scope, id);

    return this.storage.transaction((): Result<CertificateRecord, EditRefusal> => {
      const row = this.storage.sql.one<{ modified_on: string; policy: string | null; geo_restriction: string | null }>(
        `SELECT modified_on, policy, geo_restriction FROM certificates WHERE id = ?`,
        id,
      );
      if (!row) return fail({ reason: "certificate_not_found" });
      if (checked !== null) {
        const twin = this.#withLeaf(checked.leaf_sha256);
        if (twin !== null && twin !== id) return fail({ reason: "certificate_exists", pointer: "/certificate", certificate_id: twin });
      }
      // Column names are this module's constants; every value is bound.
      const columns: string[] = [];
      const values: SqlStorageValue[] = [];
      const set = (column: string, value: SqlStorageValue) => {
        columns.push(`${column} = ?`);
        values.push(value);
      };
      const metadata: Record<string, unknown> = { custom_csr_id: current.custom_csr_id };
      if (checked !== null) {
        set("certificate", checked.pem);
        set("hosts", JSON.stringify(checked.hosts));
        set("issuer", checked.issuer);
        set("signature", checked.signature);
        set("expires_on", checked.expires_on);
        set("leaf_sha256", checked.leaf_sha256);
        Object.assign(metadata, { renewed: true, hosts: checked.hosts, issuer: checked.issuer, expires_on: checked.expires_on, chain_checked: checked.chain_checked });
      }
      if (edit.bundle_method !== undefined) {
        set("bundle_method", edit.bundle_method);
        metadata.bundle_method = edit.bundle_method;
      }
      const placement = edit.placement ?? {};
      // Setting one of policy and geo_restriction clears the other (they are exclusive); clearing one leaves the other.
      const policy = placement.policy !== undefined ? placement.policy : placement.geo_restriction ? null : row.policy;
      const geo = placement.geo_restriction !== undefined ? placement.geo_restriction : placement.policy ? null : row.geo_restriction;
      set("policy", policy);
      set("geo_restriction", geo);
      if (placementChanges) Object.assign(metadata, { policy, geo_restriction: geo });
      set("modified_on", new Date(Math.max(this.clock().getTime(), Date.parse(row.modified_on) + 1)).toISOString());
      this.storage.sql.run(`UPDATE certificates SET ${columns.join(", ")} WHERE id = ?`, ...values, id);
      this.seals.seal(id, keyring, scopeName(scope));
      this.audit.record(call, { action: "update", resource: { type: "custom_certificate", id }, result: true, metadata });
      return ok(this.#record(scope, id)!);
    });
  }

  get(scope: Scope, id: string): Result<CertificateRecord, CertificateNotFound> {
    const record = this.#record(scope, id);
    return record ? ok(record) : fail({ reason: "certificate_not_found" });
  }

  /**
   * One page of certificates: highest `priority` first, then upload order
   * (`direction: "desc"` reverses the whole order), only those meeting the
   * query's search requirements; `total` counts exactly those.
   */
  list(scope: Scope, query: CertificateListQuery): Result<Page<JsonText>, never> {
    const now = this.clock();
    const { rows, total } = certificatePage(this.storage.sql, query, now, () => this.counters.get("certificates"));
    const items = rows.map((row) => toCertificateRecord(row, scope.id, now.getTime()));
    return ok({ items: JSON.stringify(items) as JsonText, count: items.length, total });
  }

  /**
   * Cloudflare's prioritize: sets each named certificate's priority, all or
   * none (an id that is not the zone's refuses the whole body, 1449, and
   * nothing is written). A change is an `update` audit entry with the
   * priority before; a priority set to what it is writes nothing.
   * `modified_on` stays: it marks what edges must fetch again, and a
   * priority is not delivered. `changes` name distinct certificates (the
   * Worker refuses a repeat, 1478). Answers the list page `query` asks for.
   */
  prioritize(call: TenantCall, changes: readonly PriorityChange[], query: CertificateListQuery): Result<Page<JsonText>, PriorityTargetNotFound> {
    const done = this.storage.transaction((): Result<null, PriorityTargetNotFound> => {
      const current = new Map<string, { custom_csr_id: string; priority: number }>();
      for (const change of changes) {
        const row = this.storage.sql.one<{ custom_csr_id: string; priority: number }>(`SELECT custom_csr_id, priority FROM certificates WHERE id = ?`, change.id);
        if (!row) return fail({ reason: "certificate_not_found", pointer: change.pointer });
        current.set(change.id, row);
      }
      for (const change of changes) {
        const before = current.get(change.id)!;
        if (before.priority === change.priority) continue;
        this.storage.sql.run(`UPDATE certificates SET priority = ? WHERE id = ?`, change.priority, change.id);
        this.audit.record(call, {
          action: "update",
          resource: { type: "custom_certificate", id: change.id },
          result: true,
          metadata: { custom_csr_id: before.custom_csr_id, priority: change.priority, previous: before.priority },
        });
      }
      return ok(null);
    });
    return done.ok ? this.list(call.scope, query) : done;
  }

  /** Deletes a certificate; its CSR becomes deletable again. */
  remove(call: TenantCall, id: string): Result<{ id: string }, CertificateNotFound> {
    return this.storage.transaction((): Result<{ id: string }, CertificateNotFound> => {
      const row = this.storage.sql.one<{ custom_csr_id: string; hosts: string }>(
        `DELETE FROM certificates WHERE id = ? RETURNING custom_csr_id, hosts`,
        id,
      );
      if (!row) return fail({ reason: "certificate_not_found" });
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

  /** Every intact certificate's placement and dates, for working out what an edge may receive (a row changed in storage is left out, and logged). */
  placements(keyring: Keyring, scope: string): DeliveryRow[] {
    return this.storage.sql
      .all<DeliveryRowColumns>(`SELECT ${DELIVERY_COLUMNS} FROM certificates ORDER BY seq`)
      .filter((row) => this.seals.intact(row, keyring, scope))
      .map(toDeliveryRow);
  }

  /** One certificate's placement, dates and PEM (leaf then chain), for a delivery; 1449 when there is none, 1477 when its row was changed in storage. */
  forDelivery(id: string, keyring: Keyring, scope: string): Result<DeliveryRow & { certificate: string }, CertificateNotFound | SealRefusal> {
    const row = this.storage.sql.one<DeliveryRowColumns & { certificate: string }>(
      `SELECT ${DELIVERY_COLUMNS}, certificate FROM certificates WHERE id = ?`,
      id,
    );
    if (!row) return fail({ reason: "certificate_not_found" });
    if (!this.seals.intact(row, keyring, scope)) return fail(sealRefusal(keyring, row.mac_kek, "certificate", id));
    return ok({ ...toDeliveryRow(row), certificate: row.certificate });
  }

  // The certificate already holding this leaf, if any.
  #withLeaf(leafSha256: string): string | null {
    return this.storage.sql.one<{ id: string }>(`SELECT id FROM certificates WHERE leaf_sha256 = ? LIMIT 1`, leafSha256)?.id ?? null;
  }

  #record(scope: Scope, id: string): CertificateRecord | null {
    const row = this.storage.sql.one<CertificateRow>(`SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE id = ?`, id);
    return row ? toCertificateRecord(row, scope.id, this.clock().getTime()) : null;
  }
}

/**
 * What a delivery needs of a certificate or custom hostname row: its id, the
 * key it delivers (a custom CSR's, or a managed hostname key's), names, dates
 * and placement.
 */
export interface DeliveryRow {
  id: string;
  /** The key delivered: a custom CSR's (`csr`) or a managed custom hostname's (`hostname`). */
  key: { kind: "csr"; id: string } | { kind: "hostname"; id: string; key_type?: KeyType };
  /** A custom hostname's name (its files on the edge are named by it); absent for a custom certificate. */
  hostname?: string;
  /** A managed certificate's RSA twin (dual certificates): its key type; absent for every other certificate. */
  key_type?: KeyType;
  custom_csr_id: string;
  hosts: string[];
  expires_on: string;
  modified_on: string;
  placement: PlacementRule;
}

type DeliveryRowColumns = {
  id: string;
  custom_csr_id: string;
  hosts: string;
  expires_on: string;
  modified_on: string;
  policy: string | null;
  geo_restriction: string | null;
  mac: ArrayBuffer | null;
  mac_kek: string | null;
};

const DELIVERY_COLUMNS = "id, custom_csr_id, hosts, expires_on, modified_on, policy, geo_restriction, mac, mac_kek";

function toDeliveryRow(row: DeliveryRowColumns): DeliveryRow {
  return {
    id: row.id,
    key: { kind: "csr", id: row.custom_csr_id },
    custom_csr_id: row.custom_csr_id,
    hosts: JSON.parse(row.hosts) as string[],
    expires_on: row.expires_on,
    modified_on: row.modified_on,
    placement: { policy: row.policy, geo_restriction: row.geo_restriction as GeoLabel | null },
  };
}
