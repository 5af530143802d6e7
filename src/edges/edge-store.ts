import { type Clock, systemClock } from "../core/clock";
import { type Failed, type Result, fail, ok } from "../core/result";
import type { EdgePublicKey } from "../pki/edge-key";
import type { EdgeLabels } from "../pki/geo-policy";
import type { RegionCode } from "../pki/geo-regions";
import type { Keyring } from "../pki/keyring";
import { type SealRefusal, rowSealed, sealRefusal, sealRow } from "../pki/row-seal";
import type { Storage } from "../storage/storage";
import type { EdgeRecord, EdgeRegistration } from "./edge-records";

/** No edge registered under the id (ours: 1473). */
export type EdgeNotFound = { readonly reason: "edge_not_found" };

type EdgeRow = {
  id: string;
  public_key: string;
  thumbprint: string;
  country: string;
  region: string;
  highest_security: number;
  created_on: string;
  modified_on: string;
  mac: ArrayBuffer | null;
  mac_kek: string | null;
};

const COLUMNS = "id, public_key, thumbprint, country, region, highest_security, created_on, modified_on, mac, mac_kek";

// What an edge row's MAC covers: everything that decides which key a
// delivery is sealed to and which certificates the edge may receive.
const SEAL_PURPOSE = "edge";
const SEAL_CONTEXT = "edge-registry";
const sealed = (row: Pick<EdgeRow, "id" | "public_key" | "thumbprint" | "country" | "region" | "highest_security">) => [
  row.id,
  row.public_key,
  row.thumbprint,
  row.country,
  row.region,
  row.highest_security,
];

function toRecord(row: EdgeRow): EdgeRecord {
  return {
    id: row.id,
    public_key: JSON.parse(row.public_key) as EdgePublicKey,
    thumbprint: row.thumbprint,
    labels: toLabels(row),
    created_on: row.created_on,
    modified_on: row.modified_on,
  };
}

function toLabels(row: Pick<EdgeRow, "country" | "region" | "highest_security">): EdgeLabels {
  return { country: row.country, region: row.region as RegionCode, highest_security: row.highest_security === 1 };
}

/**
 * The registered edges. The only writer of `edges`; every read goes to
 * SQLite (no copy in memory), so a revocation is seen by the very next
 * request. Each row carries a MAC under a key derived from a KEK (issue 19,
 * item 9): a row changed in storage (another public key, other labels) is
 * refused (1477) and logged, so write access to the data directory alone
 * cannot redirect a delivery.
 */
