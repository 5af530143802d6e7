/**
 * What this deployment can notify of (GET …/alerting/v3/available_alerts),
 * in Cloudflare's shape: alert types by product group, each with its filter
 * options. One type today, Cloudflare's SSL for SaaS alert, which here also
 * carries the expiry notices of custom certificates (Cloudflare e-mails
 * those 30 and 14 days ahead without an alert type of their own).
 */
export const CERTIFICATE_ALERT = "custom_ssl_certificate_event_type";
/** Ours: a scope's RSA key pool found empty by a create (the key made on demand instead). */
export const KEY_POOL_ALERT = "custom_csr_key_pool_empty";
/** Ours: a scope's audit chain failed verification. */
export const AUDIT_CHAIN_ALERT = "custom_csr_audit_chain_failed";
/** Ours: a registered edge has not synced for longer than the policy allows. */
export const EDGE_STALE_ALERT = "custom_csr_edge_stale";
export type AlertType = typeof CERTIFICATE_ALERT | typeof KEY_POOL_ALERT | typeof AUDIT_CHAIN_ALERT | typeof EDGE_STALE_ALERT;

export const AVAILABLE_ALERTS = {
  "SSL/TLS": [
    {
      type: CERTIFICATE_ALERT,
      display_name: "SSL for SaaS Custom Hostnames Alert",
      description:
        "Custom hostname certificate validation, issuance, renewal and expiration, and custom certificates expiring in 30 and 14 days or expired.",
      filter_options: [{ Key: "zones", ComparisonOperator: "==", Range: "0-1", AvailableValues: null }],
    },
  ],
  "Custom CSR API": [
    {
      type: KEY_POOL_ALERT,
      display_name: "RSA Key Pool Empty",
      description: "A create found the scope's RSA key pool empty and generated its key on demand (told at most once an hour per scope).",
      filter_options: [{ Key: "zones", ComparisonOperator: "==", Range: "0-1", AvailableValues: null }],
    },
    {
      type: AUDIT_CHAIN_ALERT,
      display_name: "Audit Chain Verification Failed",
      description: "POST /admin/v1/{accounts|zones}/{id}/audit/verify found the scope's audit trail altered (told once per break).",
      filter_options: [{ Key: "zones", ComparisonOperator: "==", Range: "0-1", AvailableValues: null }],
    },
    {
      type: EDGE_STALE_ALERT,
      display_name: "Edge Not Syncing",
      description: "A registered edge has not fetched its listing (edge sync) for longer than max_age_minutes (default 60).",
      filter_options: [
        { Key: "edges", ComparisonOperator: "==", Range: "1-n", AvailableValues: null },
        { Key: "max_age_minutes", ComparisonOperator: ">=", Range: "0-1", AvailableValues: null },
      ],
    },
  ],
} as const;

/** The alert types a policy may name, and the filters each takes. */
export const ALERT_FILTERS: ReadonlyMap<string, readonly string[]> = new Map([
  [CERTIFICATE_ALERT, ["zones"]],
  [KEY_POOL_ALERT, ["zones"]],
  [AUDIT_CHAIN_ALERT, ["zones"]],
  [EDGE_STALE_ALERT, ["edges", "max_age_minutes"]],
]);

/** Filters a policy of the type must give (Cloudflare's 17103 without them). */
export const REQUIRED_FILTERS: ReadonlyMap<string, readonly string[]> = new Map([[EDGE_STALE_ALERT, ["edges"]]]);

/** When a certificate's expiry is notified: this many days before it, and at it (0). */
export const EXPIRY_NOTICE_DAYS = [30, 14, 0] as const;

/**
 * An event a zone raised, handed to its account's object: the account's
 * policies decide who is told. `data` is what the webhook's `data` carries.
 */
export interface AlertEvent {
  /** Random, once per event: the payload's `alert_correlation_id`, and what makes a second hand-over of it a no-op. */
  readonly id: string;
  readonly alert_type: AlertType;
  /** The zone it concerns; "" for an account's own (its key pool, its audit trail, an edge). */
  readonly zone_id: string;
  readonly raised_at: string;
  /** One line a person reads (the webhook's `text`). */
  readonly text: string;
  readonly data: Record<string, unknown>;
}

