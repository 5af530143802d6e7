// Consistent copies of live Durable Object databases, and the backup
// archive that holds them. Each database is copied with SQLite's online
// backup API (node:sqlite `backup()`), in one step: a single read
// transaction, so the copy is the database as of one commit, whatever
// workerd writes meanwhile (WAL mode: a reader never blocks the writer, and
// sees only committed transactions). A file copy of a live database and its
// -wal could tear a transaction in half; this cannot.
import { createHash } from "node:crypto";
import { accessSync, chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

/** What the archive says it is (the `archive` table's `format` row). */
export const ARCHIVE_FORMAT = "custom-csr-api backup 1";
const CHUNK = 4 * 1024 * 1024;

/** node:sqlite, with its one-time "experimental" warning kept off the operator's terminal. */
export async function sqlite() {
  const emit = process.emitWarning;
  process.emitWarning = (warning, ...rest) => (String(warning).includes("SQLite") ? undefined : emit.call(process, warning, ...rest));
  try {
    const mod = await import("node:sqlite");
    if (typeof mod.backup !== "function") throw new Error("this Node has no node:sqlite backup(); run through npm run (Node 22.16 or later)");
    return mod;
  } finally {
    process.emitWarning = emit;
  }
}

/**
 * Copies the database at `source` into a new file at `target` as of one
 * committed transaction, compacts the copy, then checks it (`PRAGMA
 * integrity_check`). Safe while workerd has the source open and writing.
 * The backup API copies whole pages, so the copy would hold whatever a
 * page's free space still held (the bytes of a deleted key's wrap, say); the
 * copy is rebuilt with VACUUM (only live rows, free space zeroed), so a
 * backup taken after a delete holds no trace of what was deleted.
 */
export async function snapshotDatabase(source, target) {
  const { DatabaseSync, backup } = await sqlite();
  // mode=rw: never create the file (an object deleted meanwhile must not
  // come back empty). A busy timeout: the backup's read transaction may
  // wait out a WAL checkpoint or recovery in workerd, never fail on it.
  const url = pathToFileURL(source);
  url.search = "mode=rw";
  const db = new DatabaseSync(url, { timeout: 10_000 });
  try {
    // rate -1: every page in one step, one read transaction (no restart when
    // the source changes, which a step-by-step backup of a busy database would do).
    await backup(db, target, { rate: -1 });
  } finally {
    db.close();
  }
  compactDatabase(DatabaseSync, target);
  integrityCheck(DatabaseSync, target, `the copy of ${source}`);
}

/**
 * Rebuilds a database no one else has open with only its live content:
 * VACUUM (with secure_delete on), then a checkpoint that empties the
 * write-ahead log. Every page of the file is rewritten or cut off, so no
 * deleted row's bytes are left in it or in its -wal.
 */
export function compactDatabase(DatabaseSync, path) {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA secure_delete = ON; VACUUM; PRAGMA wal_checkpoint(TRUNCATE);");
  } finally {
    db.close();
  }
}

// PRAGMA integrity_check on a file of our own (a copy): opened read-write so
// that closing it leaves no -wal or -shm beside it.
function integrityCheck(DatabaseSync, path, label) {
  const db = new DatabaseSync(path);
  try {
    let check;
    try {
      check = db.prepare("PRAGMA integrity_check").all().map((r) => Object.values(r)[0]);
    } catch (error) {
      // SQLite may refuse to read a damaged file at all (SQLITE_CORRUPT, SQLITE_NOTADB).
      throw new Error(`${label} fails its integrity check: ${error.message}`);
    }
    if (check.length !== 1 || check[0] !== "ok") throw new Error(`${label} fails its integrity check: ${check.slice(0, 3).join("; ")}`);
  } finally {
    db.close();
  }
}

