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
/** The command line of a live process, or null (no /proc: unknown, so "" to trust the pid alone). */
function commandLine(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return existsSync("/proc") ? null : "";
  }
}

/**
 * The pid of what serves `dataDir`, or null when nothing does: the
 * `npm start` launcher (DIR/server.pid, first line), or the workerd it
 * started (second line), which outlives a launcher killed with SIGKILL and
 * would go on serving the directory's objects.
 */
export function serverUsing(dataDir) {
  let pids;
  try {
    pids = readFileSync(join(dataDir, PID_FILE), "utf8").trim().split("\n").map(Number);
  } catch {
    return null;
  }
  const [launcher, runtime] = pids;
  const live = (pid, mark) => Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid) && commandLine(pid)?.includes(mark);
  if (live(launcher, "start.mjs")) return launcher;
  if (live(runtime, `=${storageDir(dataDir)}\0`)) return runtime;
  return null;
}

/**
 * Marks `dataDir` as served by this process (DIR/server.pid); throws when
 * another live server holds it: two runtimes on one directory would each
 * think they own the same Durable Objects. Returns `release`, and `runtime`
 * to record the workerd serving it.
 */
export function claimDataDir(dataDir) {
  const other = serverUsing(dataDir);
  if (other !== null) throw new Error(`${dataDir} is in use by another npm start (pid ${other})`);
  const file = join(dataDir, PID_FILE);
  // What is left is a stale file: replaced only by a claim that creates it
  // anew, so of two starts racing here one fails.
  rmSync(file, { force: true });
  try {
    writeFileSync(file, `${process.pid}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if (error.code === "EEXIST") throw new Error(`${dataDir} is being claimed by another npm start`);
    throw error;
  }
  return {
    runtime: (pid) => writeFileSync(file, `${process.pid}\n${pid}\n`, { mode: 0o600 }),
    release: () => {
      try {
        if (readFileSync(file, "utf8").split("\n")[0] === String(process.pid)) rmSync(file);
      } catch {
        // Already gone.
      }
    },
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
