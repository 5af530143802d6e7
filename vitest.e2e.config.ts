import { defineConfig } from "vitest/config";

// The black-box end-to-end suite: plain Node, real `npm start` servers (workerd; a smoke test of `npm run dev`),
// the official SDK, OpenSSL and pyca/cryptography. Files run one at a time
// because each starts its own server and the machine may have two cores.
export default defineConfig({
  test: {
    include: ["test/e2e/**/*.e2e.ts"],
    environment: "node",
    pool: "forks",
    fileParallelism: false,
    globalSetup: ["test/e2e/global-setup.ts"],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    teardownTimeout: 30_000,
    // A flaky pass would hide exactly the races this suite is for.
    retry: 0,
  },
});
