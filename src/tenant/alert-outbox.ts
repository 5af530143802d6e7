import { type AlertEvent, EXPIRY_NOTICE_DAYS, type Expiring, expiryEvent } from "../alerting/alert-types";
import type { TenantCall } from "../core/call";
import type { Clock } from "../core/clock";
import type { Storage } from "../storage/storage";
import type { AuditResourceType, AuditTrail } from "./audit-trail";

const DAY = 86_400_000;
// A certificate ACME renews is told of only when its renewal is late: 14 days before expiry, but never before 5/6
// of its lifetime (from its installation, `uploaded_on`) has passed, so a short-lived one (6 days, renewed 2 days
// ahead) is not told at once. Not from renew_at, which each renewal given up on moves a day later.
const ACME_NOTICE_DAYS = 14;
const ACME_NOTICE_LIFETIME = 5 / 6;
// Events handed to the account per call, and expiry notices raised per scan (the rest at the next alarm, at once).
const BATCH = 100;

type Candidate = {
  kind: "custom_certificate" | "custom_hostname";
  id: string;
  expires_on: string;
  hosts: string;
  custom_csr_id: string | null;
  hostname: string | null;
  /** When ACME renews it (null: nobody does, an uploaded certificate). */
  renew_at: string | null;
  /** When it was installed (uploaded, or issued by ACME). */
  uploaded_on: string;
  /** A managed certificate's RSA twin: its hostname's id (the row's id is the twin's own); null otherwise. */
  twin_of: string | null;
};

/**
 * The events a zone raises for its account's notification policies (the
 * only writer of `alert_outbox` and `expiry_notices`): each is written, with
 * its audit entry, in the transaction of what caused it, and handed to the
 * account's object by the zone's alarm, which deletes it once the account
 * has it (the account takes an event once, by id). So an event is neither
 * lost by a restart nor raised twice. Expiry notices (30 and 14 days before
 * a certificate expires, and at its expiry) are raised by the alarm too, at
 * the times `nextExpiry` says, never by a scan of every zone.
 */
export class AlertOutbox {
  constructor(
    private readonly storage: Storage,
    private readonly audit: Pick<AuditTrail, "record">,
    private readonly clock: Clock,
  ) {}

  /** Raises an event (call inside the transaction of its cause). */
  raise(call: TenantCall, event: AlertEvent, resource: { type: AuditResourceType; id: string | null }): void {
    this.storage.sql.run(`INSERT INTO alert_outbox (id, alert_type, body, raised_at) VALUES (?, ?, ?, ?)`, event.id, event.alert_type, JSON.stringify(event), event.raised_at);
    const type = (event.data.metadata as { event?: { type?: string } } | undefined)?.event?.type;
    this.audit.record(call, { action: "alert", resource, result: true, metadata: { event_id: event.id, alert_type: event.alert_type, event_type: type, text: event.text } });
  }

  /** Events not yet handed to the account, oldest first. */
  pending(): AlertEvent[] {
    return this.storage.sql.all<{ body: string }>(`SELECT body FROM alert_outbox ORDER BY raised_at, id LIMIT ?`, BATCH).map((r) => JSON.parse(r.body) as AlertEvent);
  }

  /** Forgets events the account has (or that have no account to go to). */
  handedOver(ids: readonly string[]): void {
    this.storage.transaction(() => {
      for (const id of ids) this.storage.sql.run(`DELETE FROM alert_outbox WHERE id = ?`, id);
    });
  }

