import type { TenantCall } from "../core/call";
import { type Result, fail, ok } from "../core/result";
import { buildCsr } from "../pki/csr-builder";
import type { CsrInput, KeyType } from "../pki/csr-input";
import type { Keyring } from "../pki/keyring";
import type { AccountLink } from "./account-link";
import type { AuditTrail } from "./audit-trail";
import type { Counters } from "./counters";
import type { Entitlement, Entitlements } from "./entitlements";
import { type ClaimedKey, type KeyPool, POOLED_KEY_TYPE } from "./key-pool";
import type { KeyVault } from "./key-vault";
import { readPage } from "./paging";
import { blockCounter, readRankPage } from "./seq-ranks";
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
import type { Storage } from "../storage/storage";

const CSR_ORDERS: readonly string[] = ["name", "account_tag", "created_at"];

/**
 * The scope's custom CSRs: key generation, the PKCS#10 request, and the row.
 * The only writer of `csrs`; the keys themselves belong to the KeyVault.
 */
export class CsrStore {
  #followsSeq: boolean | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly vault: KeyVault,
    private readonly counters: Counters,
    private readonly entitlements: Entitlements,
    private readonly audit: AuditTrail,
    private readonly pool: KeyPool,
    private readonly account: AccountLink,
    /** Generates a fresh key pair for the scope (the object paces RSA generations); null when too many wait. */
    private readonly generate: (keyType: KeyType, scopeName: string) => Promise<CryptoKeyPair | null>,
  ) {}

  /**
   * Generates a key and CSR for a request that passed admission (below),
   * with a checked keyring. An RSA key comes from the scope's pool when one
   * is ready (no 50–65 ms of key generation on the request); otherwise it is
   * generated here.
   */
  async create(call: TenantCall, name: string, request: CsrInput, keyring: Keyring): Promise<Result<CsrRecord>> {
    const pooled = request.key_type === POOLED_KEY_TYPE ? await this.pool.claim(call.scope, name, keyring) : null;
    try {
      return await this.#insert(call, name, { ok: true, value: request }, keyring, pooled);
    } finally {
      if (pooled) this.pool.release(pooled);
    }
  }

  /**
   * Records a create the scope refused (1404, 1403) in the audit trail; a
   * malformed body is not recorded (it never reached a decision).
   */
  refuse(call: TenantCall, input: Result<CsrInput>, reason: "not_entitled" | "no_quota"): Result<CsrRecord> {
    return this.storage.transaction(() => this.#refuseCreate(call, input, reason, reason === "not_entitled" ? "not entitled to generate CSRs (1404)" : "quota used up (1403)"));
  }

  async #insert(
    call: TenantCall,
    name: string,
    input: { ok: true; value: CsrInput },
    keyring: Keyring,
    pooled: ClaimedKey | null,
  ): Promise<Result<CsrRecord>> {
    const { scope } = call;
    const request = input.value;
    const keys = pooled?.keys ?? (await this.generate(request.key_type, name));
    // Too many creates of this scope wait for a key already (429, Retry-After).
    if (keys === null) return fail("rate_limited");
    const csr = await buildCsr(request, keys);
    const id = crypto.randomUUID();
    const wrapped = await this.vault.wrap(keys.privateKey, keyring, name, id);

    // The quota is checked again inside the transaction: creates that were
    // generating keys concurrently cannot overshoot it.
    return this.storage.transaction((): Result<CsrRecord> => {
      if (this.counters.get("csrs") >= this.entitlements.current().quota) {
        return this.#refuseCreate(call, input, "no_quota", "quota used up (1403)");
      }
      // The pooled key leaves the pool in this transaction, or the CSR is not made.
      if (pooled && !this.pool.consume(pooled)) throw new Error("a claimed pooled key left the pool");
      const row: CsrRow = {
        id,
        created_at: this.#createdAt(),
        key_type: request.key_type,
        // The account's CSRs carry its tag; a zone's carry its recorded account's, if any.
        account_tag: scope.kind === "accounts" ? scope.id : this.account.current(),
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
      const { seq } = this.storage.sql.one<{ seq: number }>(
        `INSERT INTO csrs (${CSR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq`,
        ...CSR_COLUMN_NAMES.map((column) => row[column]),
      )!;
      this.vault.store(seq, wrapped);
      this.counters.bump("csrs", 1);
      this.counters.bump(blockCounter("csrs", seq), 1);
      const source = pooled ? { key_source: "pool", pooled_key_id: pooled.id } : { key_source: "generated" };
      this.audit.record(call, { action: "create", resource: { type: "custom_csr", id }, result: true, metadata: { ...csrMetadata(row), ...source } });
      return ok(toRecord(row));
    });
  }

  // Creation times never go backwards within a scope (a clock stepping back
  // takes the last CSR's time), so created_at order stays seq order.
  #createdAt(): string {
    const now = new Date().toISOString();
    const last = this.storage.sql.one<{ created_at: string }>(`SELECT created_at FROM csrs ORDER BY seq DESC LIMIT 1`)?.created_at;
    return last !== undefined && last > now ? last : now;
  }

  // Written by the schema migration that introduced the clamp above.
  #createdAtFollowsSeq(): boolean {
    this.#followsSeq ??= this.storage.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'created_at_follows_seq'`)?.value === "1";
    return this.#followsSeq;
  }

  #refuseCreate(call: TenantCall, input: Result<CsrInput>, reason: "not_entitled" | "no_quota", info: string): Result<CsrRecord> {
    const metadata = input.ok ? { key_type: input.value.key_type, common_name: input.value.common_name, sans: input.value.sans } : {};
    this.audit.record(call, { action: "create", resource: { type: "custom_csr", id: null }, result: false, info, metadata });
    return fail(reason);
  }

  /** One CSR by id, as the API's JSON. */
  get(id: string): Result<JsonText> {
    const row = this.storage.sql.raw(`SELECT ${CSR_COLUMNS} FROM csrs WHERE id = ?`, id)[0];
    return row ? ok(recordJson(row)) : fail("csr_not_found");
  }

  /**
   * Stamps every CSR of a zone with its account's tag (null: none), inside
   * the transaction that records the zone's account. Answers how many rows
   * changed.
   */
  retag(accountId: string | null): number {
    // account_tag has no index, so rows written are rows changed.
    return this.storage.sql.run(`UPDATE csrs SET account_tag = ? WHERE account_tag IS NOT ?`, accountId, accountId);
  }

  /** The CSR's PEM, for checks against it (certificate uploads); null when there is no such CSR. */
  pem(id: string): string | null {
    return this.storage.sql.one<{ csr: string }>(`SELECT csr FROM csrs WHERE id = ?`, id)?.csr ?? null;
  }

  /**
   * One page of CSRs in the requested order, as the API's JSON array. Every
   * row of an object has the same account_tag, so that order is seq order;
   * so is created_at order once creation times follow seq (they do for every
   * CSR created since schema version 6, and the migration checked the older
   * ones): both are read by rank, at the same cost on any page.
   */
  list(query: ListQuery): Result<Page<JsonText>> {
    // The order is spliced into SQL: only the indexed columns may pass.
    if (!CSR_ORDERS.includes(query.order)) return fail("invalid_query", { detail: "order is not supported" });
    const total = this.counters.get("csrs");
    const bySeq = query.order === "account_tag" || (query.order === "created_at" && this.#createdAtFollowsSeq());
    const page = { direction: query.direction, page: query.page, perPage: query.per_page, total };
    const rows = bySeq
      ? readRankPage(this.storage.sql, this.counters, { table: "csrs", columns: CSR_COLUMNS, prefix: "csrs", ...page })
      : readPage((statement, ...params) => this.storage.sql.raw(statement, ...params), { table: "csrs", columns: CSR_COLUMNS, order: query.order, ...page });
    return ok({ items: jsonArray(rows.map(recordJson)), count: rows.length, total });
  }

  /**
   * Deletes a CSR and its wrapped key together, unless `inUse` says a
   * certificate still names it (1420, recorded as a refused delete).
   */
  remove(call: TenantCall, id: string, inUse: (csrId: string) => boolean): Result<{ id: string }> {
    return this.storage.transaction((): Result<{ id: string }> => {
      const row = this.storage.sql.one<{ seq: number; key_type: string; common_name: string; sans: string; name: string | null }>(
        `SELECT seq, key_type, common_name, sans, name FROM csrs WHERE id = ?`,
        id,
      );
      if (!row) return fail("csr_not_found");
      const resource = { type: "custom_csr", id } as const;
      if (inUse(id)) {
        this.audit.record(call, { action: "delete", resource, result: false, info: "used by a custom certificate (1420)", metadata: csrMetadata(row) });
        return fail("csr_in_use");
      }
      this.vault.remove(row.seq);
      this.storage.sql.run(`DELETE FROM csrs WHERE seq = ?`, row.seq);
      this.counters.bump("csrs", -1);
      this.counters.bump(blockCounter("csrs", row.seq), -1);
      this.audit.record(call, { action: "delete", resource, result: true, metadata: csrMetadata(row) });
      return ok({ id });
    });
  }
}

/** What the audit trail keeps of a CSR: its key type and names, all public. */
function csrMetadata(row: Pick<CsrRow, "key_type" | "common_name" | "sans" | "name">): Record<string, unknown> {
  const metadata: Record<string, unknown> = { key_type: row.key_type, common_name: row.common_name, sans: JSON.parse(row.sans) as string[] };
  if (row.name !== null) metadata.name = row.name;
  return metadata;
}

/**
 * Whether a create may go ahead, before any key is made or anything written:
 * entitlement first (as Cloudflare orders its checks), then the body, then
 * the quota (checked again inside the insert's transaction).
 */
export function admitCreate(input: Result<CsrInput>, entitlement: Entitlement, used: number): Result<CsrInput> | { ok: false; refuse: "not_entitled" | "no_quota" } {
  if (!entitlement.granted) return { ok: false, refuse: "not_entitled" };
  if (!input.ok) return input;
  if (used >= entitlement.quota) return { ok: false, refuse: "no_quota" };
  return input;
}
