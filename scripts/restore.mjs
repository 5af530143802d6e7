// npm run restore -- --in FILE [--data-dir ./data] [--force]
//   Writes the databases of a backup archive (npm run backup) into a data
//   directory no server is using. Refuses a directory that already holds
//   Durable Object databases unless --force, which replaces them. Each
//   database is checked (size, SHA-256, SQLite integrity) before anything
//   already there is touched.
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { parseFlags, usageError } from "./cli.mjs";
import { DEFAULT_DATA_DIR, absolute, hasDatabases, serverUsing, storageDir } from "./data-dir.mjs";
import { extractArchive } from "./snapshot.mjs";

const USAGE = "usage: npm run restore -- --in FILE [--data-dir ./data] [--force]";
const usage = (message) => usageError("restore", USAGE, message);

const flags = parseFlags(process.argv.slice(2), { in: { type: "string" }, "data-dir": { type: "string" }, force: { type: "boolean" } }, usage);
if (!flags.in) usage("--in FILE is required");
const file = absolute(flags.in);
const dataDir = absolute(flags["data-dir"] ?? DEFAULT_DATA_DIR);
if (!existsSync(file)) usage(`${file} does not exist`);
const running = serverUsing(dataDir);
if (running !== null) usage(`a server (pid ${running}) is using ${dataDir}: stop it first`);
if (hasDatabases(dataDir) && !flags.force) usage(`${dataDir} already holds Durable Object databases; --force replaces them`);

const staging = join(dataDir, `.restore-${process.pid}`);
try {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  rmSync(staging, { recursive: true, force: true });
  const { meta, files } = await extractArchive(file, staging);
  // Only now, with every database checked, is the old storage replaced.
  rmSync(storageDir(dataDir), { recursive: true, force: true });
  mkdirSync(join(dataDir, "v3"), { recursive: true, mode: 0o700 });
  if (existsSync(storageDir(staging))) renameSync(storageDir(staging), storageDir(dataDir));
  else mkdirSync(storageDir(dataDir), { mode: 0o700 });
  process.stdout.write(`restore: ${files.length} databases from the backup of ${meta.source ?? "?"} started ${meta.started_at} -> ${dataDir}\n`);
} catch (error) {
  process.stderr.write(`restore: failed, ${dataDir} is unchanged: ${error.message}\n`);
  process.exitCode = 1;
} finally {
  rmSync(staging, { recursive: true, force: true });
}
