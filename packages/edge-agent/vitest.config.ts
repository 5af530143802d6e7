import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The edge agent's unit tests: plain Node, a temporary directory per test,
// a local HTTP server playing the service, real crypto. The global setup
// builds dist/edge.mjs (as npm run edge would) for the tests of the bin.
export default defineConfig({
  test: {
    name: "edge-agent",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["test/**/*.test.ts"],
    environment: "node",
    globalSetup: ["test/global-setup.ts"],
    retry: 0,
  },
});
