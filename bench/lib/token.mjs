// Mints the bench's API token: an HS256 JWT in the claims format of
// docs/auth.md (Cloudflare-shaped policies), signed with the run's freshly
// generated API_TOKEN_SECRET. node:crypto only; the token is never logged.
import { createHmac, randomUUID } from "node:crypto";

const segment = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");

/** A token granting SSL and Certificates Write on the given accounts and zones ("*" = all). */
export function mintToken(secret, { accounts = ["*"], zones = ["*"], ttlSeconds = 3600 } = {}) {
  const iat = Math.floor(Date.now() / 1000);
  const resources = {};
  for (const id of accounts) resources[`com.cloudflare.api.account.${id}`] = "*";
  for (const id of zones) resources[`com.cloudflare.api.account.zone.${id}`] = "*";
  const claims = {
    iss: "custom-csr-api-bench",
    jti: randomUUID(),
    iat,
    nbf: iat,
    exp: iat + ttlSeconds,
    policies: [{ effect: "allow", resources, permission_groups: [{ name: "SSL and Certificates Write" }] }],
  };
  const signingInput = `${segment({ alg: "HS256", typ: "JWT" })}.${segment(claims)}`;
  const signature = createHmac("sha256", Buffer.from(secret, "utf8")).update(signingInput).digest("base64url");
  return `${signingInput}.${signature}`;
}
