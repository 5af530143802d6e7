import type { KeyType } from "../pki/csr-input";
import { type RewrapFailure, type WrappedKey, namedWrapContext, rewrapUnderCurrent, unwrapPrivateKey, wrapPrivateKey } from "../pki/key-wrap";
import { type KeyRefusal, type Keyring, KeyringError } from "../pki/keyring";
import { KEY_ALGORITHMS, generateKeyPair } from "../pki/keys";
import { type Result, fail, ok } from "../core/result";
import type { Clock } from "../core/clock";
import type { Storage } from "../storage/storage";
import type { HostnameNotFound } from "./hostname-store";

type KeyRow = { key_id: string; key_type: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer; spki: ArrayBuffer };

/** What a rewrap of managed keys or ACME account keys did: `lost` names hostnames whose current key did not open (erased). */
export interface KeyRewrap {
  rewrapped: number;
  failures: RewrapFailure[];
  remaining: number;
  lost: string[];
  from_kek_ids: string[];
}

/**
 * The private keys of managed custom hostnames (the only writer of
 * `hostname_keys`), each only as its AES-GCM wrap under a KEK, bound to the
 * scope and a random key id. A hostname has one `current` key (the one its
 * certificate is for) and, while an order for a renewal with a fresh key is
 * under way, a `pending` one, for each key type it has (P-256, and RSA-2048
 * with dual certificates), which becomes current in the transaction that
 * stores the new certificate. A key leaves its wrap only to sign a CSR, or
 * sealed to an edge.
 */
