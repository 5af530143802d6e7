// @ts-check
// Builds the edge agent: src/main.ts bundled by esbuild, jose and the
// shared flag parser included, into dist/edge.mjs, one self-contained file
// for plain Node 20 or later (the file an edge host runs). Rebuilt only when
// an input changed: dist/build.json records the SHA-256 of every source file
// the last bundle read (from esbuild's metafile), of the lockfile (the
// versions of jose and esbuild) and of this script.
//
//   node packages/edge-agent/build.mjs [--force] [--prepare]
//
// npm run build:edge runs it; npm install and npm ci run it as "prepare"
// (--prepare: an install without esbuild, --omit=dev, is not failed for it;
// the launcher then says what is missing).
//
// Plain JavaScript, so the launcher (scripts/edge.mjs) runs on Node 20 too.
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root: esbuild's working directory, and what input paths are relative to. */
export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const HERE = join(ROOT, "packages", "edge-agent");
export const DIST_DIR = join(HERE, "dist");
/** The built program. */
export const EDGE_BIN = join(DIST_DIR, "edge.mjs");
const MANIFEST = join(DIST_DIR, "build.json");
const ENTRY = join(HERE, "src", "main.ts");
// Bump when the manifest or the build's options change meaning.
const FORMAT = 1;

/** @param {string} path */
const digest = (path) => {
  try {
    return createHash("sha256").update(readFileSync(path)).digest("hex");
  } catch {
    return null;
  }
};

/** The inputs every build depends on besides the sources: the lockfile and this script. */
const fixedInputs = () => ["package-lock.json", relative(ROOT, fileURLToPath(import.meta.url))];

/**
 * @typedef {{ format: number, inputs: Record<string, string>, builtAt: string }} Manifest
 */

/**
 * Whether dist/edge.mjs was built from the sources as they are now.
 * @returns {boolean}
 */
export function isCurrent() {
  /** @type {Manifest} */
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(MANIFEST, "utf8"));
  } catch {
    return false;
  }
  if (manifest.format !== FORMAT || !existsSync(EDGE_BIN)) return false;
  return Object.entries(manifest.inputs).every(([path, hash]) => digest(join(ROOT, path)) === hash);
}

/**
 * Bundles the agent into dist/edge.mjs: written beside it and renamed into
 * place, then the manifest, so a reader never sees half of either, and a
 * manifest never vouches for an older bundle.
 * @returns {Promise<{ bin: string, seconds: number }>}
 */
export async function buildEdge() {
  const started = Date.now();
  const { build } = await import("esbuild");
  mkdirSync(DIST_DIR, { recursive: true });
  const tmp = `${EDGE_BIN}.tmp-${process.pid}`;
  try {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: [ENTRY],
      outfile: tmp,
      bundle: true,
      platform: "node",
      target: "node20",
      format: "esm",
      banner: { js: "#!/usr/bin/env node" },
      metafile: true,
      logLevel: "silent",
      legalComments: "eof",
    });
    /** @type {Record<string, string>} */
    const inputs = {};
    const sources = Object.keys(result.metafile.inputs).filter((path) => !path.split("/").includes("node_modules"));
    for (const path of [...sources, ...fixedInputs()].sort()) inputs[path] = digest(join(ROOT, path)) ?? "missing";
    chmodSync(tmp, 0o755);
    renameSync(tmp, EDGE_BIN);
    /** @type {Manifest} */
    const manifest = { format: FORMAT, inputs, builtAt: new Date().toISOString() };
    writeFileSync(`${MANIFEST}.tmp-${process.pid}`, `${JSON.stringify(manifest, null, 2)}\n`);
    renameSync(`${MANIFEST}.tmp-${process.pid}`, MANIFEST);
  } finally {
    rmSync(tmp, { force: true });
  }
  return { bin: EDGE_BIN, seconds: (Date.now() - started) / 1000 };
}

/**
 * The agent's bin, built first when it is missing or its sources changed.
 * @param {{ force?: boolean }} [options]
 * @returns {Promise<{ bin: string, built: boolean, seconds: number }>}
 */
export async function ensureEdgeBuild({ force = false } = {}) {
  if (!force && isCurrent()) return { bin: EDGE_BIN, built: false, seconds: 0 };
  return { ...(await buildEdge()), built: true };
}

/** Whether esbuild can be loaded from here. */
async function haveEsbuild() {
  try {
    await import("esbuild");
    return true;
  } catch {
    return false;
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--prepare") && !(await haveEsbuild())) {
    process.stderr.write("build:edge: esbuild is not installed (npm install --omit=dev?): packages/edge-agent/dist/edge.mjs not built\n");
    process.exit(0);
  }
  ensureEdgeBuild({ force: process.argv.includes("--force") })
    .then((b) => {
      const where = relative(process.cwd(), b.bin);
      process.stdout.write(b.built ? `built ${where} in ${Math.round(b.seconds * 1000)} ms\n` : `${where} is up to date\n`);
    })
    .catch((/** @type {unknown} */ error) => {
      process.stderr.write(`build:edge: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    });
}
