import { type Result, fail, ok } from "../core/result";
import type { AuthRefusal, Forbidden } from "./refusals";
import type { Scope } from "../core/scope";
import { CLOCK_SKEW_SECONDS, type TokenClaims, verifyJwt } from "./jwt";
import { verifyLegacyKey } from "./legacy";
import { type Grant, type Permission, allows, fullGrants, grantsFromPolicies, needsZoneAccount } from "./policies";

export type { Permission };

/** Who is calling, and what they may do. `subject` is safe to log (token id or email), never a secret. */
export interface Principal {
  readonly kind: "token" | "legacy";
  readonly subject: string;
  readonly grants: readonly Grant[];
  /** The edge a Key Delivery token names (its `edge_id` claim); never set for global API keys. */
  readonly edge?: string;
}

// Verified tokens, by their exact text, so a client's repeated requests skip
// the HMAC and JSON work; the time checks still run on every use. Bounded,
// oldest first out. Emptied whenever the secret or JWKS it was filled under
// differs, so a rotated secret or a withdrawn issuer key takes effect even
// in an isolate that outlives the change.
const VERIFIED_CACHE_SIZE = 1024;
const verified = new Map<string, { principal: Principal; exp: number; nbf: number }>();
let verifiedUnder: { secret: string | undefined; jwks: string | undefined } = { secret: undefined, jwks: undefined };

function cached(token: string, now: number, secret: string | undefined, jwks: string | undefined): Principal | null {
  if (verifiedUnder.secret !== secret || verifiedUnder.jwks !== jwks) {
    verified.clear();
    verifiedUnder = { secret, jwks };
    return null;
  }
  const hit = verified.get(token);
  if (!hit) return null;
  const seconds = now / 1000;
  if (hit.exp <= seconds - CLOCK_SKEW_SECONDS || hit.nbf > seconds + CLOCK_SKEW_SECONDS) return null;
  return hit.principal;
}

function remember(token: string, principal: Principal, claims: TokenClaims): void {
  if (verified.size >= VERIFIED_CACHE_SIZE) verified.delete(verified.keys().next().value!);
  verified.set(token, { principal, exp: claims.exp, nbf: Math.max(claims.nbf ?? 0, claims.iat ?? 0) });
}

/**
 * Authenticates a request with the seeds' two schemes. `Authorization` wins
 * when both are sent. No credentials at all is 1402; a bearer problem is
 * 1000–1005; a bad global API key pair is 9103. Never throws on bad input.
 */
export async function authenticate(request: Request, env: Env, now: number = Date.now()): Promise<Result<Principal, AuthRefusal>> {
  const authorization = request.headers.get("authorization");
  const email = request.headers.get("x-auth-email");
  const key = request.headers.get("x-auth-key");

  if (authorization !== null) {
    const match = /^Bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorization);
    if (!match) return fail({ reason: "no_bearer_token" });
    const token = match[1]!;
    // Read defensively: a deployment may leave the optional JWKS var out.
    const jwks = (env as { API_TOKEN_JWKS?: string }).API_TOKEN_JWKS;
    const hit = cached(token, now, env.API_TOKEN_SECRET, jwks);
    if (hit) return ok(hit);
    const claims = await verifyJwt(token, { hmacSecret: env.API_TOKEN_SECRET, jwks }, now);
    if (!claims.ok) return claims;
    const grants = grantsFromPolicies(claims.value.policies);
    if (!grants) return fail({ reason: "unusable_jwt_claims" });
    const subject = claims.value.jti ?? claims.value.sub ?? "anonymous";
    const principal: Principal = claims.value.edge_id === undefined
      ? { kind: "token", subject: subject.slice(0, 64), grants }
      : { kind: "token", subject: subject.slice(0, 64), grants, edge: claims.value.edge_id };
    remember(token, principal, claims.value);
    return ok(principal);
  }

  if (email === null && key === null) return fail({ reason: "no_authorization" });
  const legacy = await verifyLegacyKey(email, key, env.GLOBAL_API_KEYS);
  if (!legacy.ok) return legacy;
  return ok({ kind: "legacy", subject: legacy.value.email, grants: fullGrants(legacy.value.accounts, legacy.value.zones) });
}

/**
 * ok when the principal holds `permission` on `scope`; otherwise 403
 * (10000). The zone's account is asked for only when a grant that could
 * apply depends on it. Delivery also needs the token to name its edge: a
 * Key Delivery grant without an `edge_id` claim grants nothing.
 */
export async function authorize(
  principal: Principal,
  scope: Scope,
  permission: Permission,
  zoneAccount: (zoneId: string) => Promise<string | null>,
): Promise<Result<void, Forbidden>> {
  if (permission === "deliver" && principal.edge === undefined) return fail({ reason: "forbidden" });
  const account = needsZoneAccount(principal.grants, scope, permission) ? await zoneAccount(scope.id) : null;
  return allows(principal.grants, scope, permission, account) ? ok(undefined) : fail({ reason: "forbidden" });
}
