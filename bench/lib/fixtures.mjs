// What every bench run sends and runs with: one create body (body.mjs, which
// the slice Worker imports too), and fresh secrets per run (never printed,
// never written outside the run's temp dir).
import { randomBytes } from "node:crypto";

export { BODY } from "./body.mjs";

/** The Worker's secrets and vars for one run; `tag` names the run's KEK. */
export function freshSecrets(tag) {
  return {
    KEY_ENCRYPTION_KEYS: `${tag}:${randomBytes(32).toString("base64")}`,
    API_TOKEN_SECRET: randomBytes(32).toString("base64url"),
    ADMIN_SECRET: randomBytes(24).toString("base64url"),
    GLOBAL_API_KEYS: "[]",
    API_TOKEN_JWKS: "",
    DEFAULT_CSR_ACCESS: "granted",
    DEFAULT_CSR_QUOTA: "1000000",
  };
}
