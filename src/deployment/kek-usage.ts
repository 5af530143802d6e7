import { type Result, fail, ok } from "../core/result";
import type { KeyRefusal } from "../pki/keyring";
import type { Storage } from "../storage/storage";

/** A KEK some data uses or used, as the registry knows it. */
export interface KekRecord {
  kek_id: string;
  /** Its check value as recorded when data was first wrapped under it. */
  check_value: string;
  recorded_at: string;
  /** How many scopes last reported data under it (0: it may be retired). */
  scopes: number;
}

/**
 * Which key-encryption keys the deployment's data is wrapped under, with
 * each one's check value (the only writer of `kek_checks` and `scope_keks`).
 * A check value is recorded the first time any data is wrapped under its
 * KEK and never changes: the same id with another key is refused.
 */
/** Another key recorded under the KEK's id (1505). */
export type KekMismatch = Extract<KeyRefusal, { reason: "key_encryption_mismatch" }>;

export class KekUsage {
  constructor(private readonly storage: Storage) {}

  /**
   * Records that `scope` wraps data under `kekId`, whose check value is
   * `check`: ok when it is the first record of the KEK or matches it;
   * 1505 naming the KEK when another key was recorded under that id.
   */
  use(scope: string, kekId: string, check: string, now = new Date()): Result<void, KekMismatch> {
    return this.storage.transaction((): Result<void, KekMismatch> => {
      const recorded = this.storage.sql.one<{ check_value: string }>(`SELECT check_value FROM kek_checks WHERE kek_id = ?`, kekId);
      if (recorded && recorded.check_value !== check) return fail({ reason: "key_encryption_mismatch", kek_id: kekId });
      if (!recorded) this.storage.sql.run(`INSERT INTO kek_checks (kek_id, check_value, recorded_at) VALUES (?, ?, ?)`, kekId, check, now.toISOString());
      this.storage.sql.run(`INSERT INTO scope_keks (scope, kek_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, scope, kekId);
      return ok(undefined);
    });
  }

  /** Replaces the KEKs `scope` uses with `kekIds`, after a rewrap counted them. */
  report(scope: string, kekIds: readonly string[]): void {
    this.storage.transaction(() => {
      this.storage.sql.run(`DELETE FROM scope_keks WHERE scope = ?`, scope);
      for (const id of kekIds) this.storage.sql.run(`INSERT INTO scope_keks (scope, kek_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, scope, id);
    });
  }

  /** Every KEK with a recorded check value, and how many scopes use it, by id. */
  list(): KekRecord[] {
    return this.storage.sql.all<{ kek_id: string; check_value: string; recorded_at: string; scopes: number }>(
      `SELECT c.kek_id, c.check_value, c.recorded_at, (SELECT count(*) FROM scope_keks s WHERE s.kek_id = c.kek_id) AS scopes
       FROM kek_checks c ORDER BY c.kek_id`,
    );
  }

  /** Scopes that use a KEK other than `current`, by name after `after`. */
  scopesNotUnder(current: string, after: string, limit: number): string[] {
    return this.storage.sql
      .all<{ scope: string }>(`SELECT DISTINCT scope FROM scope_keks WHERE kek_id != ? AND scope > ? ORDER BY scope LIMIT ?`, current, after, limit)
      .map((r) => r.scope);
  }
}
