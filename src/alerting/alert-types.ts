/**
 * What this deployment can notify of (GET …/alerting/v3/available_alerts),
 * in Cloudflare's shape: alert types by product group, each with its filter
 * options. One type today, Cloudflare's SSL for SaaS alert, which here also
 * carries the expiry notices of custom certificates (Cloudflare e-mails
 * those 30 and 14 days ahead without an alert type of their own).
 */
export const CERTIFICATE_ALERT = "custom_ssl_certificate_event_type";

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
} as const;

/** The alert types a policy may name, and the filters each takes. */
export const ALERT_FILTERS: ReadonlyMap<string, readonly string[]> = new Map([[CERTIFICATE_ALERT, ["zones"]]]);

/** When a certificate's expiry is notified: this many days before it, and at it (0). */
export const EXPIRY_NOTICE_DAYS = [30, 14, 0] as const;

/**
 * An event a zone raised, handed to its account's object: the account's
 * policies decide who is told. `data` is what the webhook's `data` carries.
 */
export interface AlertEvent {
  /** Random, once per event: the payload's `alert_correlation_id`, and what makes a second hand-over of it a no-op. */
  readonly id: string;
  readonly alert_type: typeof CERTIFICATE_ALERT;
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
  const left = Math.max(0, Math.floor((Date.parse(expiring.expires_on) - now.getTime()) / 86_400_000));
  const what = hostname ? `The certificate of custom hostname ${expiring.hostname}` : `Custom certificate ${expiring.id} (${expiring.hosts.join(", ")})`;
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
      ...(hostname ? { id: expiring.id, hostname: expiring.hostname } : { custom_csr_id: expiring.custom_csr_id ?? null }),
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
