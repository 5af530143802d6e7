import type { TenantCall } from "../core/call";
import type { Clock } from "../core/clock";
import { type Result, fail, ok } from "../core/result";
import type { CheckedCertificate } from "../pki/certificate-check";
import type { KeyType } from "../pki/csr-input";
import type { Keyring } from "../pki/keyring";
import { type SealRefusal, rowSealed, sealRefusal, sealRow } from "../pki/row-seal";
import type { Storage } from "../storage/storage";
import type { AuditTrail } from "./audit-trail";
import type { DeliveryRow } from "./certificate-store";

/** A twin certificate as a custom hostname's `ssl.certificates` shows it. */
export type TwinSummary = {
  id: string;
  key_type: KeyType;
  issuer: string;
  serial_number: string;
  signature: string;
  expires_on: string;
  uploaded_on: string;
};

// What a twin row's MAC covers: what decides whose key is delivered for which name, as for a hostname row.
const SEAL_PURPOSE = "custom_hostname_twin";
const SEALED = "t.id, t.custom_hostname_id, h.hostname, t.key_type, t.expires_on, t.modified_on, t.leaf_sha256";
type Sealed = { id: string; custom_hostname_id: string; hostname: string; key_type: string; expires_on: string; modified_on: string; leaf_sha256: string };
const sealedFields = (row: Sealed) => [row.id, row.custom_hostname_id, row.hostname, row.key_type, row.expires_on, row.modified_on, row.leaf_sha256];
type DeliveryColumns = Sealed & { hosts: string; mac: ArrayBuffer | null; mac_kek: string | null };
const DELIVERY = `SELECT ${SEALED}, t.hosts, t.mac, t.mac_kek FROM hostname_certificates t JOIN custom_hostnames h ON h.id = t.custom_hostname_id`;

const toDeliveryRow = (row: DeliveryColumns): DeliveryRow => ({
  id: row.id,
  key: { kind: "hostname", id: row.custom_hostname_id, key_type: row.key_type as KeyType },
  hostname: row.hostname,
  key_type: row.key_type as KeyType,
  custom_csr_id: "",
  hosts: JSON.parse(row.hosts) as string[],
  expires_on: row.expires_on,
  modified_on: row.modified_on,
  placement: { policy: null, geo_restriction: null },
});

/**
 * The RSA-2048 twins of managed certificates (Cloudflare's dual certificates,
 * MANAGED_KEY_TYPES="p256v1,rsa2048"): the only writer of
 * `hostname_certificates`. The P-256 certificate stays the hostname's own
 * (custom_hostnames, what the API shows as `ssl`); its twin, for the same
 * names and from the same CA, has an id of its own, which an edge fetches it
 * by, and a row sealed as a hostname row is.
 */
export class HostnameTwins {
  constructor(
    private readonly storage: Storage,
    private readonly audit: Pick<AuditTrail, "record">,
    private readonly clock: Clock,
  ) {}

  /** Installs (or replaces) a hostname's twin of `keyType`; call in the transaction that makes its key current. */
  install(call: TenantCall, hostnameId: string, keyType: KeyType, checked: CheckedCertificate, keyring: Keyring, purpose: "issue" | "renew"): void {
    const held = this.storage.sql.one<{ id: string; modified_on: string }>(
      `SELECT id, modified_on FROM hostname_certificates WHERE custom_hostname_id = ? AND key_type = ?`,
      hostnameId,
      keyType,
    );
    const now = this.clock();
    const id = held?.id ?? crypto.randomUUID();
    const modified = new Date(Math.max(now.getTime(), held ? Date.parse(held.modified_on) + 1 : 0)).toISOString();
    this.storage.sql.run(
      `INSERT INTO hostname_certificates (id, custom_hostname_id, key_type, certificate, hosts, issuer, serial_number, signature, expires_on, uploaded_on, leaf_sha256, modified_on)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET certificate = excluded.certificate, hosts = excluded.hosts, issuer = excluded.issuer, serial_number = excluded.serial_number,
         signature = excluded.signature, expires_on = excluded.expires_on, uploaded_on = excluded.uploaded_on, leaf_sha256 = excluded.leaf_sha256, modified_on = excluded.modified_on`,
      id,
      hostnameId,
      keyType,
      checked.pem,
      JSON.stringify(checked.hosts),
      checked.issuer,
      checked.serial_number,
      checked.signature,
      checked.expires_on,
      now.toISOString(),
      checked.leaf_sha256,
      modified,
    );
    this.#seal(id, keyring, call);
    this.audit.record(call, {
      action: held ? "update" : "create",
      resource: { type: "custom_hostname_certificate", id: hostnameId },
      result: true,
      metadata: { certificate_id: id, key_type: keyType, issuer: checked.issuer, serial_number: checked.serial_number, expires_on: checked.expires_on, renewed: purpose === "renew" },
    });
  }

