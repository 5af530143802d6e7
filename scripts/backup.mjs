// npm run backup -- [--data-dir ./data] --out FILE [--force]
//   A consistent copy of every Durable Object database under the data
//   directory, taken while the server runs (SQLite's online backup, one read
//   transaction per database: scripts/snapshot.mjs), in one archive file.
//   The archive holds private keys only as their wraps: it is useless
//   without KEY_ENCRYPTION_KEYS, which must be kept somewhere else.
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname } from "node:path";
import { parseFlags, usageError } from "./cli.mjs";
import { DEFAULT_DATA_DIR, absolute, listDatabases, serverUsing, storageDir } from "./data-dir.mjs";
import { writeArchive } from "./snapshot.mjs";

const USAGE = "usage: npm run backup -- [--data-dir ./data] --out FILE [--force]";
const usage = (message) => usageError("backup", USAGE, message);

const flags = parseFlags(process.argv.slice(2), { "data-dir": { type: "string" }, out: { type: "string" }, force: { type: "boolean" } }, usage);
if (!flags.out) usage("--out FILE is required");
const dataDir = absolute(flags["data-dir"] ?? DEFAULT_DATA_DIR);
const out = absolute(flags.out);
if (!existsSync(storageDir(dataDir))) usage(`${dataDir} holds no Durable Object storage (no v3/do inside)`);
if (existsSync(out) && !flags.force) usage(`${out} exists; --force replaces it`);
// The archive's directory, checked first: its real cause, not a failure halfway through the copies.
const outDir = dirname(out);
if (!existsSync(outDir)) usage(`${outDir} does not exist: create it first (install -d -m 0700 ${outDir}, owned by the user who runs the backups)`);
try {
  accessSync(outDir, constants.W_OK | constants.X_OK);
} catch {
  process.stderr.write(`backup: permission denied: ${userInfo().username} cannot write to ${outDir} (owned by uid ${statSync(outDir).uid}, mode ${(statSync(outDir).mode & 0o777).toString(8)})\n`);
  process.exit(1);
}

const started = Date.now();
try {
  const paths = listDatabases(dataDir);
  const files = await writeArchive({
    dataDir,
    paths,
    out,
    meta: { source: dataDir, server_running: serverUsing(dataDir) !== null ? "yes" : "no" },
  });
  const bytes = files.reduce((n, f) => n + f.size, 0);
  process.stdout.write(
    `backup: ${files.length} databases, ${(bytes / 1e6).toFixed(1)} MB, in ${((Date.now() - started) / 1000).toFixed(1)} s -> ${out}\n` +
      "It holds wrapped keys only: keep it apart from KEY_ENCRYPTION_KEYS, without which it cannot be used.\n",
  );
} catch (error) {
  process.stderr.write(`backup: failed: ${error.message}\n`);
  process.exit(1);
}
