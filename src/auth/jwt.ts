import { isEdgeId } from "../core/edge-id";
import { type Result, fail, ok } from "../core/result";
import type { TokenRefusal } from "./refusals";
import { base64UrlDecode, decodeJsonSegment } from "./base64url";
import { issuerKeys } from "./jwks";

/** Seconds of clock difference tolerated on exp, nbf and iat. */
export const CLOCK_SKEW_SECONDS = 60;

export interface TokenClaims {
  jti?: string;
  sub?: string;
  iss?: string;
  exp: number;
  nbf?: number;
  iat?: number;
  /** The registered edge a Key Delivery token belongs to (docs/auth.md). */
  edge_id?: string;
  policies: unknown[];
}

// HMAC keys imported once per isolate per secret.
const hmacKeys = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: string): Promise<CryptoKey> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    hmacKeys.set(secret, key);
  }
  return key;
}

/**
 * Verifies a compact JWS and returns its claims. The steps and their codes
 * (seeds' table): segments, base64url and JSON (1001); header: alg among
 * HS256, ES256, EdDSA, typ JWT if present, no crit, known kid (1002); signature (1003);
 * claims an object of the right types, `edge_id` a valid edge id (1004); exp and policies present
 * (1005); exp, nbf and iat against the clock (1003).
 */
export async function verifyJwt(
  token: string,
  secrets: { hmacSecret: string | undefined; jwks: string | undefined },
  nowMs: number,
): Promise<Result<TokenClaims, TokenRefusal>> {
  const segments = token.split(".");
  if (segments.length !== 3) return fail({ reason: "unparseable_jwt" });
  const [headerPart, payloadPart, signaturePart] = segments as [string, string, string];
  const header = decodeJsonSegment(headerPart);
  const payload = decodeJsonSegment(payloadPart);
  const signature = base64UrlDecode(signaturePart);
  if (header === undefined || payload === undefined || signature === null) return fail({ reason: "unparseable_jwt" });

  if (typeof header !== "object" || header === null || Array.isArray(header)) return fail({ reason: "bad_jwt_header" });
  const { alg, typ, kid } = header as Record<string, unknown>;
  if (typ !== undefined && (typeof typ !== "string" || typ.toUpperCase() !== "JWT")) return fail({ reason: "bad_jwt_header" });
  if (kid !== undefined && typeof kid !== "string") return fail({ reason: "bad_jwt_header" });
  // We implement no JWS extensions, so any critical one must be refused
  // (RFC 7515 §4.1.11); this also rules out unencoded payloads (RFC 7797).
  if ((header as Record<string, unknown>).crit !== undefined) return fail({ reason: "bad_jwt_header" });

  const signed = new TextEncoder().encode(`${headerPart}.${payloadPart}`);
  let valid: boolean;
  if (alg === "HS256") {
    // The deployment's own tokens carry no kid: an HMAC token naming a kid
    // is an attempt to use an issuer's public key as an HMAC secret.
    if (kid !== undefined || !secrets.hmacSecret) return fail({ reason: "bad_jwt_header" });
    valid = await crypto.subtle.verify("HMAC", await hmacKey(secrets.hmacSecret), signature, signed);
  } else if (alg === "ES256" || alg === "EdDSA") {
    const issuer = kid === undefined ? undefined : (await issuerKeys(secrets.jwks)).get(kid);
    if (!issuer || issuer.alg !== alg) return fail({ reason: "bad_jwt_header" });
    const params = alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "Ed25519" };
    // JWS ES256 signatures are already r‖s (RFC 7518 §3.4), as WebCrypto wants.
    valid = (alg !== "ES256" || signature.length === 64) && (await crypto.subtle.verify(params, issuer.key, signature, signed));
  } else {
    return fail({ reason: "bad_jwt_header" });
  }
  if (!valid) return fail({ reason: "jwt_verification_failed" });

  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) return fail({ reason: "unusable_jwt_claims" });
  const claims = payload as Record<string, unknown>;
  for (const name of ["exp", "nbf", "iat"]) {
    if (claims[name] !== undefined && (typeof claims[name] !== "number" || !Number.isFinite(claims[name]))) {
      return fail({ reason: "unusable_jwt_claims" });
    }
  }
  for (const name of ["jti", "sub", "iss", "edge_id"]) {
    if (claims[name] !== undefined && typeof claims[name] !== "string") return fail({ reason: "unusable_jwt_claims" });
  }
  if (claims.edge_id !== undefined && !isEdgeId(claims.edge_id as string)) return fail({ reason: "unusable_jwt_claims" });
  if (claims.policies !== undefined && !Array.isArray(claims.policies)) return fail({ reason: "unusable_jwt_claims" });
  if (claims.exp === undefined || claims.policies === undefined) return fail({ reason: "missing_jwt_claims" });

  const now = nowMs / 1000;
  const { exp, nbf, iat } = claims as { exp: number; nbf?: number; iat?: number };
  if (exp <= now - CLOCK_SKEW_SECONDS) return fail({ reason: "jwt_verification_failed" });
  if (nbf !== undefined && nbf > now + CLOCK_SKEW_SECONDS) return fail({ reason: "jwt_verification_failed" });
  if (iat !== undefined && iat > now + CLOCK_SKEW_SECONDS) return fail({ reason: "jwt_verification_failed" });
  return ok(claims as unknown as TokenClaims);
}
