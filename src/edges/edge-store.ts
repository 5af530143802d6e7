import { type Result, fail, ok } from "../core/result";
import type { Sql } from "../storage/sql";
import type { EdgePublicKey } from "../pki/edge-key";
import type { EdgeLabels } from "../pki/geo-policy";
import type { RegionCode } from "../pki/geo-regions";
import type { EdgeRecord, EdgeRegistration } from "./edge-records";

type EdgeRow = {
  id: string;
  public_key: string;
  thumbprint: string;
  country: string;
  region: string;
  highest_security: number;
  created_on: string;
  modified_on: string;
};

const COLUMNS = "id, public_key, thumbprint, country, region, highest_security, created_on, modified_on";

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
 * request.
 */
export class EdgeStore {
  constructor(
    private readonly sql: Sql,
    private readonly transaction: <T>(fn: () => T) => T,
  ) {}

  /** Registers an edge, or replaces its key and labels; `created` says which. */
  put(id: string, registration: EdgeRegistration): { record: EdgeRecord; created: boolean } {
    return this.transaction(() => {
      const existing = this.sql.one<{ created_on: string }>(`SELECT created_on FROM edges WHERE id = ?`, id);
      const now = new Date().toISOString();
      this.sql.run(
        `INSERT INTO edges (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET public_key = excluded.public_key, thumbprint = excluded.thumbprint,
           country = excluded.country, region = excluded.region, highest_security = excluded.highest_security,
           modified_on = excluded.modified_on`,
        id,
        JSON.stringify(registration.public_key),
        registration.thumbprint,
        registration.labels.country,
        registration.labels.region,
        registration.labels.highest_security ? 1 : 0,
        existing?.created_on ?? now,
        now,
      );
      return { record: this.get(id)!, created: existing === null };
    });
  }

  get(id: string): EdgeRecord | null {
    const row = this.sql.one<EdgeRow>(`SELECT ${COLUMNS} FROM edges WHERE id = ?`, id);
    return row ? toRecord(row) : null;
  }

  /** Every edge, by id. */
  list(): EdgeRecord[] {
    return this.sql.all<EdgeRow>(`SELECT ${COLUMNS} FROM edges ORDER BY id`).map(toRecord);
  }

  /** The labels of every edge (for telling an uploader that no edge satisfies a policy). */
  labels(): EdgeLabels[] {
    return this.sql.all<Pick<EdgeRow, "country" | "region" | "highest_security">>(`SELECT country, region, highest_security FROM edges`).map(toLabels);
  }

  /** Revokes an edge: its next delivery request is refused (1474). */
  remove(id: string): Result<{ id: string }> {
    return this.sql.run(`DELETE FROM edges WHERE id = ?`, id) > 0 ? ok({ id }) : fail("edge_not_found");
  }
}
