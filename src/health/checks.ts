import { type Result, fail } from "../core/result";
import { type KeyRefusal, KeyringError, loadKeyring } from "../pki/keyring";
import type { Migrations } from "../storage/migrate";
import type { Sql } from "../storage/sql";

/**
 * The probe's schema (src/storage/migrate.ts): one one-row table. Written
 * so that it adopts a database made before the shared migrations, which
 * created the table on every check.
 */
/** Durable Object storage that does not take a write (ours: 1502). */
export type StorageUnavailable = { readonly reason: "storage_unavailable" };

export const PROBE_MIGRATIONS: Migrations = [
  [
    `CREATE TABLE IF NOT EXISTS probe (
      singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
      checked_at TEXT NOT NULL,
      checks INTEGER NOT NULL
    )`,
  ],
];

/**
 * Storage is writable: one row of the probe's own table is written and
 * flushed to disk (`sync()` resolves once the write is durable, and rejects
 * when the commit fails). The probe object is the only writer of `probe`;
 * no tenant object or row is touched.
 */
export async function checkStorage(sql: Sql, sync: () => Promise<void>, now: Date = new Date()): Promise<StorageUnavailable | null> {
  try {
    sql.run(
      `INSERT INTO probe (singleton, checked_at, checks) VALUES (1, ?, 1)
       ON CONFLICT (singleton) DO UPDATE SET checked_at = excluded.checked_at, checks = checks + 1`,
      now.toISOString(),
    );
    await sync();
    return null;
  } catch (error) {
    // The statement or the file is named, never any stored value.
    console.error(
      JSON.stringify({ level: "error", event: "readiness_storage_failed", error: error instanceof Error ? error.message : String(error) }),
    );
    return fail({ reason: "storage_unavailable" });
  }
}

/** What the key check asks of the deployment registry: the configured KEKs against the ones the data recorded. */
export interface KeyRecords {
  keyStatus(): Promise<Result<{ failures: KeyRefusal[] }, KeyRefusal>>;
}

/**
 * The key-encryption keys load (KEY_ENCRYPTION_KEYS parses and every key
 * imports as an AES-256 key, here on the Durable Object side where tenant
 * objects load them too; the router never sees them), and they are the keys
 * the data was wrapped under: every KEK some data recorded is configured
 * (1501 naming it) with its recorded check value (1505 naming it).
 */
export async function checkKeys(secret: string | undefined, records: KeyRecords): Promise<KeyRefusal[]> {
  try {
    await loadKeyring(secret);
  } catch (error) {
    if (!(error instanceof KeyringError)) throw error;
    console.error(JSON.stringify({ level: "error", event: "readiness_keyring_failed", message: error.message }));
    return [fail({ reason: "key_encryption_unavailable" })];
  }
  const status = await records.keyStatus();
  if (!status.ok) return [status];
  for (const failure of status.value.failures) {
    console.error(JSON.stringify({ level: "error", event: "readiness_kek_failed", reason: failure.reason, kek_id: "kek_id" in failure ? failure.kek_id : null }));
  }
  return status.value.failures;
}

/**
 * Runs `run` at most once per `intervalMs`; callers in between (and callers
 * while it runs) share its result. /readyz needs no credentials, so each
 * request must not become a disk write and flush of its own.
 */
export class Throttled<T> {
  #last: { at: number; value: Promise<T> } | null = null;

  constructor(
    private readonly run: () => Promise<T>,
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    const at = this.now();
    if (this.#last !== null && at - this.#last.at < this.intervalMs) return this.#last.value;
    const value = this.run();
    this.#last = { at, value };
    return value;
  }
}
