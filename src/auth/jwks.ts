/** A verification key of another token issuer, from the API_TOKEN_JWKS var. */
export interface IssuerKey {
  alg: "ES256" | "EdDSA";
  key: CryptoKey;
}

// Imported once per isolate for each distinct JWKS text.
let cached: { text: string; keys: Promise<Map<string, IssuerKey>> } | null = null;

/**
 * The configured public keys by `kid`. Only EC P-256 (ES256) and OKP
 * Ed25519 (EdDSA) keys with a kid (and `use` absent or "sig") are taken;
 * private members are ignored; malformed entries are skipped, so one bad key
 * cannot disable the others.
 */
export function issuerKeys(jwksText: string | undefined): Promise<Map<string, IssuerKey>> {
  const text = jwksText ?? "";
  if (cached?.text !== text) cached = { text, keys: importJwks(text) };
  return cached.keys;
}

async function importJwks(text: string): Promise<Map<string, IssuerKey>> {
  const keys = new Map<string, IssuerKey>();
  if (text.trim() === "") return keys;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    console.error(JSON.stringify({ level: "error", event: "jwks_unparseable" }));
    return keys;
  }
  const list = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) return keys;
  for (const entry of list as unknown[]) {
    if (typeof entry !== "object" || entry === null) continue;
    const jwk = entry as Record<string, unknown>;
    if (typeof jwk.kid !== "string" || keys.has(jwk.kid)) continue;
    // A key published for encryption must not verify signatures.
    if (jwk.use !== undefined && jwk.use !== "sig") continue;
    try {
      if (jwk.kty === "EC" && jwk.crv === "P-256" && (jwk.alg === undefined || jwk.alg === "ES256")) {
        const key = await crypto.subtle.importKey("jwk", publicPart(jwk, ["x", "y"]), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
        keys.set(jwk.kid, { alg: "ES256", key });
      } else if (jwk.kty === "OKP" && jwk.crv === "Ed25519" && (jwk.alg === undefined || jwk.alg === "EdDSA")) {
        const key = await crypto.subtle.importKey("jwk", publicPart(jwk, ["x"]), { name: "Ed25519" }, false, ["verify"]);
        keys.set(jwk.kid, { alg: "EdDSA", key });
      }
    } catch {
      console.error(JSON.stringify({ level: "error", event: "jwks_key_skipped", kid: jwk.kid }));
    }
  }
  return keys;
}

function publicPart(jwk: Record<string, unknown>, members: string[]): JsonWebKey {
  const out: Record<string, unknown> = { kty: jwk.kty, crv: jwk.crv };
  for (const m of members) out[m] = jwk[m];
  return out as unknown as JsonWebKey;
}
