import { type Clock, systemClock } from "../core/clock";
import { quietFor } from "../core/activity";
import type { TenantCall } from "../core/call";
import type { Result } from "../core/result";
import type { Actor } from "../core/call";
import { type WrappedKey, poolWrapContext, unwrapPrivateKey, wrapPrivateKey } from "../pki/key-wrap";
import { type KeyRefusal, type Keyring, KeyringError } from "../pki/keyring";
import { KEY_ALGORITHMS, generateKeyPair } from "../pki/keys";
import type { AuditTrail } from "./audit-trail";
import type { Storage } from "../storage/storage";

/** Who the audit trail names for the pool's own work (filling it, dropping a key that no longer opens). */
export const KEY_POOL_ACTOR: Actor = { type: "system", id: "key-pool" };

/** Only RSA keys are pooled: a P-256 key takes ~10 µs to generate, an RSA-2048 key 50–65 ms. */
export const POOLED_KEY_TYPE = "rsa2048";

/** The most keys one scope may keep ready. */
export const MAX_POOL_SIZE = 64;

/** How long the isolate must have been idle before a key is generated. */
export const QUIET_MS = 250;

/** The deployment's default pool size (DEFAULT_KEY_POOL_SIZE, 0–64); unset or malformed is 0, no pools. */
export function defaultPoolSize(env: { DEFAULT_KEY_POOL_SIZE?: string }): number {
  const size = Number.parseInt(env.DEFAULT_KEY_POOL_SIZE ?? "0", 10);
  return Number.isSafeInteger(size) ? Math.min(Math.max(size, 0), MAX_POOL_SIZE) : 0;
}

/** A pooled key claimed by a create: its private key (extractable, to be re-wrapped) and public key. */
export interface ClaimedKey {
  seq: number;
  id: string;
  keys: CryptoKeyPair;
}

export interface PoolState {
  key_type: typeof POOLED_KEY_TYPE;
  /** How many keys the scope keeps ready. */
  size: number;
  /** How many are ready now. */
  available: number;
  /** Whether filling has started: at the scope's first rsa2048 create, or when the operator sets a size. */
  started: boolean;
}

export interface PoolCheck {
  checked: number;
  ok: boolean;
  /** Pool ids whose key did not unwrap or did not match its public key. */
  failed: string[];
  /** Each of `failed`, with its KEK and why. */
  failures: Array<{ id: string; kek_id: string; reason: "kek_not_configured" | "unwrap_failed" | "key_mismatch" }>;
}

export interface PoolRewrap {
  rewrapped: number;
  failed: string[];
  failures: Array<{ id: string; kek_id: string; reason: "kek_not_configured" | "unwrap_failed" }>;
  remaining: number;
}

type PoolRow = { seq: number; id: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer; spki: ArrayBuffer };

/**
 * The scope's pool of RSA keys generated ahead of demand (docs/storage.md).
 * The only writer of `key_pool` and `key_pool_config`. Keys are wrapped
 * exactly as stored keys are, bound to the scope and to a random pool id; a
 * create claims one, re-wraps it to its CSR, and deletes it from the pool in
 * the CSR's own transaction, so a key goes to one CSR or stays in the pool.
 * The object's alarm fills the pool one key per run, only while the isolate
 * is idle (src/core/activity.ts).
 */
export class KeyPool {
  // Keys claimed by creates that are still building their CSR: a second
  // create skips them. Lost on restart, as are the creates that held them.
  readonly #claimed = new Set<number>();

  constructor(
    private readonly storage: Storage,
    private readonly audit: AuditTrail,
    private readonly defaultSize: number,
    /** Asks for the object's alarm `ms` from now. */
    private readonly schedule: (ms: number) => void,
    private readonly clock: Clock = systemClock,
  ) {}

