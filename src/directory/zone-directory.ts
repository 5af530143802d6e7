import { DurableObject } from "cloudflare:workers";
import { type Result, ok } from "../core/result";
import type { JsonText, Page } from "../storage/paging";
import { openStorage } from "../storage/storage";
import { DIRECTORY_MIGRATIONS, type NotRecorded, ZoneAccounts, type ZoneRecord } from "./zone-accounts";

/** The directory's one object (`idFromName`). */
export const DIRECTORY_NAME = "zone-directory";

/**
 * The deployment's zone → account directory: one Durable Object of its own,
 * apart from the tenants, because authorization reads it for any zone and
 * no tenant object should hold another's data. The Worker keeps what it
 * reads for at most ZONE_ACCOUNT_TTL_MS (src/http/zone-accounts.ts). The
 * class is the RPC surface; the SQL is in zone-accounts.ts.
 */
export class ZoneDirectory extends DurableObject<Env> {
  readonly #zones: ZoneAccounts;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#zones = new ZoneAccounts(openStorage(ctx, DIRECTORY_MIGRATIONS).sql);
  }

  /** The zone's account, or null. */
  accountOf(zoneId: string): string | null {
    return this.#zones.accountOf(zoneId);
  }

  /**
   * The zone's account (null: none) and the revision the directory holds for
   * it, which the zone's next link must exceed: after a restore the two can
   * come from different moments (their databases are copied one by one).
   */
  standing(zoneId: string): { account_id: string | null; revision: number } {
    return { account_id: this.#zones.accountOf(zoneId), revision: this.#zones.revisionOf(zoneId) };
  }

  getZone(zoneId: string): Result<ZoneRecord, NotRecorded> {
    return this.#zones.get(zoneId);
  }

  /** The zone's account as of the zone object's link `revision` (null: none); an older revision is ignored. */
  setZone(zoneId: string, accountId: string | null, revision: number): Result<ZoneRecord | null, never> {
    return ok(this.#zones.set(zoneId, accountId, revision));
  }

  listZones(accountId: string, page: number, perPage: number): Result<Page<JsonText>, never> {
    return ok(this.#zones.zonesOf(accountId, page, perPage));
  }
}
