// `npm start`: serves the API with the workerd binary directly. Builds
// dist/workerd/ when the sources changed (scripts/build.mjs), takes secrets
// from the environment or else .dev.vars, then runs `workerd serve` with
// Durable Object storage under the data directory. This process stays
// beside workerd only to pass signals on and bound the drain; requests go
// straight to workerd, and so do its stdout and stderr. A guard shell
// beside workerd stops it if this process dies (even of SIGKILL). Outbound `fetch`
// (an ACME CA) is workerd's default unless --ca-file or
// --allow-private-outbound ask for more: then workerd runs a config written
// for this run (the built one with an "internet" service of its own).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, isIP } from "node:net";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { exampleRequest } from "./banner.mjs";
import { ROOT } from "./bundle.mjs";
import { ensureBuild } from "./build.mjs";
import { parseFlags as parseStrict, usageError } from "./cli.mjs";
import { DEFAULT_DATA_DIR, LEGACY_STATE_DIR, absolute, claimDataDir, hasDatabases, listDatabases, storageDir } from "./data-dir.mjs";
import { holdsData, needsScan, registryRecord, scanData, verifyKeks } from "./data-keys.mjs";
import { DEV_VARS, OPTIONAL_SECRET_NAMES, SECRET_NAMES, ensureDevVars, readDevVars } from "./dev-vars.mjs";
import { snapshotDatabase } from "./snapshot.mjs";
import { starterOf, watchStarter } from "./starter-watch.mjs";
import { SOCKET, STORAGE_SERVICE, pemCertificates, serverConfig } from "./workerd-config.mjs";

const USAGE = `usage: npm start -- [--port 8787] [--host 127.0.0.1] [--data-dir ./data] [--log-level info]
                    [--drain-timeout 10] [--ca-file FILE]... [--allow-private-outbound]
  --port N             TCP port (1-65535), default 8787
  --host ADDR          address to listen on (an IP address or host name), default 127.0.0.1
  --data-dir DIR       Durable Object storage, default ./data (--persist-to DIR is the same flag)
  --log-level LEVEL    debug, info (a JSON line per request on stdout), warn, error; default from wrangler.toml
  --drain-timeout S    on SIGTERM/SIGINT, seconds in-flight requests get to finish (0-3600), default 10
  --ca-file FILE       PEM file of one or more CA certificates the Worker's outbound HTTPS (an ACME CA)
                       trusts besides the system's; may be given more than once
  --allow-private-outbound
                       let the Worker's fetch reach loopback and private addresses (an ACME CA on this
                       host or its network); off by default, public addresses are always allowed
environment (adds to the flags):
  CA_FILE              more --ca-file paths, separated by ':' or ','
  ALLOW_PRIVATE_OUTBOUND
                       1, true, yes or on: as --allow-private-outbound (0, false, no, off or empty: not)`;

const LEVELS = ["debug", "info", "warn", "error"];

// The guard of workerd ($0 its pid, $1 the drain bound in 0.2 s steps, $2
// server.pid, $3 the launcher's pid): waits for its stdin to close.
const GUARD = `trap "" INT HUP TERM
read -r _
alive() { kill -0 "$0" 2>/dev/null && ! grep -q "^State:.Z" "/proc/$0/status" 2>/dev/null; }
kill -TERM "$0" 2>/dev/null || exit 0
i=0
while [ "$i" -lt "$1" ] && alive; do sleep 0.2; i=$((i + 1)); done
kill -KILL "$0" 2>/dev/null
[ "$(head -n 1 "$2" 2>/dev/null)" = "$3" ] && rm -f "$2"
exit 0`;
const WORKERD_VERSION = JSON.parse(readFileSync(join(ROOT, "node_modules", "workerd", "package.json"), "utf8")).version;

const usage = (message) => usageError("start", USAGE, message);

// Flags of the wrangler dev that `npm start` used to run, with what to use now.
const FORMER = { ip: "--host", "inspector-port": "npm run dev", "live-reload": "npm run dev", "env-file": "the environment or .dev.vars", local: "nothing (npm start is always local)" };

