// HS256 API tokens with Cloudflare-shaped policies (docs/auth.md), for the
// token tool and the benchmark. Node built-ins only.
import { createHmac, randomUUID } from "node:crypto";

const b64url = (text) => Buffer.from(text).toString("base64url");

/**
 * Signs a token for the given accounts and zones, and for every zone
 * recorded under each of `accountZones` (Cloudflare's nested resource form,
 * in a policy of its own: a resources object cannot name an account twice).
 * With `edge`, the token is that edge's delivery token: the permission group
 * "SSL and Certificates Key Delivery" (and no other) and the claim `edge_id`.
 * @param {string} secret the deployment's API_TOKEN_SECRET
 * @param {{accounts: string[], zones: string[], accountZones?: string[], readOnly?: boolean, ttl: number, edge?: string | null}} opts
 */
export function signToken(secret, { accounts, zones, accountZones = [], readOnly = false, ttl, edge = null }, now = Date.now()) {
  const iat = Math.floor(now / 1000);
  const group = edge ? "SSL and Certificates Key Delivery" : readOnly ? "SSL and Certificates Read" : "SSL and Certificates Write";
  const permission_groups = [{ name: group }];
  const resources = {};
  for (const id of accounts) resources[`com.cloudflare.api.account.${id}`] = "*";
  for (const id of zones) resources[`com.cloudflare.api.account.zone.${id}`] = "*";
  const nested = {};
  for (const id of accountZones) nested[`com.cloudflare.api.account.${id}`] = { "com.cloudflare.api.account.zone.*": "*" };
  const policies = [];
  if (accounts.length + zones.length > 0) policies.push({ effect: "allow", resources, permission_groups });
  if (accountZones.length > 0) policies.push({ effect: "allow", resources: nested, permission_groups });
  const claims = { iss: "custom-csr-api", jti: randomUUID(), iat, nbf: iat, exp: iat + ttl, ...(edge ? { edge_id: edge } : {}), policies };
  const signingInput = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  return `${signingInput}.${createHmac("sha256", Buffer.from(secret, "utf8")).update(signingInput).digest("base64url")}`;
}
