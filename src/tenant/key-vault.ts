import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import type { TenantCall } from "../core/call";
import { type Result, fail, ok } from "../core/result";
import type { KeyType } from "../pki/csr-input";
import { type WrappedKey, unwrapPrivateKey, wrapContext, wrapPrivateKey } from "../pki/key-wrap";
import { type KeyRefusal, type Keyring, KeyringError } from "../pki/keyring";
import type { CsrNotFound } from "./refusals";
import { KEY_ALGORITHMS } from "../pki/keys";
import { fromPemBlocks } from "../pki/pem";
import type { AuditTrail } from "./audit-trail";
import type { Storage } from "../storage/storage";

/** Why a stored key did not open: its KEK is not configured, or the wrap does not unwrap under it. */
export type UnwrapFailure = "kek_not_configured" | "unwrap_failed";

/** A key a rewrap or a self-check could not open, and why. */
export interface Unopened {
  id: string;
  kek_id: string;
  reason: UnwrapFailure;
}

export interface RewrapReport {
  kek_id: string;
  rewrapped: number;
  /** CSR ids whose wrap did not open: left untouched, for the operator to look at. */
  failed: string[];
  /** Each of `failed`, with its KEK and why it did not open. */
  failures: Unopened[];
  /** Keys still under another KEK, failed ones included. */
  remaining: number;
  /** Pass as `after` to continue past this batch; null when the scan is done. */
  next_after: string | null;
}

export interface KeyCheck {
  id: string;
  kek_id: string;
  ok: boolean;
  /** Why it failed, when it did: the KEK is not configured, the wrap does not unwrap, or the key does not match the CSR. */
  reason?: UnwrapFailure | "key_mismatch";
}

type KeyRow = { key_type: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer };

const why = (error: unknown): UnwrapFailure => (error instanceof KeyringError ? "kek_not_configured" : "unwrap_failed");

/**
 * The scope's private keys, only ever as AES-GCM wraps under the deployment's
 * key-encryption keys. The only writer of `wrapped_keys`; each key is keyed
 * by its CSR's seq and bound (additional data) to the scope and CSR id. The
 * keyring comes from the caller, checked (src/deployment/keyring-gate.ts).
 */
export class KeyVault {
  constructor(
    private readonly storage: Storage,
    private readonly audit: AuditTrail,
  ) {}

  /** Wraps a fresh private key for the CSR `csrId` of scope `scopeName`. */
  wrap(privateKey: CryptoKey, keyring: Keyring, scopeName: string, csrId: string): Promise<WrappedKey> {
    return wrapPrivateKey(privateKey, keyring, wrapContext(scopeName, csrId));
  }

  /** Stores a wrap beside its CSR's row (call inside the CSR's insert transaction). */
  store(seq: number, wrapped: WrappedKey): void {
    this.storage.sql.run(
      `INSERT INTO wrapped_keys (seq, kek_id, iv, wrapped) VALUES (?, ?, ?, ?)`,
      seq,
      wrapped.kekId,
      wrapped.iv,
      wrapped.wrapped,
    );
  }

  /**
   * Destroys a CSR's key (call inside the CSR's delete transaction). The
   * wrap is first overwritten in place with zeros of its own length, so the
   * page SQLite writes for the delete holds no byte of it (a same-size
   * update rewrites the row where it is); older copies of the page may stay
   * in SQLite's write-ahead log until it is reused (docs/keys.md).
   */
  remove(seq: number): void {
    this.storage.sql.run(`UPDATE wrapped_keys SET iv = zeroblob(length(iv)), wrapped = zeroblob(length(wrapped)) WHERE seq = ?`, seq);
    this.storage.sql.run(`DELETE FROM wrapped_keys WHERE seq = ?`, seq);
  }

  /** Every KEK id a stored key is wrapped under. */
  kekIds(): string[] {
    return this.storage.sql.all<{ kek_id: string }>(`SELECT DISTINCT kek_id FROM wrapped_keys`).map((r) => r.kek_id);
  }

