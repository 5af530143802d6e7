// Makes sure .dev.vars (git-ignored) holds every secret the Worker needs
// locally, generating fresh random ones for any that are missing. Existing
// values are never changed, so local data stays readable across restarts.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const DEV_VARS = fileURLToPath(new URL("../.dev.vars", import.meta.url));

const generators = {
  // id:base64(32 bytes); the first entry is the key new records are wrapped with.
  KEY_ENCRYPTION_KEYS: () => `dev1:${randomBytes(32).toString("base64")}`,
  // HS256 signing secret for API tokens.
  API_TOKEN_SECRET: () => randomBytes(32).toString("base64url"),
  // Bearer secret for the operator's /admin endpoints.
  ADMIN_SECRET: () => randomBytes(24).toString("base64url"),
  // Registered global API keys (hashes only), JSON.
  GLOBAL_API_KEYS: () => "[]",
};

/** The Worker's secrets (never in wrangler.toml): npm start takes each from the environment, else from .dev.vars. */
export const SECRET_NAMES = Object.keys(generators);

/**
 * Secrets the Worker reads when they are set and never makes up: the ACME
 * certificate authorities (JSON with their EAB credentials; docs/acme.md).
 * npm start takes them from the environment, else from .dev.vars, else
 * binds an empty string (managed certificates then answer 1453).
 */
export const OPTIONAL_SECRET_NAMES = ["ACME_DIRECTORIES"];

/** Parses the dotenv subset wrangler reads: KEY=value, KEY='value', KEY="value". */
export function parseDevVars(text) {
  const vars = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)\s*$/.exec(line);
    if (!m) continue;
    let value = m[2];
    if (/^'.*'$/.test(value) || /^".*"$/.test(value)) value = value.slice(1, -1);
    vars[m[1]] = value;
  }
  return vars;
}

/** Writes vars back, single-quoted so JSON values survive. */
export function writeDevVars(vars) {
  const body = Object.entries(vars)
    .map(([k, v]) => `${k}='${v}'`)
    .join("\n");
  writeFileSync(DEV_VARS, `# Local development secrets: never commit this file.\n${body}\n`, { mode: 0o600 });
}

/** The secrets in .dev.vars, or none when it does not exist: reading never creates it. */
export function readDevVars() {
  return existsSync(DEV_VARS) ? parseDevVars(readFileSync(DEV_VARS, "utf8")) : {};
}

/**
 * Returns the local secrets, creating or completing .dev.vars first (for
 * `npm start` on a fresh checkout). With `newKek: false` a missing
 * KEY_ENCRYPTION_KEYS is left missing: a data directory that holds data was
 * wrapped under a key that only the operator can give back, and a new one
 * would make every stored key unusable (the caller refuses to start).
 */
export function ensureDevVars({ newKek = true, only = Object.keys(generators) } = {}) {
  const vars = readDevVars();
  let changed = false;
  for (const [name, make] of Object.entries(generators)) {
    // Only what the caller lacks everywhere: a secret the environment supplies is never generated beside it.
    if (!only.includes(name)) continue;
    if (!vars[name] && (newKek || name !== "KEY_ENCRYPTION_KEYS")) {
      vars[name] = make();
      changed = true;
    }
  }
  if (changed) writeDevVars(vars);
  return vars;
}