  state(): PoolState {
    const config = this.#config();
    return { key_type: POOLED_KEY_TYPE, size: config?.size ?? this.defaultSize, available: this.#available(), started: config !== null };
  }

  /**
   * Claims the oldest ready key that no other create holds, unwrapped for
   * signing and re-wrapping; null when none is ready (the caller generates
   * one). The first rsa2048 create of a scope starts its pool. A pooled wrap
   * that does not unwrap under a checked keyring is damaged: it is removed
   * from the pool (with an audit entry) rather than tried by every create; one
   * whose KEK is not configured is skipped and left for the operator.
   */
  async claim(scope: TenantCall["scope"], scopeName: string, keyring: Keyring): Promise<ClaimedKey | null> {
    if (this.#config() === null) this.#start();
    if (this.#available() <= this.#claimed.size) this.#refill();
    // Oldest first, one row at a time: a create reads only the wraps it tries,
    // not the whole pool (up to MAX_POOL_SIZE RSA wraps).
    for (let after = -1, row: PoolRow | null; (row = this.#nextAfter(after)) !== null; after = row.seq) {
      if (this.#claimed.has(row.seq)) continue;
      this.#claimed.add(row.seq);
      try {
        return { seq: row.seq, id: row.id, keys: await this.#unwrap(row, keyring, scopeName, true) };
      } catch (error) {
        this.#claimed.delete(row.seq);
        console.error(JSON.stringify({ level: "error", event: "pooled_key_unusable", scope: scopeName, pool_key_id: row.id, kek_id: row.kek_id }));
        if (!(error instanceof KeyringError)) this.#drop({ scope, actor: KEY_POOL_ACTOR }, row);
      }
    }
    return null;
  }

  // Removes a pooled key that does not unwrap, overwritten first (as the vault removes keys).
  #drop(call: TenantCall, row: PoolRow): void {
    this.storage.transaction(() => {
      if (!this.#erase(row.seq, row.id)) return;
      this.audit.record(call, {
        action: "delete",
        resource: { type: "pooled_key", id: row.id },
        result: false,
        info: "the pooled key did not unwrap under its key-encryption key, or did not match its public key (1506), and was removed from the pool",
        metadata: { key_type: POOLED_KEY_TYPE, kek_id: row.kek_id },
      });
    });
    this.#refill();
  }

  // Overwrites a pooled wrap in place with zeros, then deletes it; false when it is gone.
  #erase(seq: number, id: string): boolean {
    this.storage.sql.run(`UPDATE key_pool SET iv = zeroblob(length(iv)), wrapped = zeroblob(length(wrapped)) WHERE seq = ? AND id = ?`, seq, id);
    return this.storage.sql.run(`DELETE FROM key_pool WHERE seq = ? AND id = ?`, seq, id) > 0;
  }

  /** Every KEK id a pooled key is wrapped under. */
  kekIds(): string[] {
    return this.storage.sql.all<{ kek_id: string }>(`SELECT DISTINCT kek_id FROM key_pool`).map((r) => r.kek_id);
  }

  /** Whether one pooled key wrapped under `kekId` unwraps with `keyring` (null: there is none). */
  async opens(kekId: string, keyring: Keyring, scopeName: string): Promise<boolean | null> {
    const row = this.storage.sql.one<PoolRow>(`SELECT seq, id, kek_id, iv, wrapped, spki FROM key_pool WHERE kek_id = ? LIMIT 1`, kekId);
    if (!row) return null;
    try {
      await this.#unwrap(row, keyring, scopeName, false);
      return true;
    } catch {
      return false;
    }
  }

  /** Takes a claimed key out of the pool (inside the CSR's insert transaction); false if it is gone. */
  consume(claimed: ClaimedKey): boolean {
    return this.#erase(claimed.seq, claimed.id);
  }

  /** Ends a claim, used or not, and asks for a refill once the isolate is idle. */
  release(claimed: ClaimedKey): void {
    this.#claimed.delete(claimed.seq);
    this.#refill();
  }

  /**
   * One alarm run: generates and stores one key when the pool is started,
   * short and the isolate idle. Answers when the alarm should run again
   * (null: the pool is full or off).
   */
  async fillOne(call: TenantCall, scopeName: string, keyring: () => Promise<Result<Keyring, KeyRefusal>>): Promise<number | null> {
    const { size, available, started } = this.state();
    if (!started || available >= size) return null;
    if (!quietFor(QUIET_MS)) return QUIET_MS;
    const opened = await keyring();
    if (!opened.ok) return null;
    const keys = await generateKeyPair(POOLED_KEY_TYPE);
    const spki = (await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer;
    const id = crypto.randomUUID();
    const wrapped = await wrapPrivateKey(keys.privateKey, opened.value, poolWrapContext(scopeName, id));
    return this.storage.transaction(() => {
      // The operator may have shrunk the pool while the key was generated.
      if (this.#available() >= this.state().size) return null;
      this.storage.sql.run(
        `INSERT INTO key_pool (id, kek_id, iv, wrapped, spki, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
        id,
        wrapped.kekId,
        wrapped.iv,
        wrapped.wrapped,
        spki,
        this.clock().toISOString(),
      );
      this.audit.record(call, {
        action: "generate",
        resource: { type: "pooled_key", id },
        result: true,
        metadata: { key_type: POOLED_KEY_TYPE, kek_id: wrapped.kekId },
      });
      return this.#available() < this.state().size ? 0 : null;
    });
  }

  /** The operator's setting: keep `size` keys ready (0 turns the pool off and destroys its keys). */
  setSize(call: TenantCall, size: number): PoolState {
    const previous = this.state().size;
    this.storage.transaction(() => {
      this.storage.sql.run(
        `INSERT INTO key_pool_config (singleton, size) VALUES (1, ?) ON CONFLICT (singleton) DO UPDATE SET size = excluded.size`,
        size,
      );
      // Surplus keys go, newest first, except those a create is using now.
      const surplus = this.storage.sql
        .all<{ seq: number; id: string }>(`SELECT seq, id FROM key_pool ORDER BY seq DESC`)
        .filter((row) => !this.#claimed.has(row.seq))
        .slice(0, Math.max(0, this.#available() - size));
      for (const row of surplus) this.#erase(row.seq, row.id);
      this.audit.record(call, {
        action: "update",
        resource: { type: "key_pool", id: null },
        result: true,
        metadata: { key_type: POOLED_KEY_TYPE, size, previous, destroyed: surplus.map((row) => row.id) },
      });
    });
    this.#refill();
    return this.state();
  }

  /**
   * Self-check of every pooled key: it unwraps, and signs a challenge its
   * stored public key verifies. A key that fails (other than for a KEK that
   * is not configured) is removed from the pool, with its own audit entry.
   */
  async verify(call: TenantCall, scopeName: string, keyring: Keyring): Promise<PoolCheck> {
    const rows = this.storage.sql.all<PoolRow>(`SELECT seq, id, kek_id, iv, wrapped, spki FROM key_pool ORDER BY seq`);
    const failures: PoolCheck["failures"] = [];
    const algorithm = KEY_ALGORITHMS[POOLED_KEY_TYPE];
    for (const row of rows) {
      let keys: CryptoKeyPair;
      try {
        keys = await this.#unwrap(row, keyring, scopeName, false);
      } catch (error) {
        const kekMissing = error instanceof KeyringError;
        failures.push({ id: row.id, kek_id: row.kek_id, reason: kekMissing ? "kek_not_configured" : "unwrap_failed" });
        // A wrap that does not open under a configured KEK never will: it leaves the pool (a missing KEK may come back).
        if (!kekMissing) this.#drop(call, row);
        continue;
      }
      const challenge = crypto.getRandomValues(new Uint8Array(32));
      const signature = await crypto.subtle.sign(algorithm.sign, keys.privateKey, challenge);
      if (!(await crypto.subtle.verify(algorithm.sign, keys.publicKey, signature, challenge))) {
        failures.push({ id: row.id, kek_id: row.kek_id, reason: "key_mismatch" });
        this.#drop(call, row);
      }
    }
    const failed = failures.map((f) => f.id);
    const check = { checked: rows.length, ok: failed.length === 0, failed, failures };
    this.audit.record(call, {
      action: "verify",
      resource: { type: "key_pool", id: null },
      result: check.ok,
      ...(check.ok ? {} : { info: `${failed.length} pooled key(s) failed the self-check` }),
      metadata: { checked: check.checked, failed, failures },
    });
    return check;
  }

  /**
   * Re-wraps the pooled keys not under the current KEK, then writes them in
   * one transaction, each guarded by its old KEK id, with one audit entry.
   */
  async rewrap(call: TenantCall, scopeName: string, keyring: Keyring): Promise<PoolRewrap> {
    const current = keyring.currentId;
    const rows = this.storage.sql.all<PoolRow>(
      `SELECT seq, id, kek_id, iv, wrapped, spki FROM key_pool WHERE kek_id != ? ORDER BY seq`,
      current,
    );
    const fresh: Array<{ row: PoolRow; wrap: WrappedKey }> = [];
    const failures: PoolRewrap["failures"] = [];
    for (const row of rows) {
      try {
        const keys = await this.#unwrap(row, keyring, scopeName, true);
        fresh.push({ row, wrap: await wrapPrivateKey(keys.privateKey, keyring, poolWrapContext(scopeName, row.id)) });
      } catch (error) {
        const kekMissing = error instanceof KeyringError;
        failures.push({ id: row.id, kek_id: row.kek_id, reason: kekMissing ? "kek_not_configured" : "unwrap_failed" });
        // Removed, so it neither counts as remaining nor keeps its KEK in use (the pool refills).
        if (!kekMissing) this.#drop(call, row);
      }
    }
    const failed = failures.map((f) => f.id);
    return this.storage.transaction(() => {
      let rewrapped = 0;
      for (const { row, wrap } of fresh) {
        const written = this.storage.sql.run(
          `UPDATE key_pool SET kek_id = ?, iv = ?, wrapped = ? WHERE seq = ? AND kek_id = ?`,
          wrap.kekId,
          wrap.iv,
          wrap.wrapped,
          row.seq,
          row.kek_id,
        );
        if (written > 0) rewrapped++;
      }
      const remaining = this.storage.sql.one<{ n: number }>(`SELECT count(*) AS n FROM key_pool WHERE kek_id != ?`, current)?.n ?? 0;
      if (rows.length > 0) {
        this.audit.record(call, {
          action: "rewrap",
          resource: { type: "key_pool", id: null },
          result: failed.length === 0,
          ...(failed.length === 0 ? {} : { info: `${failed.length} pooled key(s) were not moved: removed when they did not unwrap, left when their KEK is not configured` }),
          metadata: { kek_id: current, from_kek_ids: [...new Set(rows.map((r) => r.kek_id))].sort(), rewrapped, failed, failures, remaining },
        });
      }
      return { rewrapped, failed, failures, remaining };
    });
  }

  async #unwrap(row: PoolRow, keyring: Keyring, scopeName: string, extractable: boolean): Promise<CryptoKeyPair> {
    const privateKey = await unwrapPrivateKey(
      { kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped },
      POOLED_KEY_TYPE,
      keyring,
      poolWrapContext(scopeName, row.id),
      { extractable },
    );
    const publicKey = await crypto.subtle.importKey("spki", row.spki, KEY_ALGORITHMS[POOLED_KEY_TYPE].import, true, ["verify"]);
    return { privateKey, publicKey };
  }

  // Asks for the alarm when the pool is started and short of its size.
  #refill(): void {
    const { size, available, started } = this.state();
    if (started && available < size) this.schedule(QUIET_MS);
  }

  #start(): void {
    this.storage.sql.run(`INSERT INTO key_pool_config (singleton, size) VALUES (1, ?) ON CONFLICT (singleton) DO NOTHING`, this.defaultSize);
  }

  #config(): { size: number } | null {
    return this.storage.sql.one<{ size: number }>(`SELECT size FROM key_pool_config`);
  }

  #nextAfter(seq: number): PoolRow | null {
    return this.storage.sql.one<PoolRow>(`SELECT seq, id, kek_id, iv, wrapped, spki FROM key_pool WHERE seq > ? ORDER BY seq LIMIT 1`, seq);
  }

  #available(): number {
    return this.storage.sql.one<{ n: number }>(`SELECT count(*) AS n FROM key_pool`)?.n ?? 0;
  }
}
