import { type Result, fail, ok } from "../core/result";
import type { JsonText, Page } from "../tenant/records";
import type { Sql } from "../tenant/sql";

const SCHEMA_VERSION = 1;

/**
 * Which account each zone belongs to, as the operator recorded it (the only
 * writer of `zones`). A zone with no row belongs to no account.
 */
export class ZoneAccounts {
  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS directory_schema (version INTEGER NOT NULL)`);
    const version = sql.one<{ version: number }>(`SELECT version FROM directory_schema`)?.version ?? 0;
    if (version < SCHEMA_VERSION) {
      sql.run(`CREATE TABLE zones (
        zone_id TEXT PRIMARY KEY,
        account_id TEXT NOT NULL,
        recorded_on TEXT NOT NULL
      ) WITHOUT ROWID`);
      // An account's zones, in zone id order.
      sql.run(`CREATE INDEX zones_by_account ON zones (account_id, zone_id)`);
      sql.run(`INSERT INTO directory_schema (version) VALUES (?)`, SCHEMA_VERSION);
    }
  }

  /** The zone's account, or null when none is recorded. */
  accountOf(zoneId: string): string | null {
    return this.sql.one<{ account_id: string }>(`SELECT account_id FROM zones WHERE zone_id = ?`, zoneId)?.account_id ?? null;
  }

  /** The zone's record: its account and when it was recorded there. */
  get(zoneId: string): Result<ZoneRecord> {
    const row = this.sql.one<{ account_id: string; recorded_on: string }>(`SELECT account_id, recorded_on FROM zones WHERE zone_id = ?`, zoneId);
    return row ? ok({ zone_id: zoneId, account_id: row.account_id, recorded_on: row.recorded_on }) : fail("zone_account_not_recorded");
  }

  /** Records (or moves) the zone under `accountId`; answers the account it had before, if any. */
  set(zoneId: string, accountId: string): { record: ZoneRecord; previous: string | null } {
    const previous = this.accountOf(zoneId);
    const recorded_on = new Date().toISOString();
    this.sql.run(
      `INSERT INTO zones (zone_id, account_id, recorded_on) VALUES (?, ?, ?)
       ON CONFLICT (zone_id) DO UPDATE SET account_id = excluded.account_id, recorded_on = excluded.recorded_on`,
      zoneId,
      accountId,
      recorded_on,
    );
    return { record: { zone_id: zoneId, account_id: accountId, recorded_on }, previous };
  }

  /** Forgets the zone's account; answers the account it had, or null when it had none. */
  remove(zoneId: string): string | null {
    return this.sql.one<{ account_id: string }>(`DELETE FROM zones WHERE zone_id = ? RETURNING account_id`, zoneId)?.account_id ?? null;
  }

  /** One page of the account's zones, in zone id order. */
  zonesOf(accountId: string, page: number, perPage: number): Page<JsonText> {
    const total = this.sql.one<{ n: number }>(`SELECT count(*) AS n FROM zones WHERE account_id = ?`, accountId)?.n ?? 0;
    const rows = this.sql.all<{ zone_id: string; recorded_on: string }>(
      `SELECT zone_id, recorded_on FROM zones WHERE account_id = ? ORDER BY zone_id LIMIT ? OFFSET ?`,
      accountId,
      perPage,
      (page - 1) * perPage,
    );
    const items = rows.map((row) => ({ zone_id: row.zone_id, account_id: accountId, recorded_on: row.recorded_on }));
    return { items: JSON.stringify(items) as JsonText, count: items.length, total };
  }
}

/** A zone's recorded account, as the admin routes return it. */
export interface ZoneRecord {
  zone_id: string;
  account_id: string;
  recorded_on: string;
}