  /**
   * Raises the expiry notices that are due: for each certificate (custom
   * certificates, and custom hostnames' certificates) the most urgent
   * threshold it has crossed and not yet been noticed at, once per
   * certificate version (its expires_on). Answers how many were raised.
   */
  raiseExpiries(call: TenantCall): number {
    const now = this.clock();
    return this.storage.transaction(() => {
      // Notices of versions that expired over 30 days ago are done with (a renewal has another expires_on).
      this.storage.sql.run(`DELETE FROM expiry_notices WHERE expires_on < ?`, new Date(now.getTime() - EXPIRY_NOTICE_DAYS[0] * DAY).toISOString());
      let raised = 0;
      for (const c of this.#candidates(now)) {
        const days = this.#notices(c)
          .filter((n) => n.at <= now.getTime())
          .map((n) => n.days);
        if (days.length === 0) continue;
        const urgent = Math.min(...days);
        const told = this.#noticed(c, urgent);
        // Every notice due is marked, told or passed over (a less urgent one is never told after a more urgent one,
        // and a notice due but passed over never keeps the alarm busy).
        for (const d of days) this.storage.sql.run(`INSERT INTO expiry_notices (certificate_id, expires_on, days) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, c.id, c.expires_on, d);
        if (told) continue;
        const expiring: Expiring = {
          kind: c.kind,
          id: c.id,
          expires_on: c.expires_on,
          hosts: JSON.parse(c.hosts) as string[],
          ...(c.hostname === null ? {} : { hostname: c.hostname }),
          custom_csr_id: c.custom_csr_id,
          ...(c.twin_of === null ? {} : { twin_of: c.twin_of }),
        };
        this.raise(call, expiryEvent(call.scope.id, expiring, urgent, now), { type: c.kind === "custom_certificate" ? "custom_certificate" : "custom_hostname_certificate", id: c.twin_of ?? c.id });
        raised++;
        if (raised >= BATCH) break;
      }
      return raised;
    });
  }

  /** When the next expiry notice falls due (after now), or null when none will. */
  nextExpiry(): number | null {
    const now = this.clock().getTime();
    const times: number[] = [];
    for (const c of this.#candidates(new Date(now))) {
      for (const { days, at } of this.#notices(c)) {
        if (at > now) times.push(at);
        else if (!this.#noticed(c, days)) times.push(now);
      }
    }
    const horizon = new Date(now + EXPIRY_NOTICE_DAYS[0] * DAY).toISOString();
    const later = this.storage.sql.one<{ at: string | null }>(
      `SELECT min(at) AS at FROM (SELECT min(expires_on) AS at FROM certificates WHERE expires_on > ?1
         UNION ALL SELECT min(expires_on) FROM custom_hostnames WHERE expires_on > ?1
         UNION ALL SELECT min(expires_on) FROM hostname_certificates WHERE expires_on > ?1)`,
      horizon,
    )?.at;
    if (later) times.push(Date.parse(later) - EXPIRY_NOTICE_DAYS[0] * DAY);
    return times.length === 0 ? null : Math.min(...times);
  }

  // A certificate's notices: how many days before expiry each says (0: expired), and when it is due.
  #notices(c: Candidate): Array<{ days: number; at: number }> {
    const expires = Date.parse(c.expires_on);
    if (c.renew_at === null) return EXPIRY_NOTICE_DAYS.map((days) => ({ days, at: expires - days * DAY }));
    const parsed = Date.parse(c.uploaded_on);
    const installed = Number.isNaN(parsed) ? expires - 90 * DAY : parsed;
    return [
      { days: ACME_NOTICE_DAYS, at: Math.max(expires - ACME_NOTICE_DAYS * DAY, installed + (expires - installed) * ACME_NOTICE_LIFETIME) },
      { days: 0, at: expires },
    ];
  }

  #noticed(c: Candidate, days: number): boolean {
    return this.storage.sql.one(`SELECT 1 AS found FROM expiry_notices WHERE certificate_id = ? AND expires_on = ? AND days = ?`, c.id, c.expires_on, days) !== null;
  }

  // Certificates within the notice window whose expiry has not been told yet (its last notice, at 0 days, not raised).
  #candidates(now: Date): Candidate[] {
    const horizon = new Date(now.getTime() + EXPIRY_NOTICE_DAYS[0] * DAY).toISOString();
    const untold = (table: string) => `NOT EXISTS (SELECT 1 FROM expiry_notices n WHERE n.certificate_id = ${table}.id AND n.expires_on = ${table}.expires_on AND n.days = 0)`;
    return this.storage.sql.all<Candidate>(
      `SELECT 'custom_certificate' AS kind, id, expires_on, hosts, custom_csr_id, NULL AS hostname, NULL AS renew_at, uploaded_on, NULL AS twin_of
         FROM certificates WHERE expires_on <= ?1 AND ${untold("certificates")}
       UNION ALL
       SELECT 'custom_hostname', id, expires_on, hosts, custom_csr_id, hostname, renew_at, uploaded_on, NULL FROM custom_hostnames
         WHERE expires_on IS NOT NULL AND expires_on <= ?1 AND ${untold("custom_hostnames")}
       UNION ALL
       SELECT 'custom_hostname', t.id, t.expires_on, t.hosts, NULL, h.hostname, t.expires_on, t.uploaded_on, t.custom_hostname_id
         FROM hostname_certificates t JOIN custom_hostnames h ON h.id = t.custom_hostname_id WHERE t.expires_on <= ?1 AND ${untold("t")}
       ORDER BY expires_on LIMIT 10000`,
      horizon,
    );
  }
}
