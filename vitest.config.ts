import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Fixed secrets for the test runtime only: tests mint tokens and check wraps
// with them. They guard nothing real, and .dev.vars is never read here.
export const TEST_SECRETS = {
  KEY_ENCRYPTION_KEYS: "test1:3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs=",
  API_TOKEN_SECRET: "test-api-token-secret-not-for-production-use",
  ADMIN_SECRET: "test-admin-secret",
  // One registered global API key: ops@customer-one.com / LEGACY_TEST_KEY in test/auth.test.ts.
  GLOBAL_API_KEYS: JSON.stringify([{"email": "ops@customer-one.com", "key_sha256": "4a173cd7acd257f2f767ab886fdd61f4c9acea76315695b1dd3592f1d2f59a4b", "accounts": ["legacyacct"], "zones": ["legacyzone"]}]),
  // No background RSA key pools in tests that do not ask for one (test/key-pool.test.ts sets sizes itself).
  DEFAULT_KEY_POOL_SIZE: "0",
  // A body that never finishes is cut off after 2 s (test/fairness.test.ts), not the deployment's 10.
  BODY_TIMEOUT_SECONDS: "2",
  API_TOKEN_JWKS: JSON.stringify({"keys": [{"kty": "EC", "x": "cnk8btffkT97dpKZUK-UMkv-4e-yLqvUF1Pi6_oXHGI", "y": "UXhqIjZlbkx76SnJ6MRUJIPTbVGnYGtxeKP4zewfZ88", "crv": "P-256", "kid": "issuer-es256", "alg": "ES256"}, {"crv": "Ed25519", "x": "QY4AYecSTJicCmFVCkaK_g1ihi17Ov7SbBXz_8_UgZk", "kty": "OKP", "kid": "issuer-ed25519"}]}),
};

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: { bindings: TEST_SECRETS },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    // Each request's JSON log line reaches the terminal only for a failing test
    // (tests that check the log capture it themselves).
    silent: "passed-only",
  },
});
