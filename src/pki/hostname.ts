import { checkSan } from "./san";

/**
 * Why a custom hostname's name is refused: the SAN rules (src/pki/san.ts),
 * under Cloudflare's custom hostname codes (1407–1411).
 */
export type HostnameNameRefusal =
  | { readonly reason: "hostname_invalid" | "hostname_non_ascii" | "hostname_reserved_tld" | "hostname_example_domain"; readonly pointer: string }
  | { readonly reason: "hostname_unparseable"; readonly pointer: string; readonly domain: string };

/** The same for a custom origin server's name (1415–1420; no wildcard). */
export type OriginNameRefusal =
  | {
      readonly reason: "origin_invalid" | "origin_non_ascii" | "origin_reserved_tld" | "origin_example_domain" | "origin_wildcard";
      readonly pointer: string;
    }
  | { readonly reason: "origin_unparseable"; readonly pointer: string; readonly domain: string };

const HOSTNAME_REASONS = {
  invalid_san: "hostname_invalid",
  non_ascii_san: "hostname_non_ascii",
  reserved_tld_san: "hostname_reserved_tld",
  example_domain_san: "hostname_example_domain",
} as const;

const ORIGIN_REASONS = {
  invalid_san: "origin_invalid",
  non_ascii_san: "origin_non_ascii",
  reserved_tld_san: "origin_reserved_tld",
  example_domain_san: "origin_example_domain",
} as const;

/**
 * A custom hostname, lower-cased: a DNS name under the rules a CSR's SAN
 * follows (at most 255 characters, no IP address, labels of letters, digits,
 * '-' and '_', a registrable domain, no reserved or example name), which may
 * start with `*.` (a wildcard custom hostname). Null when it passes.
 */
export function checkHostname(name: string, pointer: string): HostnameNameRefusal | null {
  const refusal = checkSan(name, 0);
  if (refusal === null) return null;
  if (refusal.reason === "unparseable_san") return { reason: "hostname_unparseable", pointer, domain: refusal.domain };
  return { reason: HOSTNAME_REASONS[refusal.reason], pointer };
}

/** A custom origin server's name: a custom hostname's rules, without a wildcard. */
export function checkOriginName(name: string, pointer: string): OriginNameRefusal | null {
  if (name.startsWith("*.")) return { reason: "origin_wildcard", pointer };
  const refusal = checkSan(name, 0);
  if (refusal === null) return null;
  if (refusal.reason === "unparseable_san") return { reason: "origin_unparseable", pointer, domain: refusal.domain };
  return { reason: ORIGIN_REASONS[refusal.reason], pointer };
}
