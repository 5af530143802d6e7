import { type AcmeAccountRef, type AcmeRequestRefusal, type AcmeBadInput, type AcmeSession, createAccount, generateAccountKey, importAccountKey } from "../acme/index";
import type { Clock } from "../core/clock";
import { type Result, fail, ok } from "../core/result";
import { namedWrapContext, rewrapUnderCurrent, unwrapPrivateKey, wrapPrivateKey } from "../pki/key-wrap";
import { type KeyRefusal, type Keyring, KeyringError } from "../pki/keyring";
import type { Storage } from "../storage/storage";
import type { AcmeCa } from "./acme-config";
import type { KeyRewrap } from "./hostname-keys";

type AccountRow = { ca: string; directory: string; key_id: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer; public_jwk: string; url: string | null };

/**
 * The zone's ACME accounts, one per configured CA (the only writer of
 * `acme_accounts`). The account key is custody material like every private
 * key here: stored only as its AES-GCM wrap under a KEK, bound to the scope
 * and a random key id, and unwrapped only to sign requests to the CA. The
 * key is made and stored before the CA is asked, so a restart between the
 * two asks again with the same key (newAccount answers a known key with its
 * existing account).
 */
export class AcmeAccounts {
  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
  ) {}

  /** The account to use with `ca`: its key unwrapped, its URL (made at the CA when there is none yet). */
  async account(
    session: AcmeSession,
    ca: AcmeCa,
    scope: string,
    keyring: Keyring,
  ): Promise<Result<AcmeAccountRef, KeyRefusal | AcmeRequestRefusal | AcmeBadInput>> {
    let row = this.#row(ca);
    if (!row) {
      const made = await generateAccountKey();
      const keyId = crypto.randomUUID();
      const wrap = await wrapPrivateKey(made.privateKey, keyring, namedWrapContext("acme-account", scope, keyId));
      this.storage.sql.run(
        `INSERT INTO acme_accounts (ca, directory, key_id, kek_id, iv, wrapped, public_jwk, url, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)
         ON CONFLICT (ca) DO NOTHING`,
        ca.name,
        ca.directory,
        keyId,
        wrap.kekId,
        wrap.iv,
        wrap.wrapped,
        JSON.stringify(made.publicJwk),
        this.clock().toISOString(),
      );
      row = this.#row(ca)!;
    }
    let privateKey: CryptoKey;
    try {
      privateKey = await unwrapPrivateKey({ kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped }, "p256v1", keyring, namedWrapContext("acme-account", scope, row.key_id));
    } catch (error) {
      if (error instanceof KeyringError) return fail({ reason: "key_encryption_key_missing", kek_id: row.kek_id });
      console.error(JSON.stringify({ level: "error", event: "acme_account_key_unwrap_failed", ca: ca.name, kek_id: row.kek_id }));
      return fail({ reason: "key_unwrap_failed" });
    }
    const key = await importAccountKey(privateKey, JSON.parse(row.public_jwk) as JsonWebKey);
    if (!key.ok) return key;
    if (row.url !== null) return ok({ key: key.value, url: row.url });
    const account = await createAccount(session, key.value, {
      termsOfServiceAgreed: true,
      ...(ca.eab ? { externalAccountBinding: { kid: ca.eab.kid, hmacKey: ca.eab.hmacKey } } : {}),
    });
    if (!account.ok) return account;
    this.storage.sql.run(`UPDATE acme_accounts SET url = ? WHERE ca = ? AND key_id = ?`, account.value.url, ca.name, row.key_id);
    return ok({ key: key.value, url: account.value.url });
  }

  /** Every KEK id an account key is wrapped under. */
  kekIds(): string[] {
    return this.storage.sql.all<{ kek_id: string }>(`SELECT DISTINCT kek_id FROM acme_accounts`).map((r) => r.kek_id);
  }

  /**
   * The operator's rewrap: every account key not under the current KEK is
   * moved under it. One whose KEK is not configured stays; one whose wrap
   * does not open is erased with its account row (a new account is made at
   * the next order). `record` writes the audit entry in the same transaction.
   */
  async rewrap(scope: string, keyring: Keyring, record: (report: KeyRewrap) => void): Promise<KeyRewrap> {
    const rows = this.storage.sql.all<AccountRow>(
      `SELECT ca, directory, key_id, kek_id, iv, wrapped, public_jwk, url FROM acme_accounts WHERE kek_id != ? ORDER BY ca`,
      keyring.currentId,
    );
    if (rows.length === 0) return { rewrapped: 0, failures: [], remaining: 0, lost: [], from_kek_ids: [] };
    const { moved, failures } = await rewrapUnderCurrent(rows, keyring, (row) => ({ id: row.key_id, keyType: "p256v1", context: namedWrapContext("acme-account", scope, row.key_id) }));
    return this.storage.transaction(() => {
      let rewrapped = 0;
      for (const { row, wrap } of moved) {
        rewrapped += this.storage.sql.run(`UPDATE acme_accounts SET kek_id = ?, iv = ?, wrapped = ? WHERE key_id = ? AND kek_id = ?`, wrap.kekId, wrap.iv, wrap.wrapped, row.key_id, row.kek_id);
      }
      for (const failure of failures.filter((f) => f.reason === "unwrap_failed")) {
        this.storage.sql.run(`UPDATE acme_accounts SET iv = zeroblob(length(iv)), wrapped = zeroblob(length(wrapped)) WHERE key_id = ?`, failure.id);
        this.storage.sql.run(`DELETE FROM acme_accounts WHERE key_id = ?`, failure.id);
      }
      const remaining = this.storage.sql.one<{ n: number }>(`SELECT count(*) AS n FROM acme_accounts WHERE kek_id != ?`, keyring.currentId)?.n ?? 0;
      const report = { rewrapped, failures, remaining, lost: [], from_kek_ids: [...new Set(rows.map((r) => r.kek_id))].sort() };
      record(report);
      return report;
    });
  }

  // The account for this CA at this directory; one made at another directory URL (the operator moved the CA) is dropped.
  #row(ca: AcmeCa): AccountRow | null {
    const row = this.storage.sql.one<AccountRow>(`SELECT ca, directory, key_id, kek_id, iv, wrapped, public_jwk, url FROM acme_accounts WHERE ca = ?`, ca.name);
    if (row && row.directory !== ca.directory) {
      this.storage.sql.run(`UPDATE acme_accounts SET iv = zeroblob(length(iv)), wrapped = zeroblob(length(wrapped)) WHERE ca = ?`, ca.name);
      this.storage.sql.run(`DELETE FROM acme_accounts WHERE ca = ?`, ca.name);
      return null;
    }
    return row;
  }
}
