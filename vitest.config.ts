import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";

// Fixed secrets for the test runtime only: tests mint tokens and check wraps
// with them. They guard nothing real, and .dev.vars is never read here.
export const TEST_SECRETS = {
  KEY_ENCRYPTION_KEYS: "test1:3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs=",
  API_TOKEN_SECRET: "test-api-token-secret-not-for-production-use",
  ADMIN_SECRET: "test-admin-secret",
  GLOBAL_API_KEYS: "[]",
  API_TOKEN_JWKS: "",
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
  },
});
