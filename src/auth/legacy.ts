import { type Result, fail, ok } from "../core/result";
import { constantTimeEqual } from "./base64url";
import type { LegacyKeyRefusal } from "./refusals";

/** A registered global API key: only the SHA-256 of the key is stored. */
export interface LegacyKey {
  email: string;
  key_sha256: string;
  accounts: string[];
  zones: string[];
}

let cached: { text: string; keys: Map<string, LegacyKey> } | null = null;

/** The GLOBAL_API_KEYS secret, parsed once per isolate; malformed entries are skipped. */
function registeredKeys(text: string | undefined): Map<string, LegacyKey> {
  const source = text ?? "[]";
  if (cached?.text === source) return cached.keys;
  const keys = new Map<string, LegacyKey>();
  let parsed: unknown = [];
  try {
    parsed = JSON.parse(source);
  } catch {
    console.error(JSON.stringify({ level: "error", event: "global_api_keys_unparseable" }));
  }
  for (const entry of Array.isArray(parsed) ? (parsed as unknown[]) : []) {
    const e = entry as Partial<LegacyKey> | null;
    const stringList = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === "string");
    if (
      typeof e?.email === "string" &&
      typeof e.key_sha256 === "string" &&
      /^[0-9a-f]{64}$/.test(e.key_sha256) &&
      stringList(e.accounts ?? []) &&
      stringList(e.zones ?? [])
    ) {
      keys.set(e.email.toLowerCase(), { email: e.email, key_sha256: e.key_sha256, accounts: e.accounts ?? [], zones: e.zones ?? [] });
    }
  }
  cached = { text: source, keys };
  return keys;
}

const hexToBytes = (hex: string) => new Uint8Array(hex.match(/../g)!.map((h) => Number.parseInt(h, 16)));
// Compared against when the email is unknown, so both cases cost the same.
const DUMMY = new Uint8Array(32);

/**
 * Checks an X-Auth-Email / X-Auth-Key pair. The key's SHA-256 is compared in
 * constant time with the registered hash; an unknown email, a wrong key, or
 * only one of the two headers is the same 401 (9103).
 */
export async function verifyLegacyKey(
  email: string | null,
  key: string | null,
  registered: string | undefined,
): Promise<Result<LegacyKey, LegacyKeyRefusal>> {
  if (!email || !key) return fail({ reason: "invalid_legacy_credentials" });
  const entry = registeredKeys(registered).get(email.trim().toLowerCase());
  const presented = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key.trim())));
  const expected = entry ? hexToBytes(entry.key_sha256) : DUMMY;
  const match = constantTimeEqual(presented, expected);
  return entry && match ? ok(entry) : fail({ reason: "invalid_legacy_credentials" });
}