  /** Deletes a hostname's twins (the hostname is deleted, or its certificate no longer managed). */
  remove(hostnameId: string): void {
    this.storage.sql.run(`DELETE FROM hostname_certificates WHERE custom_hostname_id = ?`, hostnameId);
  }

  /** The twins of these hostnames, by hostname id, for their `ssl.certificates`. */
  summaries(hostnameIds: readonly string[]): Map<string, TwinSummary[]> {
    const found = new Map<string, TwinSummary[]>();
    if (hostnameIds.length === 0) return found;
    const rows = this.storage.sql.all<TwinSummary & { custom_hostname_id: string }>(
      `SELECT custom_hostname_id, id, key_type, issuer, serial_number, signature, expires_on, uploaded_on FROM hostname_certificates
         WHERE custom_hostname_id IN (${hostnameIds.map(() => "?").join(", ")}) ORDER BY key_type`,
      ...hostnameIds,
    );
    for (const { custom_hostname_id, ...twin } of rows) found.set(custom_hostname_id, [...(found.get(custom_hostname_id) ?? []), twin]);
    return found;
  }

  /** Every twin with an intact row, as a delivery sees it (a changed row is left out, and logged). */
  placements(keyring: Keyring, call: TenantCall): DeliveryRow[] {
    return this.storage.sql
      .all<DeliveryColumns>(`${DELIVERY} ORDER BY h.seq, t.key_type`)
      .filter((row) => this.#intact(row, keyring, call))
      .map(toDeliveryRow);
  }

  /** One twin's delivery row and PEM; null when no twin has this id. */
  forDelivery(id: string, keyring: Keyring, call: TenantCall): Result<(DeliveryRow & { certificate: string }) | null, SealRefusal> {
    const row = this.storage.sql.one<DeliveryColumns & { certificate: string }>(`SELECT ${SEALED}, t.hosts, t.mac, t.mac_kek, t.certificate FROM hostname_certificates t JOIN custom_hostnames h ON h.id = t.custom_hostname_id WHERE t.id = ?`, id);
    if (!row) return ok(null);
    if (!this.#intact(row, keyring, call)) return fail(sealRefusal(keyring, row.mac_kek, "custom_hostname", id));
    return ok({ ...toDeliveryRow(row), certificate: row.certificate });
  }

  /** The operator's rewrap: rows sealed under another KEK are checked and sealed again under the current one; one that does not check out is named. */
  reseal(keyring: Keyring, call: TenantCall): { resealed: number; failed: string[] } {
    return this.storage.transaction(() => {
      const rows = this.storage.sql.all<DeliveryColumns>(`${DELIVERY} WHERE t.mac_kek IS NULL OR t.mac_kek != ?`, keyring.currentId);
      const failed: string[] = [];
      for (const row of rows) {
        if (this.#intact(row, keyring, call)) this.#seal(row.id, keyring, call);
        else failed.push(row.id);
      }
      return { resealed: rows.length - failed.length, failed };
    });
  }

  /** Every KEK id a twin's MAC is keyed under. */
  kekIds(): string[] {
    return this.storage.sql.all<{ mac_kek: string }>(`SELECT DISTINCT mac_kek FROM hostname_certificates WHERE mac_kek IS NOT NULL`).map((r) => r.mac_kek);
  }

  #seal(id: string, keyring: Keyring, call: TenantCall): void {
    const row = this.storage.sql.one<Sealed>(`SELECT ${SEALED} FROM hostname_certificates t JOIN custom_hostnames h ON h.id = t.custom_hostname_id WHERE t.id = ?`, id);
    if (!row) return;
    const seal = sealRow(keyring, SEAL_PURPOSE, `${call.scope.kind}:${call.scope.id}`, sealedFields(row));
    this.storage.sql.run(`UPDATE hostname_certificates SET mac = ?, mac_kek = ? WHERE id = ?`, seal.mac, seal.kekId, id);
  }

  #intact(row: Sealed & { mac: ArrayBuffer | null; mac_kek: string | null }, keyring: Keyring, call: TenantCall): boolean {
    const intact = rowSealed(keyring, SEAL_PURPOSE, `${call.scope.kind}:${call.scope.id}`, sealedFields(row), { mac: row.mac, kekId: row.mac_kek });
    if (!intact) console.error(JSON.stringify({ level: "error", event: "hostname_row_tampered", custom_hostname_id: row.custom_hostname_id, certificate_id: row.id, mac_kek: row.mac_kek }));
    return intact;
  }
}
