// Reads the Durable Objects' SQLite files once workerd has stopped (the bench's
// own temp copies; the WAL is checkpointed into the file first): each
// object's scope, CSR and audit-entry counts, file size, and bytes by table
// and index (SQLite's dbstat), to price what one CSR or one audit entry costs
// on disk and which structure holds it.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

async function openSqlite() {
  // node:sqlite is stable enough for reading; silence its one-time experimental warning.
  const emit = process.emitWarning;
  process.emitWarning = (warning, ...rest) => (String(warning).includes("SQLite") ? undefined : emit.call(process, warning, ...rest));
  try {
    return (await import("node:sqlite")).DatabaseSync;
  } finally {
    process.emitWarning = emit;
  }
}

/** Every object database under `dir`: { file, scope, csrs, auditEntries, fileBytes, objects: [{name, bytes, payload}] }. */
export async function inspectDatabases(dir) {
  const DatabaseSync = await openSqlite();
  const out = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".sqlite") || f.startsWith("metadata")) continue;
    const path = join(dir, f);
    const db = new DatabaseSync(path);
    try {
      // Whatever workerd left in the WAL goes into the file first, so the file is the whole database.
      db.prepare(`PRAGMA wal_checkpoint(TRUNCATE)`).get();
      const scope = db.prepare(`SELECT value FROM meta WHERE key = 'scope'`).get()?.value ?? null;
      const csrs = db.prepare(`SELECT count(*) AS n FROM csrs`).get().n;
      const auditEntries = db.prepare(`SELECT count(*) AS n FROM audit_log`).get().n;
      const pageSize = db.prepare(`PRAGMA page_size`).get().page_size;
      const pageCount = db.prepare(`PRAGMA page_count`).get().page_count;
      let objects = [];
      try {
        objects = db
          .prepare(`SELECT name, sum(pgsize) AS bytes, sum(payload) AS payload FROM dbstat GROUP BY name ORDER BY bytes DESC`)
          .all()
          .map((r) => ({ name: r.name, bytes: r.bytes, payload: r.payload }));
      } catch {
        // dbstat not compiled in: sizes per object are unavailable.
      }
      out.push({ file: f, scope, csrs, auditEntries, fileBytes: statSync(path).size, databaseBytes: pageSize * pageCount, objects });
    } finally {
      db.close();
    }
  }
  return out;
}

/**
 * Groups a database's objects into the CSR row, its indexes, the wrap row,
 * its indexes, the audit rows, their indexes, and the rest; bytes per `units`
 * (CSRs, or audit entries for a scope that holds only a trail).
 */
export function breakdown(db, units) {
  const group = (name) => {
    if (name === "audit_log") return "audit_log rows";
    if (name.startsWith("audit_by_")) return `index ${name}`;
    if (name === "csrs") return "csrs rows";
    if (name === "wrapped_keys") return "wrapped_keys rows";
    if (name === "sqlite_autoindex_csrs_1") return "index csrs.id (UNIQUE)";
    if (name.startsWith("csrs_by_")) return `index ${name}`;
    if (name === "sqlite_autoindex_wrapped_keys_1") return "index wrapped_keys.csr_id (PRIMARY KEY)";
    if (name.startsWith("wrapped_keys_by_")) return `index ${name}`;
    return "fixed (schema, counters, other tables)";
  };
  const groups = new Map();
  for (const o of db.objects) groups.set(group(o.name), (groups.get(group(o.name)) ?? 0) + o.bytes);
  return [...groups].map(([name, bytes]) => ({ name, bytes, perUnit: units ? bytes / units : null })).sort((a, b) => b.bytes - a.bytes);
}
