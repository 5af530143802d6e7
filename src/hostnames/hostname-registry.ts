import { DurableObject } from "cloudflare:workers";
import { type Clock, systemClock } from "../core/clock";
import { type Result, fail, ok } from "../core/result";
import { type LazyStorage, openLazyStorage } from "../storage/storage";
import { HOSTNAME_MIGRATIONS } from "./schema";

/** How many registry objects hostnames are spread over (by the SHA-256 of the name). */
export const HOSTNAME_SHARDS = 16;

/** Another custom hostname already holds the name, in this zone or another (Cloudflare's 1406, 409). */
export type HostnameTaken = { readonly reason: "hostname_duplicate" };

/** Who holds a hostname. */
export type HostnameClaim = {
  zone_id: string;
  custom_hostname_id: string;
};

/**
 * Which zone holds each custom hostname, and the http-01 challenges pending
 * for them, spread over HOSTNAME_SHARDS objects by the hostname's SHA-256
 * (src/http/hostnames.ts picks the shard). A hostname exists once across the
 * deployment; a zone's object claims it here before it records it, and
 * releases it after deleting it. Challenge lookups come from the internet
 * (any Host header), so a shard that was never written answers "none"
 * without creating storage, and there are only so many shards to wake.
 */
export class HostnameRegistry extends DurableObject<Env> {
  readonly #storage: LazyStorage;
  readonly #clock: Clock = systemClock;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#storage = openLazyStorage(ctx, HOSTNAME_MIGRATIONS);
  }

  /**
   * Claims `hostname` for a zone's custom hostname: ok when it was free or
   * is already this one's (a retry), 1406 when another holds it.
   */
  claim(hostname: string, claim: HostnameClaim): Result<{ claimed: boolean }, HostnameTaken> {
    this.#storage.create();
    const { sql } = this.#storage;
    return this.#storage.transaction(() => {
      const held = sql.one<HostnameClaim>(`SELECT zone_id, custom_hostname_id FROM claims WHERE hostname = ?`, hostname);
      if (held) {
        return held.zone_id === claim.zone_id && held.custom_hostname_id === claim.custom_hostname_id ? ok({ claimed: false }) : fail({ reason: "hostname_duplicate" });
      }
      sql.run(`INSERT INTO claims (hostname, zone_id, custom_hostname_id, claimed_at) VALUES (?, ?, ?, ?)`, hostname, claim.zone_id, claim.custom_hostname_id, this.#clock().toISOString());
      return ok({ claimed: true });
    });
  }

  /** Releases `hostname` if this custom hostname holds it (and drops its challenges); a no-op otherwise. */
  release(hostname: string, claim: HostnameClaim): Result<{ released: boolean }, never> {
    if (!this.#storage.exists) return ok({ released: false });
    const { sql } = this.#storage;
    const released = this.#storage.transaction(() => {
      sql.run(`DELETE FROM challenges WHERE custom_hostname_id = ? AND zone_id = ?`, claim.custom_hostname_id, claim.zone_id);
      return sql.run(`DELETE FROM claims WHERE hostname = ? AND zone_id = ? AND custom_hostname_id = ?`, hostname, claim.zone_id, claim.custom_hostname_id) > 0;
    });
    return ok({ released });
  }

  /** Who holds `hostname`, or null. */
  holder(hostname: string): Result<HostnameClaim | null, never> {
    if (!this.#storage.exists) return ok(null);
    return ok(this.#storage.sql.one<HostnameClaim>(`SELECT zone_id, custom_hostname_id FROM claims WHERE hostname = ?`, hostname));
  }

  /** Publishes an http-01 challenge of a custom hostname that holds its name (answered until `expires`). */
  putChallenge(hostname: string, claim: HostnameClaim, token: string, keyAuthorization: string, expires: string): Result<{ published: boolean }, never> {
    if (!this.#storage.exists) return ok({ published: false });
    const { sql } = this.#storage;
    const held = sql.one<HostnameClaim>(`SELECT zone_id, custom_hostname_id FROM claims WHERE hostname = ?`, hostname);
    if (!held || held.zone_id !== claim.zone_id || held.custom_hostname_id !== claim.custom_hostname_id) return ok({ published: false });
    // Expired answers (an order abandoned without a withdrawal) go as new ones come: the table holds what is pending.
    sql.run(`DELETE FROM challenges WHERE expires_at <= ?`, this.#clock().toISOString());
    sql.run(
      `INSERT INTO challenges (token, hostname, key_authorization, zone_id, custom_hostname_id, expires_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (token) DO UPDATE SET hostname = excluded.hostname, key_authorization = excluded.key_authorization, expires_at = excluded.expires_at`,
      token,
      hostname,
      keyAuthorization,
      claim.zone_id,
      claim.custom_hostname_id,
      expires,
    );
    return ok({ published: true });
  }

  /** Withdraws a custom hostname's challenges (validated, failed, or the hostname deleted). */
  dropChallenges(claim: HostnameClaim): Result<{ dropped: number }, never> {
    if (!this.#storage.exists) return ok({ dropped: 0 });
    return ok({ dropped: this.#storage.sql.run(`DELETE FROM challenges WHERE custom_hostname_id = ? AND zone_id = ?`, claim.custom_hostname_id, claim.zone_id) });
  }

  /** The key authorization for `token` when it is a pending challenge of `hostname`; null otherwise. Writes nothing. */
  challenge(hostname: string, token: string): Result<string | null, never> {
    if (!this.#storage.exists) return ok(null);
    const row = this.#storage.sql.one<{ key_authorization: string; expires_at: string }>(
      `SELECT key_authorization, expires_at FROM challenges WHERE token = ? AND hostname = ?`,
      token,
      hostname,
    );
    return ok(row && row.expires_at > this.#clock().toISOString() ? row.key_authorization : null);
  }
}
