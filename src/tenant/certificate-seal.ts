import type { Keyring } from "../pki/keyring";
import { rowSealed, sealRow } from "../pki/row-seal";
import type { Storage } from "../storage/storage";

// What a certificate row's MAC covers (issue 19, item 9): everything that
// decides whose key a delivery unwraps and which edges may receive it.
const PURPOSE = "certificate";
export const SEALED_COLUMNS = "id, custom_csr_id, policy, geo_restriction, expires_on, modified_on";
/** A row as the seal check reads it: SEALED_COLUMNS, mac and mac_kek. */
export type SealedRow = Sealed & { mac: ArrayBuffer | null; mac_kek: string | null };
type Sealed = { id: string; custom_csr_id: string; policy: string | null; geo_restriction: string | null; expires_on: string; modified_on: string };
const fields = (row: Sealed) => [row.id, row.custom_csr_id, row.policy, row.geo_restriction, row.expires_on, row.modified_on];

/**
 * The MACs of a zone's certificate rows, under a key derived from a KEK for
 * the scope (src/pki/row-seal.ts). Written with every upload and edit, in
 * its transaction; checked before a delivery, so that a row changed in
 * storage (another CSR's key, a wider placement, a later expiry) delivers
 * nothing (1477). Rows without a MAC get one only from the operator's rewrap (reseal).
 */
export class CertificateSeals {
  constructor(private readonly storage: Storage) {}

  /** Seals the row `id` as it now stands (call inside the transaction that wrote it). */
  seal(id: string, keyring: Keyring, scope: string): void {
    const row = this.storage.sql.one<Sealed>(`SELECT ${SEALED_COLUMNS} FROM certificates WHERE id = ?`, id);
    if (!row) return;
    const seal = sealRow(keyring, PURPOSE, scope, fields(row));
    this.storage.sql.run(`UPDATE certificates SET mac = ?, mac_kek = ? WHERE id = ?`, seal.mac, seal.kekId, id);
  }

  /** Whether a row read with SEALED_COLUMNS, mac and mac_kek is as it was sealed. */
  intact(row: Sealed & { mac: ArrayBuffer | null; mac_kek: string | null }, keyring: Keyring, scope: string): boolean {
    const ok = rowSealed(keyring, PURPOSE, scope, fields(row), { mac: row.mac, kekId: row.mac_kek });
    if (!ok) console.error(JSON.stringify({ level: "error", event: "certificate_row_tampered", scope, certificate_id: row.id, mac_kek: row.mac_kek }));
    return ok;
  }

  /**
   * Re-seals rows under another KEK than the current one, each only if its
   * MAC matches (answers the ids that did not), and seals the rows that have
   * no MAC at all, naming them in `unsealed`. A row has none only when it was
   * uploaded before rows were sealed, or when someone stripped it: nothing in
   * the data directory can tell the two apart, so this is never done on its
   * own; only the operator's rewrap does it, reports the ids, and the caller
   * records them in the audit trail. Until then such a row delivers nothing.
   */
  reseal(keyring: Keyring, scope: string): { resealed: number; failed: string[]; unsealed: string[] } {
    return this.storage.transaction(() => {
      const unsealed = this.storage.sql.all<{ id: string }>(`SELECT id FROM certificates WHERE mac IS NULL ORDER BY seq`).map((r) => r.id);
      for (const id of unsealed) this.seal(id, keyring, scope);
      let resealed = 0;
      const failed: string[] = [];
      const rows = this.storage.sql.all<Sealed & { mac: ArrayBuffer | null; mac_kek: string | null }>(
        `SELECT ${SEALED_COLUMNS}, mac, mac_kek FROM certificates WHERE mac_kek IS NOT NULL AND mac_kek != ?`,
        keyring.currentId,
      );
      for (const row of rows) {
        if (!this.intact(row, keyring, scope)) failed.push(row.id);
        else {
          this.seal(row.id, keyring, scope);
          resealed++;
        }
      }
      return { resealed, failed, unsealed };
    });
  }

  /** Every KEK id a row's MAC is keyed under. */
  kekIds(): string[] {
    return this.storage.sql.all<{ mac_kek: string }>(`SELECT DISTINCT mac_kek FROM certificates WHERE mac_kek IS NOT NULL`).map((r) => r.mac_kek);
  }
}
