// npm run compact -- [--data-dir ./data]
//   Rebuilds every Durable Object database of a data directory no server is
//   using with only its live rows (SQLite VACUUM with secure_delete, then the
//   write-ahead log emptied), so no deleted row's bytes (a deleted key's wrap
//   above all) are left anywhere in the directory. The server overwrites a
//   wrap before deleting it, but older copies of a page can stay in SQLite's
//   write-ahead log and free space until they are reused (README, "Private
//   keys"): this removes them now.
import { statSync } from "node:fs";
import { join } from "node:path";
import { parseFlags, usageError } from "./cli.mjs";
import { DEFAULT_DATA_DIR, absolute, listDatabases, serverUsing } from "./data-dir.mjs";
import { compactDatabase, sqlite } from "./snapshot.mjs";

const USAGE = "usage: npm run compact -- [--data-dir ./data]   (with the server stopped)";
const usage = (message) => usageError("compact", USAGE, message);

const flags = parseFlags(process.argv.slice(2), { "data-dir": { type: "string" }, help: { type: "boolean", short: "h" } }, usage);
if (flags.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const dataDir = absolute(flags["data-dir"] ?? DEFAULT_DATA_DIR);
const running = serverUsing(dataDir);
if (running !== null) usage(`a server (pid ${running}) is using ${dataDir}: stop it first`);

const sizeOf = (path) => {
  let total = 0;
  for (const suffix of ["", "-wal"]) {
    try {
      total += statSync(`${path}${suffix}`).size;
    } catch {
      // absent
    }
  }
  return total;
};

try {
  const { DatabaseSync } = await sqlite();
  let before = 0;
  let after = 0;
  const paths = listDatabases(dataDir);
  for (const path of paths) {
    const file = join(dataDir, path);
    before += sizeOf(file);
    compactDatabase(DatabaseSync, file);
    after += sizeOf(file);
  }
  process.stdout.write(`compact: ${paths.length} databases in ${dataDir}, ${before} -> ${after} bytes\n`);
} catch (error) {
  process.stderr.write(`compact: failed: ${error.message}\n`);
  process.exitCode = 1;
}
