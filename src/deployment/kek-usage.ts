import { type Result, fail, ok } from "../core/result";
import type { KeyRefusal } from "../pki/keyring";
import type { Storage } from "../storage/storage";

/** A KEK some data uses or used, as the registry knows it. */
export interface KekRecord {
  kek_id: string;
  /**
   * Its check value as recorded when data was first wrapped under it, or
   * verified by a trial unwrap of data from before check values (npm start);
   * null when data uses it and no check value is known yet.
   */
  check_value: string | null;
  recorded_at: string | null;
  /** How many scopes last reported data under it (0: it may be retired). */
  scopes: number;
}

/** Another key recorded under the KEK's id (1505). */
export type KekMismatch = Extract<KeyRefusal, { reason: "key_encryption_mismatch" }>;

/**
 * Which key-encryption keys the deployment's data is wrapped under, with
 * each one's check value (the only writer of `kek_checks` and `scope_keks`).
 * A check value is recorded the first time any data is wrapped under its
 * KEK (or when npm start verified it against data from before check values)
 * and never changes: the same id with another key is refused.
 */
export class KekUsage {
  constructor(private readonly storage: Storage) {}

  /**
   * Records that `scope` wraps data under `kekId`, whose check value is
   * `check`: ok when it is the first record of the KEK or matches it;
   * 1505 naming the KEK when another key was recorded under that id.
   */
  use(scope: string, kekId: string, check: string, now = new Date()): Result<void, KekMismatch> {
    return this.storage.transaction((): Result<void, KekMismatch> => {
      const mismatch = this.mismatch({ [kekId]: check });
      if (mismatch) return fail(mismatch);
      this.record({ [kekId]: check }, now);
      this.add(scope, [kekId]);
      return ok(undefined);
    });
  }

  /** The first of `checks` that differs from the check value recorded under its id, if any (reads only). */
  mismatch(checks: Readonly<Record<string, string>>): KekMismatch | null {
    for (const [kekId, check] of Object.entries(checks)) {
      const recorded = this.storage.sql.one<{ check_value: string }>(`SELECT check_value FROM kek_checks WHERE kek_id = ?`, kekId);
      if (recorded && recorded.check_value !== check) return { reason: "key_encryption_mismatch", kek_id: kekId };
    }
    return null;
  }

  /** Records check values not recorded yet (call after `mismatch` found none, in the same transaction). */
  record(checks: Readonly<Record<string, string>>, now = new Date()): void {
    for (const [kekId, check] of Object.entries(checks)) {
      this.storage.sql.run(`INSERT INTO kek_checks (kek_id, check_value, recorded_at) VALUES (?, ?, ?) ON CONFLICT (kek_id) DO NOTHING`, kekId, check, now.toISOString());
    }
  }

  /** Adds KEKs that `scope`'s data uses (an import, or a first wrap): added to what it reported, never taking any away. */
  add(scope: string, kekIds: readonly string[]): void {
    for (const id of kekIds) this.storage.sql.run(`INSERT INTO scope_keks (scope, kek_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, scope, id);
  }

  /** Replaces the KEKs `scope` uses with `kekIds`, after a rewrap counted them (call inside a transaction). */
  report(scope: string, kekIds: readonly string[]): void {
    this.storage.sql.run(`DELETE FROM scope_keks WHERE scope = ?`, scope);
    this.add(scope, kekIds);
  }

  /**
   * Every KEK with a recorded check value or used by some scope's data
   * (whose check value may not be known yet), and how many scopes use it, by id.
   */
  list(): KekRecord[] {
    return this.storage.sql.all<{ kek_id: string; check_value: string | null; recorded_at: string | null; scopes: number }>(
      `SELECT k.kek_id, c.check_value, c.recorded_at, (SELECT count(*) FROM scope_keks s WHERE s.kek_id = k.kek_id) AS scopes
       FROM (SELECT kek_id FROM kek_checks UNION SELECT kek_id FROM scope_keks) k
       LEFT JOIN kek_checks c ON c.kek_id = k.kek_id ORDER BY k.kek_id`,
    );
  }

  /** Scopes that use a KEK other than `current`, by name after `after`. */
  scopesNotUnder(current: string, after: string, limit: number): string[] {
    return this.storage.sql
      .all<{ scope: string }>(`SELECT DISTINCT scope FROM scope_keks WHERE kek_id != ? AND scope > ? ORDER BY scope LIMIT ?`, current, after, limit)
      .map((r) => r.scope);
  }
}