function sha256File(path) {
  const hash = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(CHUNK);
    for (let n; (n = readSync(fd, buffer, 0, CHUNK, null)) > 0; ) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

/**
 * Writes a backup archive of `paths` (relative to `dataDir`) to `out`: an
 * SQLite file with each database's snapshot in 4 MiB chunks, its size and
 * SHA-256. Built beside `out` and renamed into place, so `out` is either the
 * whole archive or absent. Returns what was written.
 */
export async function writeArchive({ dataDir, paths, out, meta = {} }) {
  const { DatabaseSync } = await sqlite();
  const startedAt = new Date().toISOString();
  const work = `${out}.tmp-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { mode: 0o700 });
  const archivePath = join(work, "archive.sqlite");
  const archive = new DatabaseSync(archivePath);
  const files = [];
  let done = false;
  try {
    archive.exec(`
      PRAGMA journal_mode = OFF;
      CREATE TABLE archive (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER NOT NULL, sha256 TEXT NOT NULL, copied_at TEXT NOT NULL);
      CREATE TABLE chunks (path TEXT NOT NULL REFERENCES files (path), n INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (path, n));
    `);
    const putFile = archive.prepare(`INSERT INTO files (path, size, sha256, copied_at) VALUES (?, ?, ?, ?)`);
    const putChunk = archive.prepare(`INSERT INTO chunks (path, n, data) VALUES (?, ?, ?)`);
    for (const path of paths) {
      const copy = join(work, "copy.sqlite");
      rmSync(copy, { force: true });
      try {
        await snapshotDatabase(join(dataDir, path), copy);
      } catch (error) {
        // An object deleted while the backup ran is not an error.
        if (!existsSync(join(dataDir, path))) continue;
        throw error;
      }
      const copiedAt = new Date().toISOString();
      const size = statSync(copy).size;
      archive.exec("BEGIN");
      putFile.run(path, size, sha256File(copy), copiedAt);
      const fd = openSync(copy, "r");
      try {
        const buffer = Buffer.alloc(CHUNK);
        for (let n = 0, read; (read = readSync(fd, buffer, 0, CHUNK, null)) > 0; n++) putChunk.run(path, n, buffer.subarray(0, read));
      } finally {
        closeSync(fd);
      }
      archive.exec("COMMIT");
      files.push({ path, size, copiedAt });
      rmSync(copy, { force: true });
    }
    const putMeta = archive.prepare(`INSERT INTO archive (key, value) VALUES (?, ?)`);
    for (const [key, value] of Object.entries({ format: ARCHIVE_FORMAT, started_at: startedAt, finished_at: new Date().toISOString(), databases: String(files.length), ...meta })) {
      putMeta.run(key, String(value));
    }
    done = true;
  } finally {
    archive.close();
    // A failed backup leaves nothing behind (its copies hold wrapped keys).
    if (!done) rmSync(work, { recursive: true, force: true });
  }
  // Wrapped keys are still key material: owner-only, like the data directory.
  chmodSync(archivePath, 0o600);
  renameSync(archivePath, out);
  rmSync(work, { recursive: true, force: true });
  return files;
}

/** The archive's own description (`archive` table) and file list; throws when `file` is not one of ours. */
export async function readArchiveIndex(file) {
  const { DatabaseSync } = await sqlite();
  // What keeps it from being read is said as it is (a permission, a missing file), not as "not a backup".
  try {
    accessSync(file, constants.R_OK);
  } catch (error) {
    if (error.code === "ENOENT") throw new Error(`${file} does not exist`);
    if (error.code === "EACCES") {
      const { uid, mode } = statSync(file);
      throw new Error(`permission denied: ${userInfo().username} cannot read ${file} (owned by uid ${uid}, mode ${(mode & 0o777).toString(8)}); run the restore as its owner, or give this user read access`);
    }
    throw error;
  }
  let db;
  try {
    db = new DatabaseSync(file, { readOnly: true });
    const meta = Object.fromEntries(db.prepare(`SELECT key, value FROM archive`).all().map((r) => [r.key, r.value]));
    if (meta.format !== ARCHIVE_FORMAT) throw new Error(`format ${JSON.stringify(meta.format)}`);
    const files = db.prepare(`SELECT path, size, sha256, copied_at FROM files ORDER BY path`).all();
    return { meta, files };
  } catch (error) {
    throw new Error(`${file} is not a backup made by npm run backup (${error.message})`);
  } finally {
    db?.close();
  }
}

/**
 * Writes every database of the archive `file` under `dir` (same relative
 * paths, files 0600, directories 0700), checking each one's size, SHA-256
 * and SQLite integrity. Returns the file list.
 */
export async function extractArchive(file, dir) {
  const { DatabaseSync } = await sqlite();
  const { meta, files } = await readArchiveIndex(file);
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const chunks = db.prepare(`SELECT data FROM chunks WHERE path = ? ORDER BY n`);
    for (const f of files) {
      if (f.path.split(/[\\/]/).includes("..") || !/^v3\/do\/[^/]+\/[^/]+\.sqlite$/.test(f.path)) {
        throw new Error(`the archive names an unexpected path: ${JSON.stringify(f.path)}`);
      }
      const target = join(dir, f.path);
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
      const fd = openSync(target, "wx", 0o600);
      const hash = createHash("sha256");
      let size = 0;
      try {
        for (const { data } of chunks.iterate(f.path)) {
          writeSync(fd, data);
          hash.update(data);
          size += data.byteLength;
        }
      } finally {
        closeSync(fd);
      }
      if (size !== f.size || hash.digest("hex") !== f.sha256) throw new Error(`${f.path} in the archive is damaged (size or SHA-256 differs)`);
      integrityCheck(DatabaseSync, target, `${f.path} as restored`);
    }
  } finally {
    db.close();
  }
  return { meta, files };
}
