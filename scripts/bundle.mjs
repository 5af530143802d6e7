// Bundles the Worker exactly as `wrangler deploy` would upload it (a dry
// run: no network, no account), for `npm start` and the benchmark.
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** The project root (the directory holding wrangler.toml and node_modules). */
export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/**
 * The environment for the project's own tools: node_modules/.bin first, so
 * wrangler runs on the project's Node 22 (the `node` devDependency) even
 * when this script was started with an older `node`.
 */
export function toolEnv(extra = {}) {
  return {
    ...process.env,
    PATH: `${join(ROOT, "node_modules", ".bin")}${delimiter}${process.env.PATH ?? ""}`,
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_LOG: "error",
    ...extra,
  };
}

/**
 * Runs `wrangler deploy --dry-run --outdir outDir` on `config` (default: the
 * project's wrangler.toml). Returns the path of the bundled entry module;
 * throws with wrangler's own message when it cannot bundle.
 */
export async function bundle(outDir, { config } = {}) {
  const args = ["deploy", "--dry-run", "--outdir", outDir];
  if (config) args.push("--config", config);
  try {
    await promisify(execFile)(join(ROOT, "node_modules", ".bin", "wrangler"), args, {
      cwd: ROOT,
      env: toolEnv(),
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (error) {
    throw new Error(`wrangler could not bundle ${config ?? "the Worker"}:\n${String(error.stderr || error.message).slice(-3000)}`);
  }
  // wrangler names the bundle after the entry point (src/index.ts -> index.js);
  // anything else (wasm, text modules) would need listing in the config.
  const modules = readdirSync(outDir).filter((f) => !f.endsWith(".map") && f !== "README.md");
  if (modules.length !== 1 || !modules[0].endsWith(".js")) {
    throw new Error(`expected one bundled ES module in ${outDir}, found ${modules.join(", ") || "none"}`);
  }
  return join(outDir, modules[0]);
}
