// npm run --silent token -- [--account ID ...] [--zone ID ...] [--account-zones ID ...] [--read-only] [--ttl TTL]
//   prints one HS256 API token for `Authorization: Bearer` (default ttl one day)
// npm run --silent token -- --legacy --email EMAIL --account ID [--zone ID ...]
//   registers a global API key for EMAIL in .dev.vars (its SHA-256 only) and prints the key
// npm run --silent token -- --edge EDGE_ID [--zone ID ...] [--account-zones ACCOUNT_ID ...] [--ttl TTL]
//   prints an edge's delivery token ("SSL and Certificates Key Delivery" on the zones, claim edge_id;
//   default ttl 365 days: an edge syncs unattended for months, see EDGE_TTL below)
// TTL: whole seconds (3600 or 3600s), hours (12h) or days (30d), from 1 s to 366 days.
// The signing secret is API_TOKEN_SECRET from --secret-file FILE (an environment file with an
// API_TOKEN_SECRET= line, or the bare secret; - reads standard input), else from the environment,
// else from .dev.vars, as for `npm start`: --secret-file keeps it out of the shell's history. This tool never creates .dev.vars, nor any secret: a checkout without one
// (a production host, whose secrets live elsewhere) gets a clear error instead.
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { DEV_VARS, parseDevVars, readDevVars, writeDevVars } from "./dev-vars.mjs";
import { signToken } from "./sign-token.mjs";

const USAGE = `usage:
  npm run --silent token -- [--account ID ...] [--zone ID ...] [--account-zones ACCOUNT_ID ...] [--read-only] [--ttl TTL]
  npm run --silent token -- --legacy --email EMAIL --account ID [--zone ID ...]
  npm run --silent token -- --edge EDGE_ID [--zone ID ...] [--account-zones ACCOUNT_ID ...] [--ttl TTL]
TTL: 3600 or 3600s (seconds), 12h (hours), 30d (days); 1 s to 366d. Default: 1d; 365d with --edge.
--secret-file FILE: the signing secret from FILE (a line API_TOKEN_SECRET=..., or the secret alone; - for
standard input) instead of the environment or .dev.vars, so it is never typed on a command line.`;

/** The default lifetime of an API token: one day (a person or a script that mints a new one as it goes). */
const API_TTL = 86_400;
/**
 * The default lifetime of an edge's delivery token: 365 days. An edge syncs
 * unattended (cron, --watch) for months, and a token that lapses stops its
 * renewals without a sound; the agent warns on stderr 30 days before expiry
 * (--token-warn) and reads --token-file at every sync, so renewing is
 * replacing that file once a year. A long lifetime costs little here: the
 * token opens no key (each is sealed to the edge's registered key), and
 * DELETE /admin/v1/edges/EDGE_ID stops it at the next request.
 */
const EDGE_TTL = 365 * 86_400;
/** The longest lifetime minted, for any token: 366 days. */
const MAX_TTL = 366 * 86_400;

const UNIT_SECONDS = { s: 1, h: 3600, d: 86_400 };

/**
 * A --ttl value in seconds: whole digits, optionally followed by s, h or d
 * (no "m": minutes or months?), from 1 s to MAX_TTL; null for anything else.
 * @param {string} text
 * @returns {number | null}
 */
function parseTtl(text) {
  const match = /^([0-9]{1,9})([shd]?)$/.exec(text);
  if (match === null) return null;
  const seconds = Number(match[1]) * UNIT_SECONDS[/** @type {"s" | "h" | "d"} */ (match[2] || "s")];
  return seconds >= 1 && seconds <= MAX_TTL ? seconds : null;
}