export class EdgeStore {
  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Registers an edge, or replaces its key and labels; `created` says which. */
  put(id: string, registration: EdgeRegistration, keyring: Keyring): { record: EdgeRecord; created: boolean } {
    return this.storage.transaction(() => {
      const existing = this.storage.sql.one<{ created_on: string }>(`SELECT created_on FROM edges WHERE id = ?`, id);
      const now = this.clock().toISOString();
      const fields = {
        id,
        public_key: JSON.stringify(registration.public_key),
        thumbprint: registration.thumbprint,
        country: registration.labels.country,
        region: registration.labels.region,
        highest_security: registration.labels.highest_security ? 1 : 0,
      };
      const seal = sealRow(keyring, SEAL_PURPOSE, SEAL_CONTEXT, sealed(fields));
      this.storage.sql.run(
        `INSERT INTO edges (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, thumbprint = excluded.thumbprint,
           country = excluded.country, region = excluded.region, highest_security = excluded.highest_security,
           modified_on = excluded.modified_on, mac = excluded.mac, mac_kek = excluded.mac_kek`,
        fields.id,
        fields.public_key,
        fields.thumbprint,
        fields.country,
        fields.region,
        fields.highest_security,
        existing?.created_on ?? now,
        now,
        seal.mac,
        seal.kekId,
      );
      return { record: toRecord(this.#row(id)!), created: existing === null };
    });
  }

  /** The edge, when its row is intact; 1473 when there is none, 1477 when it fails its MAC. */
  get(id: string, keyring: Keyring): Result<EdgeRecord, EdgeNotFound | SealRefusal> {
    const row = this.#row(id);
    if (!row) return fail({ reason: "edge_not_found" });
    return this.#intact(row, keyring) ? ok(toRecord(row)) : this.#refuse(row, keyring);
  }

  /** Every edge, by id; a row that fails its MAC is listed as such (`integrity: "failed"`), never as it claims. */
  list(keyring: Keyring): Array<EdgeRecord | { id: string; integrity: "failed" }> {
    return this.storage.sql
      .all<EdgeRow>(`SELECT ${COLUMNS} FROM edges ORDER BY id`)
      .map((row) => (this.#intact(row, keyring) ? toRecord(row) : { id: row.id, integrity: "failed" as const }));
  }

  /** The labels of every intact edge (for telling an uploader that no edge satisfies a policy). */
  labels(keyring: Keyring): EdgeLabels[] {
    return this.storage.sql
      .all<EdgeRow>(`SELECT ${COLUMNS} FROM edges`)
      .filter((row) => this.#intact(row, keyring))
      .map(toLabels);
  }

  /** Revokes an edge: its next delivery request is refused (1474). */
  remove(id: string): Result<{ id: string }, EdgeNotFound> {
    return this.storage.sql.run(`DELETE FROM edges WHERE id = ?`, id) > 0 ? ok({ id }) : fail({ reason: "edge_not_found" });
  }

  /**
   * Re-seals rows sealed under another KEK than the current one, each only if
   * its MAC matches (a changed row is never laundered), and seals rows that
   * have no MAC at all, naming them in `unsealed`: registered before rows were
   * sealed, or stripped by someone who can write the data directory (nothing
   * there tells the two apart). So it is never done on its own, only by the
   * operator's rewrap, which reports the ids; until then such a row is refused.
   */
  reseal(keyring: Keyring): { resealed: number; failed: string[]; unsealed: string[] } {
    return this.storage.transaction(() => {
      const unsealed: string[] = [];
      for (const row of this.storage.sql.all<EdgeRow>(`SELECT ${COLUMNS} FROM edges WHERE mac IS NULL ORDER BY id`)) {
        const seal = sealRow(keyring, SEAL_PURPOSE, SEAL_CONTEXT, sealed(row));
        this.storage.sql.run(`UPDATE edges SET mac = ?, mac_kek = ? WHERE id = ?`, seal.mac, seal.kekId, row.id);
        unsealed.push(row.id);
      }
      let resealed = 0;
      const failed: string[] = [];
      for (const row of this.storage.sql.all<EdgeRow>(`SELECT ${COLUMNS} FROM edges WHERE mac_kek IS NOT NULL AND mac_kek != ?`, keyring.currentId)) {
        if (!this.#intact(row, keyring)) {
          failed.push(row.id);
          continue;
        }
        const seal = sealRow(keyring, SEAL_PURPOSE, SEAL_CONTEXT, sealed(row));
        resealed += this.storage.sql.run(`UPDATE edges SET mac = ?, mac_kek = ? WHERE id = ?`, seal.mac, seal.kekId, row.id) > 0 ? 1 : 0;
      }
      return { resealed, failed, unsealed };
    });
  }

  /** Every KEK id a row's MAC is keyed under. */
  kekIds(): string[] {
    return this.storage.sql.all<{ mac_kek: string }>(`SELECT DISTINCT mac_kek FROM edges WHERE mac_kek IS NOT NULL`).map((r) => r.mac_kek);
  }

  /** Whether a row sealed under `kekId` checks with `keyring` (null: none is). */
  opens(kekId: string, keyring: Keyring): boolean | null {
    const row = this.storage.sql.one<EdgeRow>(`SELECT ${COLUMNS} FROM edges WHERE mac_kek = ? LIMIT 1`, kekId);
    return row ? this.#intact(row, keyring) : null;
  }

  #row(id: string): EdgeRow | null {
    return this.storage.sql.one<EdgeRow>(`SELECT ${COLUMNS} FROM edges WHERE id = ?`, id);
  }

  #intact(row: EdgeRow, keyring: Keyring): boolean {
    return rowSealed(keyring, SEAL_PURPOSE, SEAL_CONTEXT, sealed(row), { mac: row.mac, kekId: row.mac_kek });
  }

  #refuse(row: EdgeRow, keyring: Keyring): Failed<SealRefusal> {
    console.error(JSON.stringify({ level: "error", event: "edge_row_tampered", edge_id: row.id, mac_kek: row.mac_kek }));
    return fail(sealRefusal(keyring, row.mac_kek, "edge", row.id));
  }
}
