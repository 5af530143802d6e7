// `npm run dev`: wrangler dev (live reload, Miniflare) for working on the
// Worker. Completes .dev.vars, prints a working example request, then runs
// `wrangler dev` with any flags passed after `--` (e.g. --port, --persist-to).
// Its state goes to .wrangler/state unless --persist-to says otherwise.
import { spawn } from "node:child_process";
import { exampleRequest } from "./banner.mjs";
import { toolEnv } from "./bundle.mjs";
import { LEGACY_STATE_DIR, absolute } from "./data-dir.mjs";
import { holdsData } from "./data-keys.mjs";
import { DEV_VARS, SECRET_NAMES, ensureDevVars, readDevVars } from "./dev-vars.mjs";

const args = process.argv.slice(2);

/** The value of `--name VALUE` or `--name=VALUE` among the flags, or undefined. */
function flag(name) {
  const at = args.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (at === -1) return undefined;
  return args[at].includes("=") ? args[at].slice(args[at].indexOf("=") + 1) : args[at + 1];
}

function refuse(message) {
  process.stderr.write(`npm run dev: ${message}\n`);
  process.exit(1);
}

/**
 * The local secrets in .dev.vars, completed: wrangler dev reads secrets from
 * there only, never from the environment, so a secret the environment
 * supplies is neither generated in its place (a later switch would start with
 * another key) nor silently ignored; and no new key-encryption key is made
 * for state that holds data wrapped under one.
 */
async function devVars() {
  const onDisk = readDevVars();
  const ignored = SECRET_NAMES.filter((name) => process.env[name] && !onDisk[name]);
  if (ignored.length > 0) {
    const them = ignored.length === 1 ? "it" : "them";
    refuse(`${ignored.join(", ")} ${ignored.length === 1 ? "is" : "are"} in the environment, but wrangler dev reads secrets only from ${DEV_VARS}: put ${them} there, or unset ${them} to have fresh ones made`);
  }
  const stateDir = absolute(flag("persist-to") ?? LEGACY_STATE_DIR);
  const holds = await holdsData(stateDir).catch((error) => refuse(`reading ${stateDir} failed: ${error.message}`));
  if (holds && !onDisk.KEY_ENCRYPTION_KEYS) {
    refuse(
      `KEY_ENCRYPTION_KEYS is not in ${DEV_VARS}, and ${stateDir} holds keys wrapped under it: restore it from where it is kept ` +
        "(npm run dev makes a new one only for state without data)",
    );
  }
  return ensureDevVars({ newKek: !holds });
}

// With --env-file, wrangler dev reads its secrets from those files instead: .dev.vars is left alone.
const vars = flag("env-file") === undefined ? await devVars() : null;
const port = flag("port") ?? "8787";
if (vars) console.log(exampleRequest(`http://localhost:${port}`, vars.API_TOKEN_SECRET));

// Flags pass straight through; the port defaults to wrangler's own 8787.
const wranglerArgs = ["dev", ...(flag("port") === undefined ? ["--port", port] : []), ...args];
// Miniflare fetches workers.cloudflare.com/cf.json for `request.cf` at start: offline that prints a stack trace
// twice, and the API reads nothing of `request.cf`. Off unless the developer turns it on.
const child = spawn("wrangler", wranglerArgs, {
  stdio: "inherit",
  env: toolEnv({ WRANGLER_LOG: process.env.WRANGLER_LOG ?? "info", CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false" }),
});
child.on("exit", (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => child.kill(sig));