function parseFlags(argv) {
  const parsed = parseStrict(
    argv,
    {
      port: { type: "string" },
      host: { type: "string" },
      "data-dir": { type: "string" },
      "persist-to": { type: "string" },
      "log-level": { type: "string" },
      "drain-timeout": { type: "string" },
      "ca-file": { type: "string", multiple: true },
      "allow-private-outbound": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    usage,
    (error) => {
      const flag = /'--?([\w-]+)/.exec(error.message)?.[1];
      if (flag && FORMER[flag]) usage(`--${flag} is not a flag of npm start (it serves with workerd, not wrangler dev): use ${FORMER[flag]}`);
    },
  );
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const port = parsed.port ?? "8787";
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) usage(`--port must be an integer from 1 to 65535, not ${JSON.stringify(port)}`);
  const host = parsed.host ?? "127.0.0.1";
  if (!isIP(host) && !/^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(host)) {
    usage(`--host must be an IP address or a host name, not ${JSON.stringify(host)}`);
  }
  const dataDir = parsed["data-dir"] ?? parsed["persist-to"];
  if (parsed["data-dir"] !== undefined && parsed["persist-to"] !== undefined && absolute(parsed["data-dir"]) !== absolute(parsed["persist-to"])) {
    usage("--persist-to is another name for --data-dir; give one of them");
  }
  if (dataDir !== undefined && dataDir.trim() === "") usage("--data-dir needs a directory");
  const logLevel = parsed["log-level"];
  if (logLevel !== undefined && !LEVELS.includes(logLevel)) usage(`--log-level must be one of ${LEVELS.join(", ")}, not ${JSON.stringify(logLevel)}`);
  const drain = parsed["drain-timeout"] ?? "10";
  if (!/^\d+(?:\.\d+)?$/.test(drain) || Number(drain) > 3600) usage(`--drain-timeout must be seconds from 0 to 3600, not ${JSON.stringify(drain)}`);
  const outbound = outboundFlags(parsed["ca-file"] ?? [], parsed["allow-private-outbound"] === true, process.env);
  return { port: Number(port), host, dataDir: dataDir === undefined ? null : absolute(dataDir), logLevel, drainMs: Number(drain) * 1000, outbound };
}

const YES = ["1", "true", "yes", "on"];
const NO = ["", "0", "false", "no", "off"];

/**
 * What outbound `fetch` may do beyond workerd's default (public addresses,
 * the system's roots), from the flags and the environment, which add up:
 * --ca-file and CA_FILE name files whose every PEM certificate is trusted
 * (each file read, each certificate parsed, here, before anything else
 * runs), --allow-private-outbound or ALLOW_PRIVATE_OUTBOUND opens private
 * and loopback addresses. Null when neither asks for anything. A file that
 * cannot be read or holds no certificate is a usage error.
 */
function outboundFlags(caFlags, privateFlag, env) {
  const toggle = (env.ALLOW_PRIVATE_OUTBOUND ?? "").trim().toLowerCase();
  if (!YES.includes(toggle) && !NO.includes(toggle)) {
    usage(`ALLOW_PRIVATE_OUTBOUND must be 1, true, yes or on (allowed) or 0, false, no, off or empty (not), not ${JSON.stringify(env.ALLOW_PRIVATE_OUTBOUND)}`);
  }
  const named = [
    ...caFlags.map((path) => ({ path, source: "--ca-file" })),
    ...(env.CA_FILE ?? "")
      .split(/[:,]/)
      .map((path) => path.trim())
      .filter(Boolean)
      .map((path) => ({ path, source: "CA_FILE" })),
  ];
  const files = [];
  const certificates = new Map(); // by SHA-256 fingerprint: a root named twice is one entry
  for (const { path, source } of named) {
    if (path.trim() === "") usage(`${source} needs a file`);
    const file = absolute(path);
    let text;
    try {
      if (!statSync(file).isFile()) usage(`${source} ${path} is not a file`);
      text = readFileSync(file, "utf8");
    } catch (error) {
      usage(`${source} ${path} cannot be read: ${error.code === "ENOENT" ? "no such file" : (error.code ?? error.message)}`);
    }
    let found;
    try {
      found = pemCertificates(text);
    } catch (error) {
      usage(`${source} ${path}: ${error.message}`);
    }
    if (found.length === 0) {
      const key = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) ? ", only a private key: give the CA's certificate" : "";
      usage(`${source} ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)${key}`);
    }
    files.push(file);
    for (const cert of found) certificates.set(cert.fingerprint256, { cert, file });
  }
  const allowPrivate = privateFlag || YES.includes(toggle);
  if (!allowPrivate && certificates.size === 0) return null;
  return { allowPrivate, files: [...new Set(files)], certificates: [...certificates.values()] };
}


