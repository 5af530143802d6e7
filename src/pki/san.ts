import { getDomain } from "tldts";

// Cloudflare's published schema: 1–150 SANs, each under 256 characters.
export const MAX_SANS = 150;
export const MAX_SAN_LENGTH = 255;

// RFC 2606 / RFC 6761 reserved top-level names (seeds' code 1414).
const RESERVED_TLDS = new Set(["test", "example", "invalid", "localhost"]);
// RFC 2606 §3 second-level names (seeds' code 1416).
const EXAMPLE_DOMAINS = ["example.com", "example.net", "example.org"];

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/i;
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;

/** Why a SAN is refused (the seeds' 1412–1416); `pointer` names it in the body. */
export type SanRefusal =
  | { readonly reason: "invalid_san" | "non_ascii_san" | "reserved_tld_san" | "example_domain_san"; readonly pointer: string }
  | { readonly reason: "unparseable_san"; readonly pointer: string; readonly domain: string };

/**
 * Checks one SAN against the seeds' rules (1412–1416), in that order of
 * precedence. Returns null when the name is acceptable. `index` is the SAN's
 * place in the request, for the error's JSON pointer.
 */
export function checkSan(san: string, index: number): SanRefusal | null {
  const pointer = `/sans/${index}`;
  // Non-ASCII first: the more specific of the two refusals (1413 over 1412).
  if (/[^\x00-\x7f]/.test(san)) return { reason: "non_ascii_san", pointer };
  if (san.length === 0 || san.length > MAX_SAN_LENGTH) return { reason: "invalid_san", pointer };
  if (IPV4.test(san) || san.includes(":")) return { reason: "invalid_san", pointer };

  // A wildcard is allowed only as the whole leftmost label (RFC 6125 §6.4.3).
  const host = san.startsWith("*.") ? san.slice(2) : san;
  const labels = host.split(".");
  for (const label of labels) {
    if (label.length > 63 || !LABEL.test(label)) return { reason: "invalid_san", pointer };
  }

  const lower = host.toLowerCase();
  const tld = labels[labels.length - 1]?.toLowerCase() ?? "";
  if (RESERVED_TLDS.has(tld)) return { reason: "reserved_tld_san", pointer };
  if (EXAMPLE_DOMAINS.some((d) => lower === d || lower.endsWith(`.${d}`))) {
    return { reason: "example_domain_san", pointer };
  }
  // Like Go's publicsuffix.EffectiveTLDPlusOne over the ICANN and private
  // sections: a name that is itself a public suffix has no registrable domain.
  const registrable = getDomain(lower, { allowPrivateDomains: true, validateHostname: false });
  if (!registrable || registrable.length > lower.length) {
    return {
      reason: "unparseable_san",
      pointer,
      domain: host,
    };
  }
  return null;
}