export class HostnameKeys {
  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
  ) {}

  /**
   * The pending key of a hostname, made (and stored) when there is none, as
   * a key pair whose private half is a non-extractable signing key: what a
   * CSR for an order is signed with. Call outside a transaction (it awaits).
   */
  async pending(hostnameId: string, scope: string, keyring: Keyring, keyType: KeyType = "p256v1"): Promise<Result<CryptoKeyPair, KeyRefusal | HostnameNotFound>> {
    const held = this.#row(hostnameId, "pending", keyType);
    if (held) return this.#pair(held, scope, keyring);
    const keys = await generateKeyPair(keyType);
    const keyId = crypto.randomUUID();
    const wrap = await wrapPrivateKey(keys.privateKey, keyring, namedWrapContext("hostname-key", scope, keyId));
    const spki = (await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer;
    // Stored only while the hostname exists (a delete during the generation leaves no orphan key behind).
    this.storage.sql.run(
      `INSERT INTO hostname_keys (key_id, custom_hostname_id, state, key_type, kek_id, iv, wrapped, spki, created_at)
       SELECT ?, ?, 'pending', ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM custom_hostnames WHERE id = ?)
       ON CONFLICT (custom_hostname_id, key_type, state) DO NOTHING`,
      keyId,
      hostnameId,
      keyType,
      wrap.kekId,
      wrap.iv,
      wrap.wrapped,
      spki,
      this.clock().toISOString(),
      hostnameId,
    );
    // Another run may have made one meanwhile: the stored one is the pending key.
    const stored = this.#row(hostnameId, "pending", keyType);
    return stored ? this.#pair(stored, scope, keyring) : fail({ reason: "hostname_not_found" });
  }

  /** The current key of a hostname as a key pair (a renewal that keeps its key signs its CSR with it), or null when it has none. */
  async current(hostnameId: string, scope: string, keyring: Keyring, keyType: KeyType = "p256v1"): Promise<Result<CryptoKeyPair, KeyRefusal> | null> {
    const held = this.#row(hostnameId, "current", keyType);
    return held ? this.#pair(held, scope, keyring) : null;
  }

  /**
   * Makes the pending key current, erasing the one it replaces (call inside
   * the transaction that stores the certificate). Without a pending key (a
   * renewal that kept its key) nothing changes.
   */
  promote(hostnameId: string, keyType: KeyType = "p256v1"): void {
    if (!this.#row(hostnameId, "pending", keyType)) return;
    const old = this.#row(hostnameId, "current", keyType);
    if (old) this.#erase(old.key_id);
    this.storage.sql.run(`UPDATE hostname_keys SET state = 'current' WHERE custom_hostname_id = ? AND key_type = ? AND state = 'pending'`, hostnameId, keyType);
  }

  /** Erases a hostname's pending key, if any (a renewal that keeps the current key: nothing may replace it when the certificate arrives). */
  dropPending(hostnameId: string, keyType: KeyType = "p256v1"): void {
    const pending = this.#row(hostnameId, "pending", keyType);
    if (pending) this.#erase(pending.key_id);
  }

  /** Erases every key of one type of a hostname (its RSA twin is no longer wanted). */
  removeType(hostnameId: string, keyType: KeyType): void {
    const rows = this.storage.sql.all<{ key_id: string }>(`SELECT key_id FROM hostname_keys WHERE custom_hostname_id = ? AND key_type = ?`, hostnameId, keyType);
    for (const { key_id } of rows) this.#erase(key_id);
  }

  /** Erases every key of a hostname (its deletion). */
  removeAll(hostnameId: string): void {
    for (const { key_id } of this.storage.sql.all<{ key_id: string }>(`SELECT key_id FROM hostname_keys WHERE custom_hostname_id = ?`, hostnameId)) this.#erase(key_id);
  }

  /** Every KEK id a key is wrapped under. */
  kekIds(): string[] {
    return this.storage.sql.all<{ kek_id: string }>(`SELECT DISTINCT kek_id FROM hostname_keys`).map((r) => r.kek_id);
  }

  /**
   * The operator's rewrap: every key not under the current KEK is moved
   * under it. A key whose KEK is not configured stays (and keeps that KEK in
   * use); one whose wrap does not open is erased, since nothing can use it:
   * a pending one is made again by its order, and a current one's hostname
   * is named in `lost` (its certificate must be renewed with a fresh key).
   * `record` writes the audit entry, in the transaction of the change.
   */
  async rewrap(scope: string, keyring: Keyring, record: (report: KeyRewrap) => void): Promise<KeyRewrap> {
    const rows = this.storage.sql.all<KeyRow & { custom_hostname_id: string; state: string }>(
      `SELECT key_id, custom_hostname_id, state, key_type, kek_id, iv, wrapped, spki FROM hostname_keys WHERE kek_id != ? ORDER BY key_id`,
      keyring.currentId,
    );
    if (rows.length === 0) return { rewrapped: 0, failures: [], remaining: 0, lost: [], from_kek_ids: [] };
    const { moved, failures } = await rewrapUnderCurrent(rows, keyring, (row) => ({
      id: row.key_id,
      keyType: row.key_type as KeyType,
      context: namedWrapContext("hostname-key", scope, row.key_id),
    }));
    return this.storage.transaction(() => {
      let rewrapped = 0;
      for (const { row, wrap } of moved) {
        rewrapped += this.storage.sql.run(`UPDATE hostname_keys SET kek_id = ?, iv = ?, wrapped = ? WHERE key_id = ? AND kek_id = ?`, wrap.kekId, wrap.iv, wrap.wrapped, row.key_id, row.kek_id);
      }
      const lost: string[] = [];
      for (const failure of failures.filter((f) => f.reason === "unwrap_failed")) {
        const row = rows.find((r) => r.key_id === failure.id)!;
        if (row.state === "current") lost.push(row.custom_hostname_id);
        this.#erase(row.key_id);
      }
      const remaining = this.storage.sql.one<{ n: number }>(`SELECT count(*) AS n FROM hostname_keys WHERE kek_id != ?`, keyring.currentId)?.n ?? 0;
      const report = { rewrapped, failures, remaining, lost, from_kek_ids: [...new Set(rows.map((r) => r.kek_id))].sort() };
      record(report);
      return report;
    });
  }

  /**
   * Unwraps a hostname's current key for sealing to an edge: the PKCS#8
   * bytes exist only during `seal` and are overwritten afterwards (as the
   * key vault does for CSR keys).
   */
  async sealKey(
    scope: string,
    hostnameId: string,
    keyring: Keyring,
    seal: (pkcs8: Uint8Array) => Promise<string>,
    keyType: KeyType = "p256v1",
  ): Promise<Result<string, HostnameNotFound | KeyRefusal>> {
    const row = this.#row(hostnameId, "current", keyType);
    if (!row) return fail({ reason: "hostname_not_found" });
    let pkcs8: Uint8Array;
    try {
      const key = await this.#unwrap(row, scope, keyring, true);
      pkcs8 = new Uint8Array((await crypto.subtle.exportKey("pkcs8", key)) as ArrayBuffer);
    } catch (error) {
      if (error instanceof KeyringError) return fail({ reason: "key_encryption_key_missing", kek_id: row.kek_id });
      console.error(JSON.stringify({ level: "error", event: "hostname_key_unwrap_failed", custom_hostname_id: hostnameId, kek_id: row.kek_id }));
      return fail({ reason: "key_unwrap_failed" });
    }
    try {
      return ok(await seal(pkcs8));
    } finally {
      pkcs8.fill(0);
    }
  }

  async #pair(row: KeyRow, scope: string, keyring: Keyring): Promise<Result<CryptoKeyPair, KeyRefusal>> {
    try {
      const privateKey = await this.#unwrap(row, scope, keyring, false);
      const publicKey = await crypto.subtle.importKey("spki", row.spki, KEY_ALGORITHMS[row.key_type as KeyType].import, true, ["verify"]);
      return ok({ privateKey, publicKey });
    } catch (error) {
      if (error instanceof KeyringError) return fail({ reason: "key_encryption_key_missing", kek_id: row.kek_id });
      return fail({ reason: "key_unwrap_failed" });
    }
  }

  #unwrap(row: KeyRow, scope: string, keyring: Keyring, extractable: boolean): Promise<CryptoKey> {
    const stored: WrappedKey = { kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped };
    return unwrapPrivateKey(stored, row.key_type as KeyType, keyring, namedWrapContext("hostname-key", scope, row.key_id), { extractable });
  }

  #row(hostnameId: string, state: "pending" | "current", keyType: KeyType): KeyRow | null {
    return this.storage.sql.one<KeyRow>(
      `SELECT key_id, key_type, kek_id, iv, wrapped, spki FROM hostname_keys WHERE custom_hostname_id = ? AND key_type = ? AND state = ?`,
      hostnameId,
      keyType,
      state,
    );
  }

  // Overwrites a wrap in place with zeros, then deletes it (as the key vault does).
  #erase(keyId: string): void {
    this.storage.sql.run(`UPDATE hostname_keys SET iv = zeroblob(length(iv)), wrapped = zeroblob(length(wrapped)) WHERE key_id = ?`, keyId);
    this.storage.sql.run(`DELETE FROM hostname_keys WHERE key_id = ?`, keyId);
  }
}