const starter = starterOf();
const flags = parseFlags(process.argv.slice(2));
let logLevel = flags.logLevel ?? "info";
const enabled = (level) => level === "error" || LEVELS.indexOf(level) >= LEVELS.indexOf(logLevel);

/** One JSON line: info and below on stdout, warn and error on stderr (the Worker's own split). */
function log(level, event, fields = {}) {
  if (!enabled(level)) return;
  const line = `${JSON.stringify({ level, event, ...fields })}\n`;
  (level === "warn" || level === "error" ? process.stderr : process.stdout).write(line);
}

function fatal(message, code = 1) {
  log("error", "start_failed", { message });
  process.exit(code);
}

/**
 * Copies the Durable Object databases of an earlier version's default state
 * (.wrangler/state, where `npm start` ran wrangler dev) into a new data
 * directory, through SQLite's online backup, leaving the originals as they
 * are. Only for the default data directory, and only when it does not exist yet.
 */
async function importLegacyState(dataDir) {
  const paths = listDatabases(LEGACY_STATE_DIR);
  const staging = `${dataDir}.import-${process.pid}`;
  mkdirSync(staging, { recursive: true, mode: 0o700 });
  for (const path of paths) {
    mkdirSync(join(staging, path, ".."), { recursive: true, mode: 0o700 });
    await snapshotDatabase(join(LEGACY_STATE_DIR, path), join(staging, path));
  }
  renameSync(staging, dataDir);
  log("info", "imported_state", { from: LEGACY_STATE_DIR, to: dataDir, databases: paths.length });
}

/**
 * Whether the address can be listened on, asked before workerd is started:
 * its own report of a port in use is a fatal exception with a stack of
 * addresses. (The port is free again when this returns; a race with another
 * program remains, and workerd's report covers it.)
 */
function checkAddress(host, port) {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", (error) => {
      const why = { EADDRINUSE: "is already in use", EACCES: "needs more privileges (ports below 1024: root or CAP_NET_BIND_SERVICE)", EADDRNOTAVAIL: "is not an address of this machine" };
      resolve(`cannot listen on ${host}:${port}: it ${why[error.code] ?? `fails (${error.code})`}`);
    });
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}

/** An address to reach our own server on from this host. */
function loopback(host) {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return isIP(host) === 6 ? `[${host}]` : host;
}

/**
 * Tells the deployment registry what it cannot vouch for alone (a data
 * directory from before it, or scopes it lists by name only): every scope
 * with the KEK ids its data uses, and the check values verified against the
 * data before serving, in batches, the last one marking the list complete
 * (unless some database with data has no scope name): from then on a read of
 * a scope with no data wakes no object, and a KEK is retirable only when no
 * scope's data uses it.
 */
