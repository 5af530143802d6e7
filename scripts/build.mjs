// `npm run build` (and, when needed, `npm start`): the Worker bundled as
// `wrangler deploy` would bundle it, and workerd's config generated from
// wrangler.toml, in dist/workerd/. Rebuilt only when an input changed.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT, bundle } from "./bundle.mjs";
import { readWorkerSpec, serverConfig } from "./workerd-config.mjs";

export const BUILD_DIR = join(ROOT, "dist", "workerd");
// 2: the manifest holds compatibilityFlags too (npm start renders its outbound config from it).
const FORMAT = 2;

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : entry.isFile() ? [path] : [];
  });
}

/**
 * A digest of everything the build reads: the Worker's sources, its config,
 * the locked dependency versions (the bundler's and the bundled libraries'),
 * and the build scripts themselves.
 */
export function inputsHash(root = ROOT) {
  const inputs = [
    ...filesUnder(join(root, "src")),
    ...["wrangler.toml", "package-lock.json", "scripts/build.mjs", "scripts/bundle.mjs", "scripts/workerd-config.mjs", "scripts/dev-vars.mjs"]
      .map((f) => join(root, f))
      .filter((f) => existsSync(f)),
  ].sort();
  const hash = createHash("sha256").update(`format ${FORMAT}\n`);
  for (const file of inputs) hash.update(`${relative(root, file)}\n${statSync(file).size}\n`).update(readFileSync(file));
  return hash.digest("hex");
}

/** The current build's manifest, or null when there is none or it is stale. */
export function currentBuild(dir = BUILD_DIR, hash = inputsHash()) {
  try {
    const manifest = JSON.parse(readFileSync(join(dir, "build.json"), "utf8"));
    return manifest.hash === hash && existsSync(join(dir, manifest.config)) ? { ...manifest, dir } : null;
  } catch {
    return null;
  }
}

/**
 * Returns the build for the current sources, building it first when it is
 * missing or stale. The build is made in a sibling directory and renamed
 * into place, so a server started meanwhile never sees half of one (a
 * running workerd has read its files already).
 */
export async function ensureBuild({ dir = BUILD_DIR, force = false, onBuild = () => {} } = {}) {
  const hash = inputsHash();
  const existing = force ? null : currentBuild(dir, hash);
  if (existing) return { ...existing, built: false };
  const started = Date.now();
  onBuild();
  mkdirSync(join(dir, ".."), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    const [module, spec] = await Promise.all([bundle(tmp), readWorkerSpec(join(ROOT, "wrangler.toml"))]);
    const config = "config.capnp";
    writeFileSync(join(tmp, config), serverConfig(spec, basename(module)));
    const manifest = {
      hash,
      config,
      module: basename(module),
      name: spec.name,
      compatibilityDate: spec.compatibilityDate,
      compatibilityFlags: spec.compatibilityFlags,
      durableObjects: spec.durableObjects,
      vars: spec.vars,
      secrets: spec.secrets,
      builtAt: new Date().toISOString(),
    };
    writeFileSync(join(tmp, "build.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    const old = `${dir}.old-${process.pid}`;
    if (existsSync(dir)) renameSync(dir, old);
    try {
      renameSync(tmp, dir);
    } catch (error) {
      // Another build finished first; it is built from the same inputs or newer ones.
      if (!currentBuild(dir, hash)) throw error;
    }
    rmSync(old, { recursive: true, force: true });
    return { ...manifest, dir, built: true, seconds: (Date.now() - started) / 1000 };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const force = process.argv.includes("--force");
  ensureBuild({ force })
    .then((b) => {
      process.stdout.write(b.built ? `built ${relative(process.cwd(), b.dir)} in ${b.seconds.toFixed(1)} s\n` : `${relative(process.cwd(), b.dir)} is up to date\n`);
    })
    .catch((error) => {
      process.stderr.write(`build: ${error.message}\n`);
      process.exit(1);
    });
}
