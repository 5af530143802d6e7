import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import type { TenantCall } from "../core/call";
import { type Result, fail, ok } from "../core/result";
import type { KeyType } from "../pki/csr-input";
import {
  type Keyring,
  KeyringError,
  type WrappedKey,
  loadKeyring,
  unwrapPrivateKey,
  wrapContext,
  wrapPrivateKey,
} from "../pki/key-wrap";
import { KEY_ALGORITHMS } from "../pki/keys";
import { fromPemBlocks } from "../pki/pem";
import type { AuditTrail } from "./audit-trail";
import type { Storage } from "../storage/storage";

export interface RewrapReport {
  kek_id: string;
  rewrapped: number;
  /** CSR ids whose wrap did not unwrap: left untouched, for the operator to look at. */
  failed: string[];
  /** Keys still under another KEK, failed ones included. */
  remaining: number;
  /** Pass as `after` to continue past this batch; null when the scan is done. */
  next_after: string | null;
}

export interface KeyCheck {
  id: string;
  kek_id: string;
  ok: boolean;
}

/**
 * The scope's private keys, only ever as AES-GCM wraps under the deployment's
 * key-encryption keys. The only writer of `wrapped_keys`; each key is keyed
 * by its CSR's seq and bound (additional data) to the scope and CSR id.
 */
export class KeyVault {
  #keyring: Promise<Keyring> | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly kekSecret: () => string | undefined,
    private readonly audit: AuditTrail,
  ) {}

  /** The key-encryption keys, loaded once; 1501 when the secret is missing or malformed. */
  async keyring(): Promise<Result<Keyring>> {
    this.#keyring ??= loadKeyring(this.kekSecret());
    try {
      return ok(await this.#keyring);
    } catch (error) {
      this.#keyring = null;
      if (error instanceof KeyringError) {
        console.error(JSON.stringify({ level: "error", event: "keyring_error", message: error.message }));
        return fail("key_encryption_unavailable");
      }
      throw error;
    }
  }

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

  /** Destroys a CSR's key (call inside the CSR's delete transaction). */
  remove(seq: number): void {
    this.storage.sql.run(`DELETE FROM wrapped_keys WHERE seq = ?`, seq);
  }

  /**
   * Self-check: the stored wrap unwraps under its KEK and context, and the
   * key signs a fresh challenge that the CSR's own public key verifies. Each
   * run is recorded with its outcome.
   */
  async verify(call: TenantCall, scopeName: string, csrId: string): Promise<Result<KeyCheck>> {
    const row = this.storage.sql.one<{ key_type: string; csr: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer }>(
      `SELECT c.key_type, c.csr, k.kek_id, k.iv, k.wrapped FROM csrs c JOIN wrapped_keys k ON k.seq = c.seq WHERE c.id = ?`,
      csrId,
    );
    if (!row) return fail("csr_not_found");
    const keyring = await this.keyring();
    if (!keyring.ok) return keyring;
    const keyType = row.key_type as KeyType;
    const algorithm = KEY_ALGORITHMS[keyType];
    let matches = false;
    try {
      const key = await unwrapPrivateKey(
        { kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped },
        keyType,
        keyring.value,
        wrapContext(scopeName, csrId),
      );
      const der = fromPemBlocks("CERTIFICATE REQUEST", row.csr)![0]!;
      const spki = AsnConvert.serialize(AsnConvert.parse(der, CertificationRequest).certificationRequestInfo.subjectPKInfo);
      const publicKey = await crypto.subtle.importKey("spki", spki, algorithm.import, false, ["verify"]);
      const challenge = crypto.getRandomValues(new Uint8Array(32));
      const signature = await crypto.subtle.sign(algorithm.sign, key, challenge);
      matches = await crypto.subtle.verify(algorithm.sign, publicKey, signature, challenge);
    } catch (error) {
      if (error instanceof KeyringError) {
        this.#recordCheck(call, csrId, row.kek_id, false, `key-encryption key ${row.kek_id} is not configured (1501)`);
        return fail("key_encryption_unavailable");
      }
      matches = false;
    }
    this.#recordCheck(call, csrId, row.kek_id, matches, matches ? undefined : "the key does not unwrap or does not match the CSR");
    return ok({ id: csrId, kek_id: row.kek_id, ok: matches });
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
   * (src/pki/seal.ts), and are overwritten afterwards. A wrap that does not
   * unwrap is logged by CSR id and answered as an internal error.
   */
  async sealKey(scopeName: string, csrId: string, seal: (pkcs8: Uint8Array) => Promise<string>): Promise<Result<string>> {
    const row = this.storage.sql.one<{ key_type: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer }>(
      `SELECT c.key_type, k.kek_id, k.iv, k.wrapped FROM csrs c JOIN wrapped_keys k ON k.seq = c.seq WHERE c.id = ?`,
      csrId,
    );
    if (!row) return fail("csr_not_found");
    const keyring = await this.keyring();
    if (!keyring.ok) return keyring;
    let pkcs8: Uint8Array;
    try {
      const key = await unwrapPrivateKey(
        { kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped },
        row.key_type as KeyType,
        keyring.value,
        wrapContext(scopeName, csrId),
        { extractable: true },
      );
      pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key) as ArrayBuffer);
    } catch (error) {
      if (error instanceof KeyringError) return fail("key_encryption_unavailable");
      console.error(JSON.stringify({ level: "error", event: "key_unwrap_failed", csr_id: csrId }));
      return fail("internal");
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
   * and resumes from the cursor; a wrap that fails to unwrap is never touched.
   */
  async rewrap(call: TenantCall, scopeName: string, limit: number, after: string): Promise<Result<RewrapReport>> {
    const keyring = await this.keyring();
    if (!keyring.ok) return keyring;
    const current = keyring.value.currentId;
    const rows = this.storage.sql.all<{ csr_id: string; seq: number; key_type: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer }>(
      `SELECT c.id AS csr_id, c.seq, c.key_type, k.kek_id, k.iv, k.wrapped FROM csrs c JOIN wrapped_keys k ON k.seq = c.seq
       WHERE k.kek_id != ? AND c.id > ? ORDER BY c.id LIMIT ?`,
      current,
      after,
      limit,
    );
    const fresh: Array<{ seq: number; oldKek: string; wrap: WrappedKey }> = [];
    const failed: string[] = [];
    for (const row of rows) {
      const context = wrapContext(scopeName, row.csr_id);
      try {
        const key = await unwrapPrivateKey(
          { kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped },
          row.key_type as KeyType,
          keyring.value,
          context,
          { extractable: true },
        );
        fresh.push({ seq: row.seq, oldKek: row.kek_id, wrap: await wrapPrivateKey(key, keyring.value, context) });
      } catch {
        failed.push(row.csr_id);
      }
    }
    const nextAfter = rows.length === limit ? rows[rows.length - 1]!.csr_id : null;
    return this.storage.transaction((): Result<RewrapReport> => {
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
          metadata: { kek_id: current, from_kek_ids: [...new Set(rows.map((r) => r.kek_id))].sort(), rewrapped, failed, remaining },
        });
      }
      return ok({ kek_id: current, rewrapped, failed, remaining, next_after: nextAfter });
    });
  }
}
