// Real signed tokens for the tests: HS256 with the test runtime's
// API_TOKEN_SECRET, and ES256/EdDSA from the issuer keys whose public halves
// vitest.config.ts puts in API_TOKEN_JWKS.
import { env } from "cloudflare:workers";
import { ISSUER_PRIVATE_JWKS } from "./issuer-keys";

/** The global API key vitest.config.ts registers (its SHA-256 only): account legacyacct, zone legacyzone. */
export const LEGACY_EMAIL = "ops@customer-one.com";
export const LEGACY_TEST_KEY = "0123456789abcdef0123456789abcdef01234";

export interface TokenOptions {
  accounts?: string[];
  zones?: string[];
  readOnly?: boolean;
  /** An edge's delivery token: the claim edge_id and, unless `groups` says otherwise, only Key Delivery. */
  edge?: string;
  /** The permission groups, replacing the default one. */
  groups?: string[];
  ttlSeconds?: number;
  /** Issue time in ms (defaults to now). */
  now?: number;
  /** Replaces the claims entirely (for malformed-claims tests). */
  claims?: unknown;
  /** Extra or overriding header members. */
  header?: Record<string, unknown>;
}

export const b64url = (bytes: Uint8Array | string): string => {
  const view = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  return btoa(String.fromCharCode(...view)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
};

/** Cloudflare-shaped claims for the given scopes. */
export function claimsFor(opts: TokenOptions): Record<string, unknown> {
  const iat = Math.floor((opts.now ?? Date.now()) / 1000);
  const resources: Record<string, string> = {};
  for (const id of opts.accounts ?? []) resources[`com.cloudflare.api.account.${id}`] = "*";
  for (const id of opts.zones ?? []) resources[`com.cloudflare.api.account.zone.${id}`] = "*";
  const group = opts.edge !== undefined ? "SSL and Certificates Key Delivery" : opts.readOnly ? "SSL and Certificates Read" : "SSL and Certificates Write";
  return {
    iss: "custom-csr-api",
    jti: crypto.randomUUID(),
    iat,
    nbf: iat,
    exp: iat + (opts.ttlSeconds ?? 3600),
    ...(opts.edge !== undefined ? { edge_id: opts.edge } : {}),
    policies: [{ effect: "allow", resources, permission_groups: (opts.groups ?? [group]).map((name) => ({ name })) }],
  };
}

/** An HS256 token signed with `secret` (the test runtime's API_TOKEN_SECRET by default). */
export async function mintToken(opts: TokenOptions = {}, secret: string = env.API_TOKEN_SECRET): Promise<string> {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT", ...opts.header }));
  const payload = b64url(JSON.stringify(opts.claims ?? claimsFor(opts)));
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${header}.${payload}`)));
  return `${header}.${payload}.${b64url(signature)}`;
}

/** A token from the configured external issuer: ES256 (kid "issuer-es256") or EdDSA (kid "issuer-ed25519"). */
export async function mintIssuerToken(alg: "ES256" | "EdDSA", opts: TokenOptions = {}): Promise<string> {
  const jwk = alg === "ES256" ? ISSUER_PRIVATE_JWKS.es256 : ISSUER_PRIVATE_JWKS.ed25519;
  const header = b64url(JSON.stringify({ alg, typ: "JWT", kid: jwk.kid, ...opts.header }));
  const payload = b64url(JSON.stringify(opts.claims ?? claimsFor(opts)));
  const params = alg === "ES256" ? { name: "ECDSA", namedCurve: "P-256" } : { name: "Ed25519" };
  const key = await crypto.subtle.importKey("jwk", jwk, params, false, ["sign"]);
  const signParams = alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "Ed25519" };
  const signature = new Uint8Array(await crypto.subtle.sign(signParams, key, new TextEncoder().encode(`${header}.${payload}`)));
  return `${header}.${payload}.${b64url(signature)}`;
}

export function authHeaders(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
