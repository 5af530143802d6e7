import { DurableObject } from "cloudflare:workers";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { type Result, fail, ok } from "../http/errors";
import { checkCertificate } from "../pki/certificate-check";
import { buildCsr } from "../pki/csr-builder";
import type { CsrInput, KeyType } from "../pki/csr-input";
import {
  type Keyring,
  KeyringError,
  type WrappedKey,
  loadKeyring,
  unwrapPrivateKey,
  wrapContext,
  wrapPrivateKey,
} from "../pki/key-wrap";
import { KEY_ALGORITHMS, generateKeyPair } from "../pki/keys";
import { fromPemBlocks } from "../pki/pem";
import {
  CSR_COLUMNS,
  CSR_COLUMN_NAMES,
  type CsrRecord,
  type CsrRow,
  type JsonText,
  type ListQuery,
  type Page,
  jsonArray,
  recordJson,
  toRecord,
} from "./records";
import {
  CERTIFICATE_COLUMNS,
  type CertificateRecord,
  type CertificateRow,
  type CertificateUpload,
  toCertificateRecord,
} from "./certificate-records";
import { readPage } from "./paging";
import { migrate } from "./schema";
import { type Scope, scopeName } from "./scope";
import { Sql } from "./sql";

const CSR_ORDERS: readonly string[] = ["name", "account_tag", "created_at"];

export interface Entitlement {
  granted: boolean;
  quota: number;
}

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
 * One account's or zone's custom CSRs: metadata and wrapped private keys in
 * this object's SQLite storage. Keys are generated, used and wrapped here and
 * nowhere else. Every public method is an RPC entry point and returns a
 * tagged Result, since thrown errors do not cross RPC intact.
 */
export class TenantStore extends DurableObject<Env> {
  readonly #sql: Sql;
  #keyring: Promise<Keyring> | null = null;
  #scope: string | null = null;
  // This object is the only writer of its entitlement row, so a copy in
  // memory stays true; it is dropped whenever the row is written.
  #entitlementCache: Entitlement | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.#sql = new Sql(ctx.storage.sql);
    migrate(this.#sql, (fn) => ctx.storage.transactionSync(fn));
  }

