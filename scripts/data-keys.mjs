// What a data directory says about its key-encryption keys and its scopes,
// read by `npm start` (and `npm run dev`) before the runtime is started
// (nothing else has the files open then): whether it holds data that needs a
// KEK (then no new KEK is ever generated for it), whether the configured
// KEKs are the ones its data was wrapped under (each KEK's check value, as
// src/pki/keyring.ts computes it, or, for data from before check values, a
// trial unwrap of its wraps), and, while the deployment registry cannot vouch
// for every scope, which scopes there are and which KEKs each one's data uses.
import { createDecipheriv, hkdfSync } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { storageDir } from "./data-dir.mjs";
import { sqlite } from "./snapshot.mjs";

const PROBE_CLASS = "ReadinessProbe";
const REGISTRY_CLASS = "DeploymentRegistry";
const TENANT_CLASS = "TenantStore";
const EDGE_CLASS = "EdgeRegistry";
/** The edge registry's name as a holder of KEK-wrapped data (src/core/objects.ts). */
const EDGE_REGISTRY_NAME = "edge-registry";
/** Wraps tried per KEK id before it is called the wrong key (one damaged wrap is not enough). */
const TRIALS = 3;

/** The object databases of one class's namespace directory (not workerd's alarm index). */
function databasesOf(dataDir, workerName, className) {
  const dir = join(storageDir(dataDir), `${workerName}-${className}`);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => name.endsWith(".sqlite") && name !== "metadata.sqlite")
    .map((name) => join(dir, name));
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
const hasColumn = (db, table, column) => hasTable(db, table) && db.prepare("SELECT 1 FROM pragma_table_info(?) WHERE name = ?").get(table, column) !== undefined;
const hasRow = (db, table, where = "1") => hasTable(db, table) && db.prepare(`SELECT 1 FROM ${table} WHERE ${where} LIMIT 1`).get() !== undefined;

/**
 * Whether the directory holds data that needs a key-encryption key: a
 * wrapped key (a CSR's, a pooled one, the service key), a row keyed under a
 * KEK, or a recorded check value. Databases alone do not count: npm start's
 * own import makes the registry's, and a read may have made an empty one.
 */
export async function holdsData(dataDir) {
  const root = storageDir(dataDir);
  if (!existsSync(root)) return false;
  for (const namespace of readdirSync(root, { withFileTypes: true })) {
    if (!namespace.isDirectory() || namespace.name.endsWith(`-${PROBE_CLASS}`)) continue;
    for (const file of readdirSync(join(root, namespace.name))) {
      if (!file.endsWith(".sqlite") || file === "metadata.sqlite") continue;
      const holds = await readOnly(join(root, namespace.name, file), (db) =>
        ["wrapped_keys", "key_pool", "service_keys", "kek_checks"].some((table) => hasRow(db, table)) ||
        [["audit_log", "mac_kek"], ["certificates", "mac_kek"], ["edges", "mac_kek"]].some(([table, column]) => hasColumn(db, table, column) && hasRow(db, table, `${column} IS NOT NULL`)),
      );
      if (holds) return true;
    }
  }
  return false;
}

/** Each configured KEK's 32 bytes by id; entries that do not parse are left to the Worker, which refuses them (1501). */
function kekKeys(secret) {
  const keys = new Map();
  for (const entry of String(secret ?? "").split(",").map((e) => e.trim()).filter(Boolean)) {
    const at = entry.indexOf(":");
    const raw = Buffer.from(entry.slice(at + 1), "base64");
    if (at >= 1 && raw.length === 32) keys.set(entry.slice(0, at), raw);
  }
  return keys;
}

/** A KEK's check value: hex of HKDF-SHA256(key, no salt, info "custom-csr-kek-check:v1:<id>", 32 bytes), as src/pki/keyring.ts. */
const checkValue = (id, raw) => Buffer.from(hkdfSync("sha256", raw, Buffer.alloc(0), Buffer.from(`custom-csr-kek-check:v1:${id}`), 32)).toString("hex");

/** Each configured KEK's check value, by id. */
export function kekChecks(secret) {
  return new Map([...kekKeys(secret)].map(([id, raw]) => [id, checkValue(id, raw)]));
}

/**
 * Whether `raw` opens a wrap: AES-256-GCM over the PKCS#8 bytes, the tag at
 * the end (WebCrypto's wrapKey), with the additional data the Worker binds it
 * to (src/pki/key-wrap.ts wrapContext, poolWrapContext; service-key.ts). The
 * tag alone proves the key; nothing is decoded or kept.
 */
