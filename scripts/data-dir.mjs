// The data directory's layout, and who is using it. Durable Object storage
// is laid out as Miniflare lays it out under `wrangler dev --persist-to DIR`
// (DIR/v3/do/<worker>-<Class>/<object id>.sqlite), so a directory written by
// wrangler dev, or by `npm start` before it ran workerd directly, is served
// as it is.
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { ROOT } from "./bundle.mjs";

/** `npm start`'s data directory when none is given. */
export const DEFAULT_DATA_DIR = join(ROOT, "data");

/** Where `wrangler dev` (and `npm start` before it ran workerd directly) kept its state by default. */
export const LEGACY_STATE_DIR = join(ROOT, ".wrangler", "state");

/** The Durable Object storage root inside a data (or wrangler persist) directory. */
export function storageDir(dataDir) {
  return join(dataDir, "v3", "do");
}

/**
 * Every Durable Object database file under `dataDir`, as paths relative to
 * it (`v3/do/<namespace>/<id>.sqlite`, and each namespace's alarm database
 * `metadata.sqlite`). Throws on files this tooling does not know how to copy
 * consistently (facet indexes): better no backup than a silently partial one.
 */
export function listDatabases(dataDir) {
  const root = storageDir(dataDir);
  if (!existsSync(root)) return [];
  const found = [];
  for (const namespace of readdirSync(root, { withFileTypes: true })) {
    if (!namespace.isDirectory()) continue;
    for (const file of readdirSync(join(root, namespace.name), { withFileTypes: true })) {
      const path = join(root, namespace.name, file.name);
      if (/\.sqlite-(?:wal|shm|journal)$/.test(file.name)) continue; // parts of a database, read through SQLite
      if (file.isFile() && file.name.endsWith(".sqlite")) found.push(relative(dataDir, path));
      else throw new Error(`unexpected file in Durable Object storage: ${path}`);
    }
  }
  return found.sort();
}

const PID_FILE = "server.pid";

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

// On Linux, a pid that was reused by some other program is not ours.
function looksLikeServer(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("start.mjs");
  } catch {
    return existsSync("/proc") ? false : true;
  }
}

/** The pid of the `npm start` serving `dataDir`, or null when none is. */
export function serverUsing(dataDir) {
  try {
    const pid = Number(readFileSync(join(dataDir, PID_FILE), "utf8").trim());
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) && looksLikeServer(pid) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Marks `dataDir` as served by this process (DIR/server.pid); throws when
 * another live server holds it: two runtimes on one directory would each
 * think they own the same Durable Objects. Returns the release function.
 */
export function claimDataDir(dataDir) {
  const other = serverUsing(dataDir);
  if (other !== null) throw new Error(`${dataDir} is in use by another npm start (pid ${other})`);
  const file = join(dataDir, PID_FILE);
  writeFileSync(file, `${process.pid}\n`, { mode: 0o600 });
  return () => {
    try {
      if (readFileSync(file, "utf8").trim() === String(process.pid)) rmSync(file);
    } catch {
      // Already gone.
    }
  };
}

/** Whether `dataDir` holds any Durable Object database. */
export function hasDatabases(dataDir) {
  return existsSync(storageDir(dataDir)) && listDatabases(dataDir).length > 0;
}

/** Resolves a user-given directory against the working directory. */
export function absolute(dir) {
  return resolve(process.cwd(), dir);
}
