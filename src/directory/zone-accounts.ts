import { type Clock, systemClock } from "../core/clock";
import { type Result, fail, ok } from "../core/result";
import type { JsonText, Page } from "../storage/paging";
import type { Migrations } from "../storage/migrate";
import type { Sql } from "../storage/sql";

/**
 * The directory's schema (src/storage/migrate.ts). Version 1 is written so
 * that it also adopts a database made before the shared migrations, which
 * kept its version in a table of its own (`directory_schema`).
 */
export const DIRECTORY_MIGRATIONS: Migrations = [
  [
    `CREATE TABLE IF NOT EXISTS zones (
      zone_id TEXT PRIMARY KEY,
      account_id TEXT,
      revision INTEGER NOT NULL,
      recorded_on TEXT NOT NULL
    ) WITHOUT ROWID`,
    // An account's zones, in zone id order.
    `CREATE INDEX IF NOT EXISTS zones_by_account ON zones (account_id, zone_id)`,
    `DROP TABLE IF EXISTS directory_schema`,
  ],
];

/**
 * Which account each zone belongs to, as the operator recorded it (the only
 * writer of `zones`). A zone with no row, or whose row's account is null
 * (forgotten), belongs to no account. Each write carries the revision the
 * zone's own object gave the link, and an older one than the row's is
 * ignored: the zone's object orders concurrent moves, and the directory
 * ends where the zone's object (and its audit trail) ended.
 */
/** Why a zone's account is refused: none is recorded (ours: 1490). */
export type NotRecorded = { readonly reason: "zone_account_not_recorded" };

/** A DELETE of the zone's account overtaken by a PUT naming `account_id` (ours: 1491). */
export type AccountMoved = { readonly reason: "zone_account_moved"; readonly account_id: string };

export class ZoneAccounts {
  constructor(
    private readonly sql: Sql,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The zone's account, or null when none is recorded. */
  accountOf(zoneId: string): string | null {
    return this.sql.one<{ account_id: string }>(`SELECT account_id FROM zones WHERE zone_id = ?`, zoneId)?.account_id ?? null;
  }

  /** The revision of the zone's row (0: none): a new link must be numbered above it. */
  revisionOf(zoneId: string): number {
    return this.sql.one<{ revision: number }>(`SELECT revision FROM zones WHERE zone_id = ?`, zoneId)?.revision ?? 0;
  }

  /** The zone's record: its account and when it was recorded there. */
  get(zoneId: string): Result<ZoneRecord, NotRecorded> {
    const row = this.sql.one<{ account_id: string | null; recorded_on: string }>(`SELECT account_id, recorded_on FROM zones WHERE zone_id = ?`, zoneId);
    return row?.account_id ? ok({ zone_id: zoneId, account_id: row.account_id, recorded_on: row.recorded_on }) : fail({ reason: "zone_account_not_recorded" });
  }

  /**
   * The zone's account is now `accountId` (null: none), as of the zone's link
   * `revision`; a write older than the one recorded changes nothing. Answers
   * the zone's record as it now stands (null when it has no account).
   */
  set(zoneId: string, accountId: string | null, revision: number): ZoneRecord | null {
    this.sql.run(
      `INSERT INTO zones (zone_id, account_id, revision, recorded_on) VALUES (?, ?, ?, ?)
       ON CONFLICT (zone_id) DO UPDATE SET account_id = excluded.account_id, revision = excluded.revision, recorded_on = excluded.recorded_on
       WHERE excluded.revision > zones.revision`,
      zoneId,
      accountId,
      revision,
      this.clock().toISOString(),
    );
    const now = this.get(zoneId);
    return now.ok ? now.value : null;
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
