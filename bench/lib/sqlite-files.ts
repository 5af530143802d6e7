// Reads the Durable Objects' SQLite files once workerd has stopped (the bench's
// own temp copies; the WAL is checkpointed into the file first): each
// object's scope, CSR and audit-entry counts, file size, and bytes by table
// and index (SQLite's dbstat), to price what one CSR or one audit entry costs
// on disk and which structure holds it.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync, SQLOutputValue } from "node:sqlite";

/** One object's database file. */
export interface DatabaseFile {
  file: string;
  scope: string | null;
  csrs: number;
  auditEntries: number;
  fileBytes: number;
  databaseBytes: number;
  /** Tables and indexes with their bytes (pages) and payload; empty when dbstat is not compiled in. */
  objects: Array<{ name: string; bytes: number; payload: number }>;
}

/** The bytes of one group of tables and indexes, and per CSR or audit entry. */
export interface BreakdownPart {
  name: string;
  bytes: number;
  perUnit: number | null;
}

async function openSqlite(): Promise<typeof DatabaseSync> {
  // node:sqlite is stable enough for reading; silence its one-time experimental warning.
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: never[]) =>
    String(warning).includes("SQLite") ? undefined : emit.call(process, warning, ...rest)) as typeof process.emitWarning;
  try {
    return (await import("node:sqlite")).DatabaseSync;
  } finally {
    process.emitWarning = emit;
  }
}

const num = (v: SQLOutputValue | undefined): number => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : 0);

/** Every object database under `dir`. */
export async function inspectDatabases(dir: string): Promise<DatabaseFile[]> {
  const Database = await openSqlite();
  const out: DatabaseFile[] = [];
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(".sqlite") || f.startsWith("metadata")) continue;
    const path = join(dir, f);
    const db = new Database(path);
    try {
      const one = (sql: string) => db.prepare(sql).get() ?? {};
      // Whatever workerd left in the WAL goes into the file first, so the file is the whole database.
      one(`PRAGMA wal_checkpoint(TRUNCATE)`);
      const scope = one(`SELECT value FROM meta WHERE key = 'scope'`).value;
      const csrs = num(one(`SELECT count(*) AS n FROM csrs`).n);
      const auditEntries = num(one(`SELECT count(*) AS n FROM audit_log`).n);
      const pageSize = num(one(`PRAGMA page_size`).page_size);
      const pageCount = num(one(`PRAGMA page_count`).page_count);
      let objects: DatabaseFile["objects"] = [];
      try {
        objects = db
          .prepare(`SELECT name, sum(pgsize) AS bytes, sum(payload) AS payload FROM dbstat GROUP BY name ORDER BY bytes DESC`)
          .all()
          .map((r) => ({ name: String(r.name), bytes: num(r.bytes), payload: num(r.payload) }));
      } catch {
        // dbstat not compiled in: sizes per object are unavailable.
      }
      out.push({ file: f, scope: typeof scope === "string" ? scope : null, csrs, auditEntries, fileBytes: statSync(path).size, databaseBytes: pageSize * pageCount, objects });
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
export function breakdown(db: DatabaseFile, units: number): BreakdownPart[] {
  const group = (name: string) => {
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
  const groups = new Map<string, number>();
  for (const o of db.objects) groups.set(group(o.name), (groups.get(group(o.name)) ?? 0) + o.bytes);
  return [...groups].map(([name, bytes]) => ({ name, bytes, perUnit: units ? bytes / units : null })).sort((a, b) => b.bytes - a.bytes);
}
