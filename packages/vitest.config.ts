import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Every package's unit tests in one run (npm test runs this between the
// workerd suite and the e2e suite); each package keeps its own config.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("..", import.meta.url)),
    projects: ["packages/*/vitest.config.ts"],
  },
});