  /** Whether one stored key wrapped under `kekId` unwraps with `keyring` (a trial for data older than its KEK's check value). */
  async opens(kekId: string, keyring: Keyring, scopeName: string): Promise<boolean | null> {
    const row = this.storage.sql.one<KeyRow & { csr_id: string }>(
      `SELECT c.id AS csr_id, c.key_type, k.kek_id, k.iv, k.wrapped FROM wrapped_keys k JOIN csrs c ON c.seq = k.seq WHERE k.kek_id = ? LIMIT 1`,
      kekId,
    );
    if (!row) return null;
    try {
      await this.#unwrap(row, keyring, scopeName, row.csr_id, false);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Self-check: the stored wrap unwraps under its KEK and context, and the
   * key signs a fresh challenge that the CSR's own public key verifies. Each
   * run is recorded with its outcome; a failure says why.
   */
  async verify(call: TenantCall, scopeName: string, csrId: string, keyring: Keyring): Promise<Result<KeyCheck, CsrNotFound | KeyRefusal>> {
    const row = this.storage.sql.one<KeyRow & { csr: string }>(
      `SELECT c.key_type, c.csr, k.kek_id, k.iv, k.wrapped FROM csrs c JOIN wrapped_keys k ON k.seq = c.seq WHERE c.id = ?`,
      csrId,
    );
    if (!row) return fail({ reason: "csr_not_found" });
    const algorithm = KEY_ALGORITHMS[row.key_type as KeyType];
    let key: CryptoKey;
    try {
      key = await this.#unwrap(row, keyring, scopeName, csrId, false);
    } catch (error) {
      const reason = why(error);
      const info = reason === "kek_not_configured" ? `key-encryption key ${row.kek_id} is not configured (1501)` : "the key does not unwrap (1506)";
      this.#recordCheck(call, csrId, row.kek_id, false, info);
      return reason === "kek_not_configured" ? fail({ reason: "key_encryption_key_missing", kek_id: row.kek_id }) : ok({ id: csrId, kek_id: row.kek_id, ok: false, reason });
    }
    const der = fromPemBlocks("CERTIFICATE REQUEST", row.csr)![0]!;
    const spki = AsnConvert.serialize(AsnConvert.parse(der, CertificationRequest).certificationRequestInfo.subjectPKInfo);
    const publicKey = await crypto.subtle.importKey("spki", spki, algorithm.import, false, ["verify"]);
    const challenge = crypto.getRandomValues(new Uint8Array(32));
    const signature = await crypto.subtle.sign(algorithm.sign, key, challenge);
    const matches = await crypto.subtle.verify(algorithm.sign, publicKey, signature, challenge);
    this.#recordCheck(call, csrId, row.kek_id, matches, matches ? undefined : "the key does not match the CSR");
    return ok(matches ? { id: csrId, kek_id: row.kek_id, ok: true } : { id: csrId, kek_id: row.kek_id, ok: false, reason: "key_mismatch" });
  }

  #recordCheck(call: TenantCall, csrId: string, kekId: string, passed: boolean, info: string | undefined): void {
    this.audit.record(call, {
      action: "verify",
      resource: { type: "private_key", id: csrId },
      result: passed,
      ...(info === undefined ? {} : { info }),
      metadata: { kek_id: kekId },
    });
  }

  /**
   * Unwraps a CSR's key for sealing to an edge, the one path by which a
   * private key leaves its wrap for anything but signing: the PKCS#8 bytes
   * exist only for the duration of `seal`, which must return ciphertext
   * (src/pki/seal.ts), and are overwritten afterwards. A KEK that is not
   * configured is 1501 naming it; a wrap that does not unwrap is 1506 (and
   * logged by CSR id), never a bare failure.
   */
  async sealKey(scopeName: string, csrId: string, keyring: Keyring, seal: (pkcs8: Uint8Array) => Promise<string>): Promise<Result<string, CsrNotFound | KeyRefusal>> {
    const row = this.storage.sql.one<KeyRow>(
      `SELECT c.key_type, k.kek_id, k.iv, k.wrapped FROM csrs c JOIN wrapped_keys k ON k.seq = c.seq WHERE c.id = ?`,
      csrId,
    );
    if (!row) return fail({ reason: "csr_not_found" });
    let pkcs8: Uint8Array;
    try {
      const key = await this.#unwrap(row, keyring, scopeName, csrId, true);
      pkcs8 = new Uint8Array((await crypto.subtle.exportKey("pkcs8", key)) as ArrayBuffer);
    } catch (error) {
      if (why(error) === "kek_not_configured") return fail({ reason: "key_encryption_key_missing", kek_id: row.kek_id });
      console.error(JSON.stringify({ level: "error", event: "key_unwrap_failed", csr_id: csrId, kek_id: row.kek_id }));
      return fail({ reason: "key_unwrap_failed" });
    }
    try {
      return ok(await seal(pkcs8));
    } finally {
      pkcs8.fill(0);
    }
  }

  /**
   * Re-wraps up to `limit` keys that are not under the current KEK, in
   * csr_id order after `after`. The batch is unwrapped and re-wrapped first;
   * then one transaction writes every new wrap, each guarded by its old KEK
   * id (a key moved or deleted meanwhile is skipped), together with the
   * batch's audit entry. An interrupted run has written nothing of its batch
   * and resumes from the cursor; a wrap that fails to unwrap is never
   * touched, and the report says why it did not open.
   */
  async rewrap(call: TenantCall, scopeName: string, keyring: Keyring, limit: number, after: string): Promise<RewrapReport> {
    const current = keyring.currentId;
    const rows = this.storage.sql.all<KeyRow & { csr_id: string; seq: number }>(
      `SELECT c.id AS csr_id, c.seq, c.key_type, k.kek_id, k.iv, k.wrapped FROM csrs c JOIN wrapped_keys k ON k.seq = c.seq
       WHERE k.kek_id != ? AND c.id > ? ORDER BY c.id LIMIT ?`,
      current,
      after,
      limit,
    );
    const fresh: Array<{ seq: number; oldKek: string; wrap: WrappedKey }> = [];
    const failures: Unopened[] = [];
    for (const row of rows) {
      try {
        const key = await this.#unwrap(row, keyring, scopeName, row.csr_id, true);
        fresh.push({ seq: row.seq, oldKek: row.kek_id, wrap: await wrapPrivateKey(key, keyring, wrapContext(scopeName, row.csr_id)) });
      } catch (error) {
        failures.push({ id: row.csr_id, kek_id: row.kek_id, reason: why(error) });
      }
    }
    const failed = failures.map((f) => f.id);
    const nextAfter = rows.length === limit ? rows[rows.length - 1]!.csr_id : null;
    return this.storage.transaction((): RewrapReport => {
      let rewrapped = 0;
      for (const { seq, oldKek, wrap } of fresh) {
        // rowsWritten also counts index entries: any write means this key moved.
        const written = this.storage.sql.run(
          `UPDATE wrapped_keys SET kek_id = ?, iv = ?, wrapped = ? WHERE seq = ? AND kek_id = ?`,
          wrap.kekId,
          wrap.iv,
          wrap.wrapped,
          seq,
          oldKek,
        );
        if (written > 0) rewrapped++;
      }
      const remaining =
        this.storage.sql.one<{ n: number }>(`SELECT count(*) AS n FROM wrapped_keys WHERE kek_id != ?`, current)?.n ?? 0;
      if (rows.length > 0) {
        this.audit.record(call, {
          action: "rewrap",
          resource: { type: "private_key", id: null },
          result: failed.length === 0,
          ...(failed.length === 0 ? {} : { info: `${failed.length} key(s) did not unwrap and were left as they were` }),
          metadata: { kek_id: current, from_kek_ids: [...new Set(rows.map((r) => r.kek_id))].sort(), rewrapped, failed, failures, remaining },
        });
      }
      return { kek_id: current, rewrapped, failed, failures, remaining, next_after: nextAfter };
    });
  }

  #unwrap(row: KeyRow, keyring: Keyring, scopeName: string, csrId: string, extractable: boolean): Promise<CryptoKey> {
    return unwrapPrivateKey(
      { kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped },
      row.key_type as KeyType,
      keyring,
      wrapContext(scopeName, csrId),
      { extractable },
    );
  }
}