async function importScopes(origin, adminSecret, scan, checks) {
  // An entry is about 70 bytes: 500 keep a request well under the 64 KiB body limit.
  const BATCH = 500;
  const entries = scan.scopes;
  for (let i = 0; i === 0 || i < entries.length; i += BATCH) {
    const response = await fetch(`${origin}/admin/v1/scopes/import`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminSecret}`, "content-type": "application/json" },
      body: JSON.stringify({ scopes: entries.slice(i, i + BATCH), complete: i + BATCH >= entries.length && scan.unnamed === 0, checks }),
    });
    if (!response.ok) throw new Error(`the registry answered ${response.status}${await response.text().then((t) => `: ${t.slice(0, 500)}`, () => "")}`);
  }
  if (entries.length > 0) log("info", "imported_scopes", { scopes: entries.length, verified_keks: Object.keys(checks).sort() });
  if (scan.unnamed > 0) {
    log("warn", "scopes_unnamed", { databases: scan.unnamed, message: "some tenant databases hold data but record no scope name: the registry's list stays incomplete, and no KEK is reported retirable" });
  }
}

/**
 * The config for a run with outbound options: the built one, rendered again
 * from the build's manifest with an "internet" service of its own
 * (scripts/workerd-config.mjs, outboundService), written to a private
 * temporary directory (the checkout may be read-only, and the options are
 * this run's), the module referred to where the build keeps it. workerd reads
 * it once, at start: `remove()` deletes it once workerd listens, or exits.
 */
function outboundConfig(build, outbound) {
  const now = Date.now();
  for (const { cert, file } of outbound.certificates) {
    if (Date.parse(cert.validTo) < now || Date.parse(cert.validFrom) > now) {
      log("warn", "ca_certificate_not_valid_now", {
        file,
        subject: cert.subject,
        not_before: new Date(cert.validFrom).toISOString(),
        not_after: new Date(cert.validTo).toISOString(),
        message: "a chain through it will not verify",
      });
    }
  }
  log("info", "outbound", { allow_private: outbound.allowPrivate, ca_files: outbound.files, ca_certificates: outbound.certificates.length });
  let dir = mkdtempSync(join(realpathSync(tmpdir()), "custom-csr-api-"));
  const spec = {
    name: build.name,
    compatibilityDate: build.compatibilityDate,
    compatibilityFlags: build.compatibilityFlags,
    durableObjects: build.durableObjects,
    vars: build.vars,
    secrets: build.secrets,
  };
  const text = serverConfig(spec, build.module, {
    outbound: { allowPrivate: outbound.allowPrivate, trustedCertificates: outbound.certificates.map(({ cert }) => cert.toString()) },
    modulePath: relative(dir, join(realpathSync(build.dir), build.module)),
    header: `# Written by npm start (scripts/start.mjs) for one run, with its outbound options; deleted once workerd has read it.\n`,
  });
  const config = join(dir, "config.capnp");
  writeFileSync(config, text, { mode: 0o600 });
  return {
    config,
    remove() {
      if (dir !== null) rmSync(dir, { recursive: true, force: true });
      dir = null;
    },
  };
}

