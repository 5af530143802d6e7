// What a data directory says about its key-encryption keys and its scopes,
// read by `npm start` before workerd is started (nothing else has the files
// open then): whether it holds any data (then no new KEK is ever generated
// for it), whether the configured KEKs are the ones its data was wrapped
// under (each KEK's check value, as src/pki/keyring.ts computes it), and,
// for a directory from before the deployment registry, which scopes it holds.
import { hkdfSync } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { storageDir } from "./data-dir.mjs";
import { sqlite } from "./snapshot.mjs";

const PROBE_CLASS = "ReadinessProbe";
const REGISTRY_CLASS = "DeploymentRegistry";
const TENANT_CLASS = "TenantStore";

/** The object databases of one class's namespace directory (not workerd's alarm index). */
function databasesOf(dataDir, workerName, className) {
  const dir = join(storageDir(dataDir), `${workerName}-${className}`);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite")
    .map((name) => join(dir, name));
}

/** Whether the directory holds any object's data (the readiness probe's one row does not count). */
export function holdsData(dataDir) {
  const root = storageDir(dataDir);
  if (!existsSync(root)) return false;
  return readdirSync(root, { withFileTypes: true }).some(
    (entry) => entry.isDirectory() && !entry.name.endsWith(`-${PROBE_CLASS}`) && readdirSync(join(root, entry.name)).some((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite"),
  );
}

/**
 * Each configured KEK's check value: hex of HKDF-SHA256(key, no salt, info
 * "custom-csr-kek-check:v1:<id>", 32 bytes), as src/pki/keyring.ts. Entries
 * that do not parse are left to the Worker, which refuses them (1501).
 */
export function kekChecks(secret) {
  const checks = new Map();
  for (const entry of String(secret ?? "").split(",").map((e) => e.trim()).filter(Boolean)) {
    const at = entry.indexOf(":");
    const raw = Buffer.from(entry.slice(at + 1), "base64");
    if (at < 1 || raw.length !== 32) continue;
    const id = entry.slice(0, at);
    checks.set(id, Buffer.from(hkdfSync("sha256", raw, Buffer.alloc(0), Buffer.from(`custom-csr-kek-check:v1:${id}`), 32)).toString("hex"));
    raw.fill(0);
  }
  return checks;
}

async function readOnly(path, read) {
  const { DatabaseSync } = await sqlite();
  const url = pathToFileURL(path);
  url.search = "mode=ro";
  const db = new DatabaseSync(url, { readOnly: true, timeout: 10_000 });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

const hasTable = (db, name) => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;

/**
 * The deployment registry's record: whether its list of scopes is complete,
 * and every KEK with a recorded check value and the number of scopes using
 * it. Null when the directory has no registry yet.
 */
export async function registryRecord(dataDir, workerName) {
  const [path] = databasesOf(dataDir, workerName, REGISTRY_CLASS);
  if (!path) return null;
  return readOnly(path, (db) => {
    if (!hasTable(db, "kek_checks")) return { complete: false, keks: [] };
    const complete = db.prepare("SELECT value FROM meta WHERE key = 'complete'").get()?.value === "1";
    const keks = db
      .prepare("SELECT c.kek_id, c.check_value, (SELECT count(*) FROM scope_keks s WHERE s.kek_id = c.kek_id) AS scopes FROM kek_checks c ORDER BY c.kek_id")
      .all();
    return { complete, keks };
  });
}

/**
 * What stops the configured KEKs from serving this data, one line each,
 * naming the KEK: a recorded KEK configured with another key, or one that
 * data still uses and that is not configured.
 */
export function kekProblems(record, secret) {
  const configured = kekChecks(secret);
  const problems = [];
  for (const { kek_id, check_value, scopes } of record?.keks ?? []) {
    const check = configured.get(kek_id);
    if (check !== undefined && check !== check_value) {
      problems.push(`key-encryption key ${kek_id} in KEY_ENCRYPTION_KEYS is not the key this data directory's keys were wrapped under (its check value differs): restore the original ${kek_id} entry`);
    } else if (check === undefined && scopes > 0) {
      problems.push(`key-encryption key ${kek_id} is not in KEY_ENCRYPTION_KEYS, and ${scopes} scope(s) in this data directory have keys wrapped under it: add it back`);
    }
  }
  return problems;
}

/** The scope names recorded in the tenant databases (meta `scope`), for the registry's import. */
export async function tenantScopes(dataDir, workerName) {
  const names = [];
  for (const path of databasesOf(dataDir, workerName, TENANT_CLASS)) {
    const name = await readOnly(path, (db) => (hasTable(db, "meta") ? db.prepare("SELECT value FROM meta WHERE key = 'scope'").get()?.value : undefined));
    if (typeof name === "string") names.push(name);
  }
  return names.sort();
}
