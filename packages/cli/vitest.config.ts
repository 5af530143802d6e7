import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The shared flag parser's tests: plain Node.
export default defineConfig({
  test: {
    name: "cli",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["test/**/*.test.ts"],
    environment: "node",
    retry: 0,
  },
});