function opens(raw, { context, iv, wrapped }) {
  try {
    if (wrapped.length <= 16) return false;
    const decipher = createDecipheriv("aes-256-gcm", raw, iv, { authTagLength: 16 });
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(wrapped.subarray(wrapped.length - 16));
    decipher.update(wrapped.subarray(0, wrapped.length - 16));
    decipher.final();
    return true;
  } catch {
    return false;
  }
}

/**
 * The deployment registry's record: whether its list of scopes is complete,
 * how many listed scopes have not reported their KEKs, and every KEK some
 * data uses or recorded, with its check value (null: none recorded yet) and
 * the number of scopes using it. Null when the directory has no registry yet.
 */
export async function registryRecord(dataDir, workerName) {
  const [path] = databasesOf(dataDir, workerName, REGISTRY_CLASS);
  if (!path) return null;
  return readOnly(path, (db) => {
    if (!hasTable(db, "kek_checks")) return { complete: false, unreported: 0, keks: [] };
    const complete = db.prepare("SELECT value FROM meta WHERE key = 'complete'").get()?.value === "1";
    // Before the registry's schema version 2 no scope had reported its KEKs as a whole.
    const unreported = hasColumn(db, "scopes", "keks_reported")
      ? db.prepare("SELECT count(*) AS n FROM scopes WHERE keks_reported = 0").get().n
      : db.prepare("SELECT count(*) AS n FROM scopes").get().n;
    const keks = db
      .prepare(
        `SELECT k.kek_id, c.check_value, (SELECT count(*) FROM scope_keks s WHERE s.kek_id = k.kek_id) AS scopes
         FROM (SELECT kek_id FROM kek_checks UNION SELECT kek_id FROM scope_keks) k LEFT JOIN kek_checks c ON c.kek_id = k.kek_id ORDER BY k.kek_id`,
      )
      .all()
      .map((r) => ({ kek_id: r.kek_id, check_value: r.check_value ?? null, scopes: Number(r.scopes) }));
    return { complete, unreported, keks };
  });
}

/** Whether the registry cannot vouch for the data alone: the directory's scopes and KEKs must be read (scanData). */
export function needsScan(record, secret) {
  if (record === null || !record.complete || record.unreported > 0) return true;
  const configured = kekChecks(secret);
  return record.keks.some((k) => k.check_value === null && configured.has(k.kek_id));
}

/** The KEK ids a query lists (one column, DISTINCT, NULLs left out). */
const idsOf = (db, sql) => db.prepare(sql).all().map((r) => Object.values(r)[0]).filter((id) => typeof id === "string");

/**
 * Reads one object's database: the KEK ids its data uses, the check values
 * it recorded, and up to TRIALS wraps per KEK id still short of them (each
 * with the additional data it was wrapped with), into `scan`.
 */
function readHolder(db, name, scan) {
  const kekIds = new Set();
  const wrapQueries = [];
  if (hasTable(db, "wrapped_keys")) {
    idsOf(db, "SELECT DISTINCT kek_id FROM wrapped_keys").forEach((id) => kekIds.add(id));
    // Keyed by the CSR's seq since tenant schema version 3, by its id before.
    const rows = hasColumn(db, "wrapped_keys", "seq")
      ? "SELECT c.id AS id, k.iv, k.wrapped FROM wrapped_keys k JOIN csrs c ON c.seq = k.seq WHERE k.kek_id = ? LIMIT ?"
      : "SELECT csr_id AS id, iv, wrapped FROM wrapped_keys WHERE kek_id = ? LIMIT ?";
    wrapQueries.push([rows, (id) => `custom-csr-key:v1:${name}:${id}`]);
  }
  if (hasTable(db, "key_pool")) {
    idsOf(db, "SELECT DISTINCT kek_id FROM key_pool").forEach((id) => kekIds.add(id));
    wrapQueries.push(["SELECT id, iv, wrapped FROM key_pool WHERE kek_id = ? LIMIT ?", (id) => `custom-csr-pool:v1:${name}:${id}`]);
  }
  if (hasTable(db, "service_keys")) {
    idsOf(db, "SELECT DISTINCT kek_id FROM service_keys").forEach((id) => kekIds.add(id));
    wrapQueries.push(["SELECT kid AS id, iv, wrapped FROM service_keys WHERE kek_id = ? LIMIT ?", (kid) => `custom-csr-service-key:v1:${kid}`]);
  }
  for (const table of ["audit_log", "certificates", "edges"]) {
    if (hasColumn(db, table, "mac_kek")) idsOf(db, `SELECT DISTINCT mac_kek FROM ${table} WHERE mac_kek IS NOT NULL`).forEach((id) => kekIds.add(id));
  }
  if (hasTable(db, "kek_checks")) {
    for (const { kek_id, check_value } of db.prepare("SELECT kek_id, check_value FROM kek_checks").all()) {
      if (!scan.recorded.has(kek_id)) scan.recorded.set(kek_id, new Set());
      scan.recorded.get(kek_id).add(check_value);
    }
  }
  for (const id of kekIds) {
    const samples = scan.samples.get(id) ?? [];
    for (const [sql, context] of wrapQueries) {
      if (samples.length >= TRIALS) break;
      for (const row of db.prepare(sql).all(id, TRIALS - samples.length)) {
        samples.push({ context: context(row.id), iv: Buffer.from(row.iv), wrapped: Buffer.from(row.wrapped) });
      }
    }
    scan.samples.set(id, samples);
  }
  return [...kekIds].sort();
}

