// What every bench run sends and runs with: one create body (body.ts, which
// the slice Worker imports too), and fresh secrets per run (never printed,
// never written outside the run's temp dir).
import { randomBytes } from "node:crypto";

export { BODY } from "./body.ts";

/** The Worker's secrets and the vars the bench sets, bound as text. */
export interface Secrets {
  KEY_ENCRYPTION_KEYS: string;
  API_TOKEN_SECRET: string;
  ADMIN_SECRET: string;
  GLOBAL_API_KEYS: string;
  API_TOKEN_JWKS: string;
  DEFAULT_CSR_ACCESS: string;
  DEFAULT_CSR_QUOTA: string;
}

/** The Worker's secrets and vars for one run; `tag` names the run's KEK. */
export function freshSecrets(tag: string): Secrets {
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
