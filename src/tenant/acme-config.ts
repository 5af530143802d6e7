import { type Result, fail, ok } from "../core/result";

/** One certificate authority the operator configured: its ACME directory and, when it needs one, External Account Binding. */
export interface AcmeCa {
  readonly name: string;
  readonly directory: string;
  readonly eab?: { readonly kid: string; readonly hmacKey: string };
}

/** When a certificate is renewed: a fraction of its lifetime left (default 1/3), or a fixed time before expiry. */
export type RenewBefore = { readonly fraction: number } | { readonly ms: number };

export interface AcmeConfig {
  readonly cas: ReadonlyMap<string, AcmeCa>;
  /** The CA a request without `certificate_authority` uses. */
  readonly defaultCa: string | null;
  readonly renewBefore: RenewBefore;
  /** A DNS-over-HTTPS JSON resolver (RFC 8484's JSON form) the dns-01 records are looked up with before the CA is asked; null: not looked up. */
  readonly dnsResolver: string | null;
  /** Whether a renewal keeps the hostname's key (RENEW_KEY_REUSE); by default each certificate gets a fresh one. */
  readonly reuseKey: boolean;
  /** Whether each managed certificate gets an RSA-2048 twin beside its P-256 one (MANAGED_KEY_TYPES, Cloudflare's dual certificates). */
  readonly dual: boolean;
}

/** The environment's ACME settings (secrets and vars; all optional). */
export interface AcmeEnv {
  ACME_DIRECTORIES?: string;
  ACME_DEFAULT_CA?: string;
  RENEW_BEFORE?: string;
  ACME_DNS_RESOLVER?: string;
  ACME_RETRY_SECONDS?: string;
  RENEW_KEY_REUSE?: string;
  MANAGED_KEY_TYPES?: string;
}

/** The base of the backoff between orders after a failure (ACME_RETRY_SECONDS, default 60 s). */
export function acmeRetryMs(env: AcmeEnv): number {
  const seconds = Number(env.ACME_RETRY_SECONDS ?? "60");
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 60_000;
}

/** The deployment has no (or no usable) ACME configuration: what the operator must set. */
export type AcmeNotConfigured = { readonly reason: "acme_not_configured"; readonly problem: string };

const DAY = 86_400_000;

/** RENEW_BEFORE: `1/3`, `0.25` (a fraction of the lifetime), or `30d`, `12h` (before expiry). */
export function parseRenewBefore(raw: string | undefined): RenewBefore | null {
  const text = (raw ?? "").trim();
  if (text === "") return { fraction: 1 / 3 };
  const ratio = /^(\d+)\/(\d+)$/.exec(text);
  if (ratio) {
    const fraction = Number(ratio[1]) / Number(ratio[2]);
    return fraction > 0 && fraction < 1 ? { fraction } : null;
  }
  if (/^0?\.\d+$/.test(text)) {
    const fraction = Number(text);
    return fraction > 0 && fraction < 1 ? { fraction } : null;
  }
  const duration = /^(\d{1,4})([dh])$/.exec(text);
  if (duration) return { ms: Number(duration[1]) * (duration[2] === "d" ? DAY : 3_600_000) };
  return null;
}

/**
 * When a certificate valid from `notBefore` to `notAfter` is due for renewal:
 * with a fraction, when that fraction of its lifetime is left, but never later
 * than 30 days before expiry for a certificate that lives longer than 90 days;
 * with a duration, that long before expiry (at the latest at half its life).
 */
export function renewalDue(notBefore: number, notAfter: number, renewBefore: RenewBefore): number {
  const lifetime = Math.max(0, notAfter - notBefore);
  if ("ms" in renewBefore) return notAfter - Math.min(renewBefore.ms, lifetime / 2);
  const early = lifetime * renewBefore.fraction;
  return notAfter - (lifetime > 90 * DAY ? Math.max(early, 30 * DAY) : early);
}

/**
 * The ACME configuration from the environment: `ACME_DIRECTORIES` (a secret:
 * JSON `{"<name>": {"directory": URL, "eab_kid"?, "eab_hmac_key"?}}`),
 * `ACME_DEFAULT_CA` (one of the names), `RENEW_BEFORE`, `ACME_DNS_RESOLVER`.
 */
export function acmeConfig(env: AcmeEnv): Result<AcmeConfig, AcmeNotConfigured> {
  const problem = (text: string) => fail({ reason: "acme_not_configured", problem: text });
  const raw = (env.ACME_DIRECTORIES ?? "").trim();
  if (raw === "") return problem("ACME_DIRECTORIES is not set");
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return problem("ACME_DIRECTORIES is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return problem("ACME_DIRECTORIES is not a JSON object of CAs by name");
  const cas = new Map<string, AcmeCa>();
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (!/^[a-z0-9_-]{1,64}$/.test(name)) return problem(`ACME_DIRECTORIES: ${JSON.stringify(name.slice(0, 64))} is not a CA name (a-z, 0-9, '_', '-')`);
    const v = value as Record<string, unknown>;
    if (typeof v !== "object" || v === null || typeof v.directory !== "string" || !/^https:\/\//.test(v.directory)) {
      return problem(`ACME_DIRECTORIES: ${name} has no https "directory"`);
    }
    const kid = v.eab_kid;
    const hmac = v.eab_hmac_key;
    if ((kid === undefined) !== (hmac === undefined) || (kid !== undefined && (typeof kid !== "string" || typeof hmac !== "string"))) {
      return problem(`ACME_DIRECTORIES: ${name} needs both "eab_kid" and "eab_hmac_key", or neither`);
    }
    cas.set(name, { name, directory: v.directory, ...(typeof kid === "string" ? { eab: { kid, hmacKey: hmac as string } } : {}) });
  }
  if (cas.size === 0) return problem("ACME_DIRECTORIES names no CA");
  const chosen = (env.ACME_DEFAULT_CA ?? "").trim();
  const defaultCa = chosen === "" ? (cas.size === 1 ? [...cas.keys()][0]! : null) : chosen;
  if (defaultCa !== null && !cas.has(defaultCa)) return problem(`ACME_DEFAULT_CA ${JSON.stringify(chosen)} is not in ACME_DIRECTORIES`);
  const renewBefore = parseRenewBefore(env.RENEW_BEFORE);
  if (renewBefore === null) return problem(`RENEW_BEFORE ${JSON.stringify(env.RENEW_BEFORE)} is not a fraction (1/3, 0.25) or a duration (30d, 12h)`);
  const resolver = (env.ACME_DNS_RESOLVER ?? "").trim();
  if (resolver !== "" && !/^https:\/\//.test(resolver)) return problem("ACME_DNS_RESOLVER must be an https URL");
  const reuse = (env.RENEW_KEY_REUSE ?? "").trim().toLowerCase();
  if (!["", "true", "false"].includes(reuse)) return problem(`RENEW_KEY_REUSE ${JSON.stringify(env.RENEW_KEY_REUSE)} is not true or false`);
  const types = (env.MANAGED_KEY_TYPES ?? "").split(",").map((t) => t.trim()).filter((t) => t !== "");
  const dual = types.includes("rsa2048");
  if (types.length > 0 && (types[0] !== "p256v1" || types.length > 2 || (types.length === 2 && !dual))) {
    return problem(`MANAGED_KEY_TYPES ${JSON.stringify(env.MANAGED_KEY_TYPES)} is neither "p256v1" nor "p256v1,rsa2048"`);
  }
  return ok({ cas, defaultCa, renewBefore, dnsResolver: resolver === "" ? null : resolver, reuseKey: reuse === "true", dual });
}