/** A custom certificate, or a custom hostname's, whose expiry is near or past. */
export interface Expiring {
  readonly kind: "custom_certificate" | "custom_hostname";
  readonly id: string;
  readonly expires_on: string;
  readonly hosts: readonly string[];
  readonly hostname?: string;
  readonly custom_csr_id?: string | null;
  /** An RSA twin's hostname id (its own id is `id`). */
  readonly twin_of?: string;
}

/** The event of a certificate `days` from its expiry (0: expired), Cloudflare's event names where it has one. */
export function expiryEvent(zoneId: string, expiring: Expiring, days: number, now: Date): AlertEvent {
  const hostname = expiring.kind === "custom_hostname";
  const type =
    days === 0
      ? hostname
        ? "ssl.custom_hostname_certificate.expired"
        : "ssl.custom_certificate.expired"
      : hostname
        ? "ssl.custom_hostname_certificate.renewal.upcoming_certificate_expiration_notification"
        : "ssl.custom_certificate.upcoming_expiration_notification";
  // Whole days, rounded up: the 30-day notice says 30.
  const left = Math.max(0, Math.ceil((Date.parse(expiring.expires_on) - now.getTime()) / 86_400_000));
  const what = hostname
    ? `The ${expiring.twin_of === undefined ? "" : "RSA-2048 "}certificate of custom hostname ${expiring.hostname}`
    : `Custom certificate ${expiring.id} (${expiring.hosts.join(", ")})`;
  return {
    id: crypto.randomUUID(),
    alert_type: CERTIFICATE_ALERT,
    zone_id: zoneId,
    raised_at: now.toISOString(),
    text: days === 0 ? `${what} expired at ${expiring.expires_on}.` : `${what} expires at ${expiring.expires_on}, in ${left} days.`,
    data: {
      metadata: { event: { type, created_at: now.toISOString() }, zone: { id: zoneId } },
      certificate_id: expiring.id,
      zone_id: zoneId,
      ...(hostname ? { id: expiring.twin_of ?? expiring.id, hostname: expiring.hostname } : { custom_csr_id: expiring.custom_csr_id ?? null }),
      ...(expiring.twin_of === undefined ? {} : { key_type: "rsa2048" }),
      hosts: expiring.hosts,
      expires_on: expiring.expires_on,
      days_til_expiration: left,
    },
  };
}

/** A custom hostname certificate event of the ACME machinery (Cloudflare's `ssl.custom_hostname_certificate.*` types). */
export function hostnameEvent(
  zoneId: string,
  hostname: { id: string; hostname: string },
  event: "validation.failed" | "issuance.failed" | "issuance.succeeded" | "renewal.succeeded" | "renewal.failed",
  ssl: Record<string, unknown>,
  now: Date,
): AlertEvent {
  const said = {
    "validation.failed": "failed validation",
    "issuance.failed": "could not be issued",
    "issuance.succeeded": "was issued",
    "renewal.succeeded": "was renewed",
    "renewal.failed": "failed to renew",
  }[event];
  return {
    id: crypto.randomUUID(),
    alert_type: CERTIFICATE_ALERT,
    zone_id: zoneId,
    raised_at: now.toISOString(),
    text: `The certificate of custom hostname ${hostname.hostname} ${said}.`,
    data: {
      metadata: { event: { type: `ssl.custom_hostname_certificate.${event}`, created_at: now.toISOString() }, zone: { id: zoneId } },
      id: hostname.id,
      certificate_id: hostname.id,
      hostname: hostname.hostname,
      zone_id: zoneId,
      ssl,
    },
  };
}

/** A scope's own event (ours): its key pool found empty, or its audit chain broken. */
export function scopeEvent(scope: { kind: "accounts" | "zones"; id: string }, type: typeof KEY_POOL_ALERT | typeof AUDIT_CHAIN_ALERT, text: string, data: Record<string, unknown>, now: Date): AlertEvent {
  return {
    id: crypto.randomUUID(),
    alert_type: type,
    zone_id: scope.kind === "zones" ? scope.id : "",
    raised_at: now.toISOString(),
    text,
    data: { metadata: { event: { type: type === KEY_POOL_ALERT ? "key_pool.empty" : "audit_chain.verification_failed", created_at: now.toISOString() } }, scope: `${scope.kind}:${scope.id}`, ...data },
  };
}