/**
 * Reads every tenant database and the edge registry's: each scope's name
 * (meta `scope`) with the KEK ids its data uses, the check values the data
 * recorded, a few wraps per KEK id for a trial unwrap, and how many
 * databases hold data without a scope name (then the list cannot be called
 * complete).
 */
export async function scanData(dataDir, workerName) {
  const scan = { scopes: [], unnamed: 0, recorded: new Map(), samples: new Map() };
  for (const path of databasesOf(dataDir, workerName, TENANT_CLASS)) {
    await readOnly(path, (db) => {
      const name = hasTable(db, "meta") ? db.prepare("SELECT value FROM meta WHERE key = 'scope'").get()?.value : undefined;
      if (typeof name === "string") scan.scopes.push({ name, kek_ids: readHolder(db, name, scan) });
      else if (["csrs", "wrapped_keys", "key_pool", "audit_log"].some((table) => hasRow(db, table))) scan.unnamed++;
    });
  }
  for (const path of databasesOf(dataDir, workerName, EDGE_CLASS)) {
    const kekIds = await readOnly(path, (db) => readHolder(db, EDGE_REGISTRY_NAME, scan));
    if (kekIds.length > 0) scan.scopes.push({ name: EDGE_REGISTRY_NAME, kek_ids: kekIds });
  }
  scan.scopes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return scan;
}

/**
 * Checks the configured KEKs against the data, before anything is served:
 * one line per KEK that stops the start (`problems`, naming it: one the data
 * uses that is not configured; one configured under a recorded id with
 * another check value; one under which data from before check values was
 * wrapped and none of whose wraps it opens), and the check values verified
 * (`checks`: matching a recorded one, or opening that data's wraps), for
 * the registry to record before any write could record another key's.
 */
export function verifyKeks(record, scan, secret) {
  const keys = kekKeys(secret);
  const used = new Map();
  const recorded = new Map();
  for (const { kek_id, check_value, scopes } of record?.keks ?? []) {
    used.set(kek_id, scopes);
    if (check_value !== null) recorded.set(kek_id, new Set([check_value]));
  }
  // How many scopes use each KEK: as the registry counted them, or as the data says when it was read.
  const counted = new Map();
  for (const { kek_ids } of scan?.scopes ?? []) for (const id of kek_ids) counted.set(id, (counted.get(id) ?? 0) + 1);
  for (const [id, n] of counted) used.set(id, Math.max(used.get(id) ?? 0, n));
  for (const [id, values] of scan?.recorded ?? []) recorded.set(id, new Set([...(recorded.get(id) ?? []), ...values]));

  const problems = [];
  const checks = {};
  for (const id of [...new Set([...used.keys(), ...recorded.keys()])].sort()) {
    const raw = keys.get(id);
    const scopes = used.get(id) ?? 0;
    if (raw === undefined) {
      if (scopes > 0) problems.push(`key-encryption key ${id} is not in KEY_ENCRYPTION_KEYS, and ${scopes} scope(s) in this data directory have keys wrapped under it: add it back`);
      continue;
    }
    const check = checkValue(id, raw);
    const values = recorded.get(id) ?? new Set();
    if ([...values].some((v) => v !== check)) {
      problems.push(`key-encryption key ${id} in KEY_ENCRYPTION_KEYS is not the key this data directory's keys were wrapped under (its check value differs): restore the original ${id} entry`);
    } else if (values.size > 0) {
      checks[id] = check;
    } else if (scopes > 0) {
      // Data from before check values: one of its wraps must open.
      const samples = scan?.samples.get(id) ?? [];
      if (samples.some((sample) => opens(raw, sample))) checks[id] = check;
      else if (samples.length > 0) {
        problems.push(`key-encryption key ${id} in KEY_ENCRYPTION_KEYS is not the key this data directory's keys were wrapped under (none of ${samples.length} of its wraps opens): restore the original ${id} entry`);
      }
    }
  }
  for (const raw of keys.values()) raw.fill(0);
  return { problems, checks };
}