function usage(message) {
  process.stderr.write(`token: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const SCOPE_ID = /^[A-Za-z0-9_-]{1,32}$|^\*$/;
// As src/core/edge-id.ts: 1-64 of A-Z a-z 0-9 - _ . and not dots only.
const EDGE_ID = /^(?!\.+$)[A-Za-z0-9._-]{1,64}$/;

function parseArgs(argv) {
  const opts = { accounts: [], zones: [], accountZones: [], readOnly: false, ttl: API_TTL, ttlSet: false, legacy: false, email: null, edge: null, secretFile: null };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) usage(`${arg} needs a value`);
      return v;
    };
    if (arg === "--help" || arg === "-h") {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else if (arg === "--account") opts.accounts.push(value());
    else if (arg === "--zone") opts.zones.push(value());
    else if (arg === "--account-zones") opts.accountZones.push(value());
    else if (arg === "--read-only") opts.readOnly = true;
    else if (arg === "--ttl") {
      const ttl = parseTtl(value());
      if (ttl === null) usage(`--ttl takes 3600 or 3600s (seconds), 12h (hours) or 30d (days), from 1 s to 366d (${MAX_TTL} s)`);
      opts.ttl = ttl;
      opts.ttlSet = true;
    } else if (arg === "--legacy") opts.legacy = true;
    else if (arg === "--email") opts.email = value();
    else if (arg === "--edge") opts.edge = value();
    else if (arg === "--secret-file") opts.secretFile = value();
    else usage(`unknown argument ${arg}`);
  }
  for (const id of [...opts.accounts, ...opts.zones, ...opts.accountZones]) {
    if (!SCOPE_ID.test(id)) usage(`invalid id ${JSON.stringify(id)}: 1-32 of A-Z a-z 0-9 - _`);
  }
  if (opts.accounts.length + opts.zones.length + opts.accountZones.length === 0) usage("name at least one --account, --zone or --account-zones");
  if (opts.edge !== null) {
    if (!EDGE_ID.test(opts.edge)) usage(`invalid edge id ${JSON.stringify(opts.edge)}: 1-64 of A-Z a-z 0-9 - _ . (not dots only)`);
    if (opts.legacy) usage("--edge mints a delivery token; --legacy does not apply");
    if (opts.readOnly) usage("a delivery token grants delivery only; --read-only does not apply");
    // Keys are delivered per zone: a zone, or the zones recorded under an account (--account-zones).
    if (opts.accounts.length > 0) usage("--account does not apply to --edge: keys are delivered per zone (--zone, or --account-zones for an account's zones)");
    if (!opts.ttlSet) opts.ttl = EDGE_TTL;
  }
  if (opts.legacy) {
    if (!opts.email) usage("--legacy needs --email EMAIL");
    // No quotes or backslashes: the entry is stored in a single-quoted .dev.vars line.
    if (!/^[^\s@'"\\]+@[^\s@'"\\]+$/.test(opts.email)) usage(`invalid email ${JSON.stringify(opts.email)}: user@domain, no spaces or quotes`);
    if (opts.accounts.length === 0) usage("--legacy needs --account ID");
    if (opts.readOnly) usage("global API keys always have full rights; --read-only does not apply");
    if (opts.ttlSet) usage("global API keys do not expire; --ttl does not apply");
    if (opts.accountZones.length) usage("a global API key covers the zones recorded under its accounts already; --account-zones does not apply");
  } else if (opts.email) usage("--email goes with --legacy");
  if (opts.legacy && opts.secretFile !== null) usage("--legacy registers a key in .dev.vars and signs nothing; --secret-file does not apply");
  return opts;
}

function fail(message) {
  process.stderr.write(`token: ${message}\n`);
  process.exit(1);
}

/**
 * The secret in --secret-file: the value of its API_TOKEN_SECRET= line (an
 * environment file, as systemd's EnvironmentFile or .dev.vars), else its one
 * line as it is. A file others may read is used, with a warning.
 * @param {string} path
 * @returns {string}
 */
function secretFromFile(path) {
  let text;
  try {
    text = path === "-" ? readFileSync(0, "utf8") : readFileSync(path, "utf8");
    if (path !== "-" && (statSync(path).mode & 0o077) !== 0) process.stderr.write(`token: warning: ${path} can be read by other users (chmod 600 it)\n`);
  } catch (error) {
    fail(`cannot read --secret-file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const named = parseDevVars(text).API_TOKEN_SECRET;
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  const secret = named ?? (lines.length === 1 && !lines[0].includes("=") ? lines[0] : "");
  if (!secret) fail(`--secret-file ${path} holds no API_TOKEN_SECRET= line, nor a secret alone on one line`);
  return secret;
}

const opts = parseArgs(process.argv.slice(2));
// A server whose secret comes from the environment gets its tokens signed
// with that secret, and needs no .dev.vars for them; --secret-file wins over both.
const envSecret = opts.secretFile !== null ? secretFromFile(opts.secretFile) : process.env.API_TOKEN_SECRET;
const vars = envSecret && !opts.legacy ? { API_TOKEN_SECRET: envSecret } : readDevVars();
if (opts.legacy) {
  if (!existsSync(DEV_VARS)) {
    fail(`--legacy registers the key in ${DEV_VARS}, which does not exist here; a server whose secrets come from the environment lists its keys in GLOBAL_API_KEYS (docs/auth.md)`);
  }
  // 32 random bytes as 64 hex characters: unguessable, so a plain SHA-256 is a safe hash to store.
  const key = randomBytes(32).toString("hex");
  let keys = [];
  try {
    keys = JSON.parse(vars.GLOBAL_API_KEYS || "[]");
    if (!Array.isArray(keys)) keys = [];
  } catch {
    usage(".dev.vars has a GLOBAL_API_KEYS that is not JSON; fix or remove it");
  }
  // One key per email: registering again replaces the old key.
  keys = keys.filter((k) => String(k.email).toLowerCase() !== opts.email.toLowerCase());
  keys.push({
    email: opts.email,
    key_sha256: createHash("sha256").update(key).digest("hex"),
    accounts: opts.accounts,
    zones: opts.zones,
  });
  writeDevVars({ ...vars, GLOBAL_API_KEYS: JSON.stringify(keys) });
  process.stdout.write(`${key}\n`);
} else {
  const secret = envSecret || vars.API_TOKEN_SECRET;
  if (!secret) fail(`no API_TOKEN_SECRET: give the server's in the environment, or run this where npm start made ${DEV_VARS}`);
  process.stdout.write(`${signToken(secret, opts)}\n`);
}
