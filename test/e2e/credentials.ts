// Credentials for the test server, made the way an operator would: HS256
// tokens signed with its API_TOKEN_SECRET (claims as docs/auth.md and
// src/auth/policies.ts describe) and global API keys registered by hash.
import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";

/** Which scopes a token covers and with which permission group. */
export interface TokenGrant {
  accounts?: readonly string[];
  zones?: readonly string[];
  readOnly?: boolean;
  /** An edge's delivery token: "SSL and Certificates Key Delivery" only, and the claim edge_id. */
  edge?: string;
  /** Seconds from now; negative for an expired token. */
  ttl?: number;
  /** The permission groups, instead of the one `readOnly` and `edge` choose (e.g. "Notifications Write"). */
  groups?: readonly string[];
}

const b64url = (data: string | Buffer): string => Buffer.from(data).toString("base64url");

/** Signs any header and payload as a compact HS256 JWS (also for malformed-claim tests). */
export function signHs256(secret: string, header: unknown, payload: unknown): string {
  const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const signature = createHmac("sha256", secret).update(signingInput).digest("base64url");
  return `${signingInput}.${signature}`;
}

/** The `policies` claim for a grant, in Cloudflare's shape. */
export function policiesFor(grant: TokenGrant): unknown[] {
  const resources: Record<string, string> = {};
  for (const id of grant.accounts ?? []) resources[`com.cloudflare.api.account.${id}`] = "*";
  for (const id of grant.zones ?? []) resources[`com.cloudflare.api.account.zone.${id}`] = "*";
  const group = grant.edge !== undefined ? "SSL and Certificates Key Delivery" : grant.readOnly ? "SSL and Certificates Read" : "SSL and Certificates Write";
  return [{ id: randomUUID(), effect: "allow", resources, permission_groups: (grant.groups ?? [group]).map((name) => ({ id: randomUUID(), name })) }];
}

/** A bearer token for the grant, valid for `ttl` seconds (default an hour). */
export function mintToken(secret: string, grant: TokenGrant): string {
  const now = Math.floor(Date.now() / 1000);
  return signHs256(
    secret,
    { alg: "HS256", typ: "JWT" },
    {
      jti: randomUUID(),
      iat: now,
      exp: now + (grant.ttl ?? 3600),
      ...(grant.edge !== undefined ? { edge_id: grant.edge } : {}),
      policies: policiesFor(grant),
    },
  );
}

/** A global API key and its GLOBAL_API_KEYS entry (only the SHA-256 is registered). */
export interface LegacyCredential {
  email: string;
  key: string;
  entry: { email: string; key_sha256: string; accounts: string[]; zones: string[] };
}

/** A fresh global API key for `email` covering the given scopes. */
export function legacyKey(email: string, accounts: string[], zones: string[]): LegacyCredential {
  const key = randomBytes(20).toString("hex");
  return {
    email,
    key,
    entry: { email, key_sha256: createHash("sha256").update(key).digest("hex"), accounts, zones },
  };
}

/** A unique account or zone id (≤ 32 chars of the allowed alphabet). */
export function scopeId(prefix: string): string {
  return `${prefix}${randomUUID().replaceAll("-", "").slice(0, 20)}`;
}