async function main() {
  // 1. The build: the Worker as wrangler deploy bundles it, and workerd's config.
  const build = await ensureBuild({ onBuild: () => log("info", "building", { dir: join(ROOT, "dist", "workerd") }) }).catch((error) =>
    fatal(
      ["EACCES", "EPERM", "EROFS"].includes(error.code)
        ? `dist/workerd is out of date and cannot be rebuilt here (${error.code}): run \`npm run build\` where the checkout is writable`
        : `the build failed: ${error.message}`,
    ),
  );
  if (build.built) log("info", "built", { seconds: build.seconds });
  logLevel = flags.logLevel ?? [process.env.LOG_LEVEL, build.vars.LOG_LEVEL].find((level) => LEVELS.includes(level)) ?? "info";

  // 2. The data directory (an earlier version's default state is imported once).
  let dataDir = flags.dataDir;
  if (dataDir === null) {
    dataDir = DEFAULT_DATA_DIR;
    if (!existsSync(dataDir) && hasDatabases(LEGACY_STATE_DIR)) {
      await importLegacyState(dataDir).catch((error) => fatal(`importing ${LEGACY_STATE_DIR} failed: ${error.message}`));
    }
  }
  const holds = await holdsData(dataDir).catch((error) => fatal(`reading ${dataDir} failed: ${error.message}`));

  // 3. Secrets: the environment wins; whatever it lacks comes from .dev.vars
  // (created with fresh random values for what neither has, as `npm run dev`
  // does), except a key-encryption key for a data directory that holds data.
  // Nothing is generated when every secret is in one of the two, and never a
  // KEK the environment supplies: a later switch to .dev.vars would start
  // with another key.
  const fromEnv = build.secrets.filter((name) => process.env[name] !== undefined && process.env[name] !== "");
  const onDisk = readDevVars();
  const wanted = build.secrets.filter((name) => !fromEnv.includes(name) && !onDisk[name] && !OPTIONAL_SECRET_NAMES.includes(name));
  if (holds && wanted.includes("KEY_ENCRYPTION_KEYS")) {
    fatal(
      `KEY_ENCRYPTION_KEYS is neither in the environment nor in ${DEV_VARS}, and ${dataDir} holds keys wrapped under it: ` +
        "restore it from where it is kept (npm start makes a new one only for a data directory without data)",
    );
  }
  const devVars = wanted.length === 0 ? onDisk : ensureDevVars({ newKek: wanted.includes("KEY_ENCRYPTION_KEYS"), only: wanted });
  // An optional secret neither has (ACME_DIRECTORIES) is bound empty: the Worker reads that as unset.
  const secrets = Object.fromEntries(build.secrets.map((name) => [name, fromEnv.includes(name) ? process.env[name] : (devVars[name] ?? "")]));
  for (const name of SECRET_NAMES) if (secrets[name] === undefined) fatal(`secret ${name} is neither in the environment nor in ${DEV_VARS}`);

  // The KEKs must be the ones the data was wrapped under (their check
  // values, recorded by the deployment registry and the data; for data from
  // before check values, a trial unwrap of its wraps): a lost or replaced
  // KEK stops the start here, naming it, before anything is served or
  // wrapped. While the registry cannot vouch for every scope, the data is
  // read, and what it says is sent to the registry once workerd listens.
  const record = await registryRecord(dataDir, build.name).catch((error) => fatal(`reading ${dataDir}'s deployment registry failed: ${error.message}`));
  const scan = needsScan(record, secrets.KEY_ENCRYPTION_KEYS)
    ? await scanData(dataDir, build.name).catch((error) => fatal(`reading ${dataDir}'s tenant databases failed: ${error.message}`))
    : null;
  const { problems, checks } = verifyKeks(record, scan, secrets.KEY_ENCRYPTION_KEYS);
  if (problems.length > 0) fatal(problems.join("; "));

  const unusable = await checkAddress(flags.host, flags.port);
  if (unusable) fatal(unusable);
  mkdirSync(storageDir(dataDir), { recursive: true, mode: 0o700 });
  let claim;
  try {
    claim = claimDataDir(dataDir);
  } catch (error) {
    fatal(error.message);
  }

  // 4. workerd. Vars (from wrangler.toml, as built, each overridden by an
  // environment variable of its name: ACME_DEFAULT_CA=… npm start) and
  // secrets reach the Worker through its fromEnvironment bindings; nothing is
  // written to disk.
  const vars = Object.fromEntries(Object.entries(build.vars).map(([name, value]) => [name, process.env[name] ?? value]));
  const env = { ...process.env, ...vars, ...secrets, LOG_LEVEL: logLevel };
  const run = flags.outbound ? outboundConfig(build, flags.outbound) : null;
  const address = isIP(flags.host) === 6 ? `[${flags.host}]:${flags.port}` : `${flags.host}:${flags.port}`;
  const workerd = join(ROOT, "node_modules", "workerd", "bin", "workerd");
  const args = [
    "serve",
    run?.config ?? join(build.dir, build.config),
    `--socket-addr=${SOCKET}=${address}`,
    `--directory-path=${STORAGE_SERVICE}=${storageDir(dataDir)}`,
    "--control-fd=3",
  ];
  // workerd drains on SIGTERM but dies on SIGINT and SIGHUP. It shares our
  // process group (so a kill of the group, or systemd's, reaches it too),
  // where a terminal's Ctrl-C or hang-up would reach it as well: it is
  // started with both ignored (an ignored signal stays ignored across exec,
  // POSIX exec), and hears of them from us, as SIGTERM.
  const child = spawn("/bin/sh", ["-c", 'trap "" INT HUP; exec "$0" "$@"', workerd, ...args], {
    env,
    stdio: ["ignore", "inherit", "inherit", "pipe"],
  });
  // The directory is workerd's as long as it runs.
  if (child.pid !== undefined) claim.runtime(child.pid);
  // workerd never outlives this process: it does not exit when its control
  // fd closes, so a guard (a shell ignoring the signals a stop sends the
  // group) reads a pipe from us, and when it closes (this process ended,
  // however, even by SIGKILL) drains workerd with SIGTERM, kills it after
  // --drain-timeout, and removes server.pid if it still names us. On a
  // normal exit we kill the guard first.
  const guard =
    child.pid === undefined
      ? null
      : spawn("/bin/sh", ["-c", GUARD, String(child.pid), String(Math.ceil(flags.drainMs / 200)), join(dataDir, "server.pid"), String(process.pid)], {
          stdio: ["pipe", "ignore", "ignore"],
        });

  let stopping = null;
  let forced = false;
  // A repeated signal changes nothing: under `npm start` and systemd the same
  // stop reaches this process more than once (from npm, and from the group).
  // `cause` is a signal's name, or why the launcher stops by itself (watchStarter).
  const stop = (cause) => {
    if (stopping) return;
    stopping = cause;
    log("info", "stopping", { ...(cause.startsWith("SIG") ? { signal: cause } : { reason: cause }), drain_timeout_s: flags.drainMs / 1000 });
    child.kill("SIGTERM");
    setTimeout(() => {
      forced = true;
      log("error", "drain_timeout", { message: `in-flight requests did not finish within ${flags.drainMs / 1000} s; workerd killed` });
      child.kill("SIGKILL");
    }, flags.drainMs).unref();
  };
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"]) process.on(signal, () => stop(signal));
  // npm started in the background and sent SIGTERM or SIGINT at its own pid
  // may end, or hold the signal, without passing it on.
  watchStarter(starter, stop);

  // workerd reports each socket once it listens (--control-fd).
  let control = "";
  child.stdio[3].on("data", (chunk) => {
    control += chunk;
    for (let nl; (nl = control.indexOf("\n")) !== -1; control = control.slice(nl + 1)) {
      let message;
      try {
        message = JSON.parse(control.slice(0, nl));
      } catch {
        continue;
      }
      if (message.event !== "listen" || message.socket !== SOCKET) continue;
      run?.remove(); // read by workerd already, once for good
      const shown = ["0.0.0.0", "::"].includes(flags.host) ? "localhost" : address.replace(/:\d+$/, "");
      const origin = `http://${shown}:${message.port}`;
      log("info", "listening", { url: origin, data_dir: dataDir, pid: child.pid, workerd: WORKERD_VERSION, compatibility_date: build.compatibilityDate });
      if (scan !== null) {
        importScopes(`http://${loopback(flags.host)}:${message.port}`, secrets.ADMIN_SECRET, scan, checks).catch((error) =>
          log("error", "scope_import_failed", { message: `listing this data directory's scopes failed (${error.message}); the next start tries again` }),
        );
      }
      // The example token only when the signing secret is the local .dev.vars
      // one: a production secret's tokens never go to a log.
      if (!fromEnv.includes("API_TOKEN_SECRET") && enabled("info")) process.stdout.write(exampleRequest(origin, secrets.API_TOKEN_SECRET));
    }
  });

  child.on("exit", (code, signal) => {
    guard?.kill("SIGKILL");
    run?.remove();
    claim.release();
    if (stopping) {
      log("info", "stopped", { clean: !forced });
      process.exit(forced ? 1 : 0);
    }
    log("error", "workerd_exited", { code, signal, message: "workerd exited on its own; see its messages above" });
    process.exit(code || 1);
  });
}

main().catch((error) => fatal(error.stack ?? String(error)));
