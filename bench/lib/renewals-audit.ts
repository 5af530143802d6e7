// Renewals read from a zone's audit trail (docs/audit.md): each managed
// certificate's `create`/`update` carries its next `renew_at`; a renewal is
// an `order` (purpose renew), `validate`, `finalize` and an `update` with
// `renewed: true`. From these: how long a due renewal waited for the zone's
// alarm to order it, and how long the order took until the certificate was
// installed.

/** An audit entry as the audit-log API returns it (the part read here). */
export interface AuditEntry {
  when?: unknown;
  action?: { type?: unknown; result?: unknown; info?: unknown };
  resource?: { type?: unknown; id?: unknown };
  metadata?: Record<string, unknown>;
}

/** What the trails of a window's zones add up to. */
export interface RenewalTimes {
  /** Renewals installed in the window. */
  renewals: number;
  /** The same, by zone, in the order the zones were read. */
  perZone: number[];
  /** renew_at → the renewal's first order, ms, of renewals installed in the window. */
  queuedMs: number[];
  /** The first order → installed, ms. */
  atCaMs: number[];
  /** Failed steps in the window (result false), by the failure's message (digits masked). */
  failures: Record<string, number>;
  /** When each certificate (first or renewed) was installed, ms since the epoch, whenever it was. */
  installs: number[];
}

/** Adds one zone's trail (oldest first) to `into`: what happened in [from, to) (ms since the epoch). */
export function renewalTimes(entries: readonly AuditEntry[], from: number, to: number, into: RenewalTimes): void {
  const due = new Map<string, number>();
  const ordered = new Map<string, number>();
  let count = 0;
  for (const entry of entries) {
    if (entry.resource?.type !== "custom_hostname_certificate" || typeof entry.resource.id !== "string") continue;
    const id = entry.resource.id;
    const at = Date.parse(String(entry.when));
    const inWindow = at >= from && at < to;
    const meta = entry.metadata ?? {};
    if (entry.action?.result === false) {
      if (inWindow) {
        const message = `${String(entry.action.type)}: ${String(entry.action.info ?? "?").replace(/\d+/g, "N")}`;
        into.failures[message] = (into.failures[message] ?? 0) + 1;
      }
      continue;
    }
    switch (entry.action?.type) {
      case "order":
        if (meta.purpose === "renew" && !ordered.has(id)) ordered.set(id, at);
        break;
      case "create":
      case "update": {
        into.installs.push(at);
        const placed = ordered.get(id);
        const wasDue = due.get(id);
        if (entry.action.type === "update" && meta.renewed === true && inWindow) {
          count++;
          if (placed !== undefined) into.atCaMs.push(at - placed);
          if (placed !== undefined && wasDue !== undefined) into.queuedMs.push(Math.max(0, placed - wasDue));
        }
        ordered.delete(id);
        if (typeof meta.renew_at === "string") due.set(id, Date.parse(meta.renew_at));
        break;
      }
    }
  }
  into.renewals += count;
  into.perZone.push(count);
}
