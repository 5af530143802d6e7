// Bytes stored per CSR: first the growth of a fresh scope's database over N
// creates as SQLite counts it (page_count × page_size, via the admin stats
// endpoint); then, once workerd has stopped and closed the files, each
// scope's file on disk and its bytes by table and index (dbstat).
import { join } from "node:path";
import type { Bench } from "../lib/bench.ts";
import { errorMessage } from "../lib/lifecycle.ts";
import { breakdown, inspectDatabases } from "../lib/sqlite-files.ts";

/** Database growth over 2,000 p256v1 and 200 rsa2048 creates (200 and 30 with --quick), each in a fresh scope. */
export async function growthPerCsr(bench: Bench): Promise<void> {
  const counts = [
    ["p256v1", bench.quick ? 200 : 2_000],
    ["rsa2048", bench.quick ? 30 : 200],
  ] as const;
  for (const [keyType, n] of counts) {
    const id = `bench-bytes-${keyType}`;
    await bench.seed("zones", id, 1, keyType);
    const db0 = (await bench.client.stats("zones", id)).databaseBytes;
    await bench.seed("zones", id, 1 + n, keyType);
    const db1 = (await bench.client.stats("zones", id)).databaseBytes;
    bench.results.storage.push({ scope: `zones:${id}`, keyType, n, growthPerCsr: (db1 - db0) / n });
    bench.log(`${keyType}: ${((db1 - db0) / n).toFixed(0)} B per CSR (database growth over ${n})`);
  }
}

/**
 * The files of every scope measured so far (and of the list scope), once
 * workerd has stopped: bytes per CSR or entry, in all and by table and index.
 */
export async function bytesOnDisk(bench: Bench): Promise<void> {
  const { storage, notes } = bench.results;
  const databases = await inspectDatabases(join(bench.workerd.storageDir("api"), "api-TenantStore")).catch((error: unknown) => {
    notes.push(`The SQLite files could not be read after the run (${errorMessage(error)}).`);
    return [];
  });
  const listScope = databases.find((d) => d.scope === "accounts:bench-list");
  if (listScope) storage.push({ scope: "accounts:bench-list", keyType: "p256v1", n: listScope.csrs, growthPerCsr: null });
  for (const s of storage) {
    const db = databases.find((d) => d.scope === s.scope);
    if (!db) continue;
    const units = s.keyType === "audit entries" ? db.auditEntries : db.csrs;
    s.units = units;
    s.filePerUnit = db.fileBytes / units;
    s.breakdown = breakdown(db, units);
  }
}