  /** Generates a key and CSR for a validated request, within the scope's entitlement. */
  async createCsr(scope: Scope, input: Result<CsrInput>): Promise<Result<CsrRecord>> {
    const name = this.#bind(scope);
    const entitlement = this.#entitlement();
    // Entitlement before the body, as Cloudflare orders its checks.
    if (!entitlement.granted) return fail("not_entitled");
    if (!input.ok) return input;
    if (this.#count("csrs") >= entitlement.quota) return fail("no_quota");

    const keyring = await this.#loadKeyring();
    if (!keyring.ok) return keyring;
    const request = input.value;
    const keys = await generateKeyPair(request.key_type);
    const csr = await buildCsr(request, keys);
    const id = crypto.randomUUID();
    const wrapped = await wrapPrivateKey(keys.privateKey, keyring.value, wrapContext(name, id));

    // The quota is checked again inside the transaction: creates that were
    // generating keys concurrently cannot overshoot it.
    return this.ctx.storage.transactionSync((): Result<CsrRecord> => {
      if (this.#count("csrs") >= this.#entitlement().quota) return fail("no_quota");
      const row: CsrRow = {
        id,
        created_at: new Date().toISOString(),
        key_type: request.key_type,
        // The account's CSRs carry its tag; a zone's have none (no zone -> account mapping here).
        account_tag: scope.kind === "accounts" ? scope.id : null,
        common_name: request.common_name,
        country: request.country,
        csr,
        description: request.description,
        locality: request.locality,
        name: request.name,
        organization: request.organization,
        organizational_unit: request.organizational_unit,
        sans: JSON.stringify(request.sans),
        state: request.state,
      };
      const { seq } = this.#sql.one<{ seq: number }>(
        `INSERT INTO csrs (${CSR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
        ...CSR_COLUMN_NAMES.map((column) => row[column]),
      )!;
      this.#sql.run(
        `INSERT INTO wrapped_keys (seq, kek_id, iv, wrapped) VALUES (?, ?, ?, ?)`,
        seq,
        wrapped.kekId,
        wrapped.iv,
        wrapped.wrapped,
      );
      this.#bump("csrs", 1);
      return ok(toRecord(row));
    });
  }

  /** One CSR by id, as the API's JSON. */
  getCsr(scope: Scope, id: string): Result<JsonText> {
    this.#bind(scope);
    const row = this.#sql.raw(`SELECT ${CSR_COLUMNS} FROM csrs WHERE id = ?`, id)[0];
    return row ? ok(recordJson(row)) : fail("csr_not_found");
  }

  /** One page of CSRs in the requested order, as the API's JSON array. */
  listCsrs(scope: Scope, query: ListQuery): Result<Page<JsonText>> {
    this.#bind(scope);
    // The order is spliced into SQL: only the indexed columns may pass.
    if (!CSR_ORDERS.includes(query.order)) return fail("invalid_query", { detail: "order is not supported" });
    const total = this.#count("csrs");
    const rows = readPage((statement, ...params) => this.#sql.raw(statement, ...params), {
      table: "csrs",
      columns: CSR_COLUMNS,
      // Every row of an object has the same account_tag: its order is the tie-break's.
      order: query.order === "account_tag" ? "seq" : query.order,
      direction: query.direction,
      page: query.page,
      perPage: query.per_page,
      total,
    });
    return ok({ items: jsonArray(rows.map(recordJson)), count: rows.length, total });
  }

  /** Deletes a CSR and its wrapped key together. */
  deleteCsr(scope: Scope, id: string): Result<{ id: string }> {
    this.#bind(scope);
    return this.ctx.storage.transactionSync((): Result<{ id: string }> => {
      const row = this.#sql.one<{ seq: number }>(`SELECT seq FROM csrs WHERE id = ?`, id);
      if (!row) return fail("csr_not_found");
      if (this.#sql.one(`SELECT 1 AS found FROM certificates WHERE custom_csr_id = ? LIMIT 1`, id)) return fail("csr_in_use");
      this.#sql.run(`DELETE FROM wrapped_keys WHERE seq = ?`, row.seq);
      this.#sql.run(`DELETE FROM csrs WHERE seq = ?`, row.seq);
      this.#bump("csrs", -1);
      return ok({ id });
    });
  }

  /**
   * Installs a CA-signed certificate for one of this zone's CSRs. The check
   * (parse, key match, validity, chain) runs first; the row is written in a
   * transaction that finds the CSR still there, and from then on the CSR
   * cannot be deleted (1420) until the certificate is.
   */
  async uploadCertificate(scope: Scope, upload: CertificateUpload): Promise<Result<CertificateRecord>> {
    this.#bind(scope);
    const csr = this.#sql.one<{ csr: string }>(`SELECT csr FROM csrs WHERE id = ?`, upload.custom_csr_id);
    if (!csr) return fail("csr_not_found", { pointer: "/custom_csr_id" });
    const checked = await checkCertificate(upload.certificate, csr.csr, new Date());
    if (!checked.ok) return checked;
    const id = crypto.randomUUID();
    return this.ctx.storage.transactionSync((): Result<CertificateRecord> => {
      if (!this.#sql.one(`SELECT 1 AS found FROM csrs WHERE id = ?`, upload.custom_csr_id)) {
        return fail("csr_not_found", { pointer: "/custom_csr_id" });
      }
      const now = new Date().toISOString();
      this.#sql.run(
        `INSERT INTO certificates (id, custom_csr_id, certificate, hosts, issuer, signature, bundle_method, priority,
           expires_on, uploaded_on, modified_on)
         VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)`,
        id,
        upload.custom_csr_id,
        checked.value.pem,
        JSON.stringify(checked.value.hosts),
        checked.value.issuer,
        checked.value.signature,
        upload.bundle_method,
        checked.value.expires_on,
        now,
        now,
      );
      this.#bump("certificates", 1);
      return ok(this.#certificate(scope, id)!);
    });
  }

  getCertificate(scope: Scope, id: string): Result<CertificateRecord> {
    this.#bind(scope);
    const record = this.#certificate(scope, id);
    return record ? ok(record) : fail("certificate_not_found");
  }

  /** One page of certificates in upload order. */
  listCertificates(scope: Scope, query: Pick<ListQuery, "page" | "per_page" | "direction">): Result<Page<JsonText>> {
    this.#bind(scope);
    const total = this.#count("certificates");
    const rows = readPage((statement, ...params) => this.#sql.all<CertificateRow>(statement, ...params), {
      table: "certificates",
      columns: CERTIFICATE_COLUMNS,
      order: "uploaded_on",
      direction: query.direction,
      page: query.page,
      perPage: query.per_page,
      total,
    });
    const now = Date.now();
    const items = rows.map((row) => toCertificateRecord(row, scope.id, now));
    return ok({ items: JSON.stringify(items) as JsonText, count: items.length, total });
  }

  /** Deletes a certificate; its CSR becomes deletable again. */
  deleteCertificate(scope: Scope, id: string): Result<{ id: string }> {
    this.#bind(scope);
    return this.ctx.storage.transactionSync((): Result<{ id: string }> => {
      if (this.#sql.run(`DELETE FROM certificates WHERE id = ?`, id) === 0) return fail("certificate_not_found");
      this.#bump("certificates", -1);
      return ok({ id });
    });
  }

  /**
   * Self-check: the stored wrap unwraps under its KEK and context, and the
   * key signs a fresh challenge that the CSR's own public key verifies.
   */
  async verifyCsrKey(scope: Scope, id: string): Promise<Result<KeyCheck>> {
    const name = this.#bind(scope);
    const row = this.#sql.one<{ key_type: string; csr: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer }>(
      `SELECT c.key_type, c.csr, k.kek_id, k.iv, k.wrapped FROM csrs c JOIN wrapped_keys k ON k.seq = c.seq WHERE c.id = ?`,
      id,
    );
    if (!row) return fail("csr_not_found");
    const keyring = await this.#loadKeyring();
    if (!keyring.ok) return keyring;
    const keyType = row.key_type as KeyType;
    const algorithm = KEY_ALGORITHMS[keyType];
    let matches = false;
    try {
      const key = await unwrapPrivateKey(
        { kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped },
        keyType,
        keyring.value,
        wrapContext(name, id),
      );
      const der = fromPemBlocks("CERTIFICATE REQUEST", row.csr)![0]!;
      const spki = AsnConvert.serialize(AsnConvert.parse(der, CertificationRequest).certificationRequestInfo.subjectPKInfo);
      const publicKey = await crypto.subtle.importKey("spki", spki, algorithm.import, false, ["verify"]);
      const challenge = crypto.getRandomValues(new Uint8Array(32));
      const signature = await crypto.subtle.sign(algorithm.sign, key, challenge);
      matches = await crypto.subtle.verify(algorithm.sign, publicKey, signature, challenge);
    } catch (error) {
      if (error instanceof KeyringError) return fail("key_encryption_unavailable");
      matches = false;
    }
    return ok({ id, kek_id: row.kek_id, ok: matches });
  }

  /**
   * Re-wraps up to `limit` keys that are not under the current KEK, in
   * csr_id order after `after`. Each key is written in its own statement,
   * guarded by its old KEK id, so an interrupted run loses nothing and
   * resumes with the cursor; a wrap that fails to unwrap is never touched.
   */
  async rewrapKeys(scope: Scope, limit: number, after: string): Promise<Result<RewrapReport>> {
    const name = this.#bind(scope);
    const keyring = await this.#loadKeyring();
    if (!keyring.ok) return keyring;
    const current = keyring.value.currentId;
    const rows = this.#sql.all<{ csr_id: string; seq: number; key_type: string; kek_id: string; iv: ArrayBuffer; wrapped: ArrayBuffer }>(
      `SELECT c.id AS csr_id, c.seq, c.key_type, k.kek_id, k.iv, k.wrapped FROM csrs c JOIN wrapped_keys k ON k.seq = c.seq
       WHERE k.kek_id != ? AND c.id > ? ORDER BY c.id LIMIT ?`,
      current,
      after,
      limit,
    );
    let rewrapped = 0;
    const failed: string[] = [];
    for (const row of rows) {
      const context = wrapContext(name, row.csr_id);
      let fresh: WrappedKey;
      try {
        const key = await unwrapPrivateKey(
          { kekId: row.kek_id, iv: row.iv, wrapped: row.wrapped },
          row.key_type as KeyType,
          keyring.value,
          context,
          { extractable: true },
        );
        fresh = await wrapPrivateKey(key, keyring.value, context);
      } catch {
        failed.push(row.csr_id);
        continue;
      }
      // rowsWritten also counts index entries: any write means this key moved.
      const written = this.#sql.run(
        `UPDATE wrapped_keys SET kek_id = ?, iv = ?, wrapped = ? WHERE seq = ? AND kek_id = ?`,
        fresh.kekId,
        fresh.iv,
        fresh.wrapped,
        row.seq,
        row.kek_id,
      );
      if (written > 0) rewrapped++;
    }
    const remaining =
      this.#sql.one<{ n: number }>(`SELECT count(*) AS n FROM wrapped_keys WHERE kek_id != ?`, current)?.n ?? 0;
    const nextAfter = rows.length === limit ? rows[rows.length - 1]!.csr_id : null;
    return ok({ kek_id: current, rewrapped, failed, remaining, next_after: nextAfter });
  }

  /** What this scope holds, and the size of its database (for operators and the benchmark). */
  getStats(scope: Scope): Result<{ csrs: number; certificates: number; database_bytes: number }> {
    this.#bind(scope);
    return ok({
      csrs: this.#count("csrs"),
      certificates: this.#count("certificates"),
      database_bytes: this.ctx.storage.sql.databaseSize,
    });
  }

  /** The entitlement in force for this scope. */
  getEntitlement(scope: Scope): Result<Entitlement & { used: number }> {
    this.#bind(scope);
    return ok({ ...this.#entitlement(), used: this.#count("csrs") });
  }

  /** Sets this scope's entitlement (admin only; the Worker checks the admin secret). */
  setEntitlement(scope: Scope, entitlement: Entitlement): Result<Entitlement & { used: number }> {
    this.#bind(scope);
    this.#sql.run(
      `INSERT INTO entitlement (singleton, granted, quota) VALUES (1, ?, ?)
       ON CONFLICT (singleton) DO UPDATE SET granted = excluded.granted, quota = excluded.quota`,
      entitlement.granted ? 1 : 0,
      entitlement.quota,
    );
    this.#entitlementCache = null;
    return this.getEntitlement(scope);
  }

  // An object serves exactly one scope; a call naming another is a routing
  // bug, and must not read or write this tenant's data.
  #bind(scope: Scope): string {
    const name = scopeName(scope);
    if (this.#scope === null) {
      const stored = this.#sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'scope'`)?.value;
      if (stored === undefined) this.#sql.run(`INSERT INTO meta (key, value) VALUES ('scope', ?)`, name);
      this.#scope = stored ?? name;
    }
    if (this.#scope !== name) throw new Error("Durable Object called for a scope it does not hold");
    return name;
  }

  #certificate(scope: Scope, id: string): CertificateRecord | null {
    const row = this.#sql.one<CertificateRow>(`SELECT ${CERTIFICATE_COLUMNS} FROM certificates WHERE id = ?`, id);
    return row ? toCertificateRecord(row, scope.id, Date.now()) : null;
  }

  #count(counter: string): number {
    return this.#sql.one<{ value: number }>(`SELECT value FROM counters WHERE name = ?`, counter)?.value ?? 0;
  }

  #bump(counter: string, by: number): void {
    this.#sql.run(`UPDATE counters SET value = value + ? WHERE name = ?`, by, counter);
  }

  #entitlement(): Entitlement {
    this.#entitlementCache ??= this.#readEntitlement();
    return this.#entitlementCache;
  }

  #readEntitlement(): Entitlement {
    const row = this.#sql.one<{ granted: number; quota: number }>(`SELECT granted, quota FROM entitlement`);
    if (row) return { granted: row.granted === 1, quota: row.quota };
    const quota = Number.parseInt(this.env.DEFAULT_CSR_QUOTA, 10);
    return { granted: this.env.DEFAULT_CSR_ACCESS === "granted", quota: Number.isFinite(quota) ? quota : 0 };
  }

  async #loadKeyring(): Promise<Result<Keyring>> {
    this.#keyring ??= loadKeyring(this.env.KEY_ENCRYPTION_KEYS);
    try {
      return ok(await this.#keyring);
    } catch (error) {
      this.#keyring = null;
      if (error instanceof KeyringError) {
        console.error(JSON.stringify({ event: "keyring_error", message: error.message }));
        return fail("key_encryption_unavailable");
      }
      throw error;
    }
  }
}
