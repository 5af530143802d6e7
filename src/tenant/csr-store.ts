import type { TenantCall } from "../core/call";
import type { Clock } from "../core/clock";
import type { BodyRefusal, InvalidQuery, RateLimited } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";
import { buildCsr } from "../pki/csr-builder";
import type { CsrInput, CsrInputRefusal, KeyType } from "../pki/csr-input";
import type { Keyring } from "../pki/keyring";
import type { AuditTrail } from "./audit-trail";
import type { Counters } from "./counters";
import type { Entitlement } from "./entitlements";
import { type ClaimedKey, type KeyPool, POOLED_KEY_TYPE } from "./key-pool";
import type { KeyVault } from "./key-vault";
import type { Meta } from "./meta";
import { jsonArray, readPage } from "../storage/paging";
import type { CsrInUse, CsrNotFound, EntitlementRefusal } from "./refusals";
import { blockCounter, readRankPage } from "./seq-ranks";
import {
  CSR_COLUMNS,
  CSR_COLUMN_NAMES,
  type CsrRecord,
  type CsrRow,
  type JsonText,
  type ListQuery,
  type Page,
  recordJson,
  toRecord,
} from "./records";
import type { Storage } from "../storage/storage";

const CSR_ORDERS: readonly string[] = ["name", "account_tag", "created_at"];

/**
 * What the CSRs need from the rest of the tenant object, and no more: the
 * vault that keeps each CSR's wrapped key (stored and erased with its row),
 * the pool an RSA key may come from, the audit trail, the quota in force, the
 * account tag a zone's CSRs carry, and where fresh keys come from.
 */
export interface CsrNeeds {
  readonly keys: Pick<KeyVault, "wrap" | "store" | "remove">;
  readonly pool: Pick<KeyPool, "claim" | "release" | "consume">;
  readonly audit: Pick<AuditTrail, "record">;
  readonly counters: Counters;
  readonly meta: Pick<Meta, "get">;
  /** The scope's CSR quota now (its entitlement). */
  readonly quota: () => number;
  /** The account tag a zone's new CSR carries: its recorded account, or null. */
  readonly accountTag: () => string | null;
  /** A fresh key pair (the object paces RSA generations); null when too many wait. */
  readonly generate: (keyType: KeyType, scopeName: string) => Promise<CryptoKeyPair | null>;
  readonly clock: Clock;
}

/** A CSR row as a delete sees it: enough to erase it and to record what was deleted. */
export type CsrToDelete = {
  readonly id: string;
  readonly seq: number;
  readonly key_type: string;
  readonly common_name: string;
  readonly sans: string;
  readonly name: string | null;
};

/**
 * The scope's custom CSRs: key generation, the PKCS#10 request, and the row.
 * The only writer of `csrs`; the keys themselves belong to the KeyVault.
 */
export class CsrStore {
  constructor(
    private readonly storage: Storage,
    private readonly needs: CsrNeeds,
  ) {}

  /**
   * Generates a key and CSR for a request that passed admission (below),
   * with a checked keyring. An RSA key comes from the scope's pool when one
   * is ready (no 50–65 ms of key generation on the request); otherwise it is
   * generated here.
   */
  async create(call: TenantCall, name: string, request: CsrInput, keyring: Keyring): Promise<Result<CsrRecord, RateLimited | EntitlementRefusal>> {
    const { pool } = this.needs;
    const pooled = request.key_type === POOLED_KEY_TYPE ? await pool.claim(call.scope, name, keyring) : null;
    try {
      return await this.#insert(call, name, request, keyring, pooled);
    } finally {
      if (pooled) pool.release(pooled);
    }
  }

  /**
   * Records a create the scope refused (1404, 1403) in the audit trail; a
   * malformed body is not recorded (it never reached a decision).
   */
  refuse<R extends EntitlementRefusal>(call: TenantCall, input: Result<CsrInput, BodyRefusal | CsrInputRefusal>, refusal: R): Result<never, R> {
    return this.storage.transaction(() => this.#refuseCreate(call, input, refusal));
  }

  async #insert(call: TenantCall, name: string, request: CsrInput, keyring: Keyring, pooled: ClaimedKey | null): Promise<Result<CsrRecord, RateLimited | EntitlementRefusal>> {
    const { scope } = call;
    const { keys: vault, pool, audit, counters } = this.needs;
    const keys = pooled?.keys ?? (await this.needs.generate(request.key_type, name));
    // Too many creates of this scope wait for a key already (429, Retry-After).
    if (keys === null) return fail({ reason: "rate_limited" });
    const csr = await buildCsr(request, keys);
    const id = crypto.randomUUID();
    const wrapped = await vault.wrap(keys.privateKey, keyring, name, id);

    // The quota is checked again inside the transaction: creates that were
    // generating keys concurrently cannot overshoot it.
    return this.storage.transaction((): Result<CsrRecord, EntitlementRefusal> => {
      if (counters.get("csrs") >= this.needs.quota()) return this.#refuseCreate(call, ok(request), { reason: "no_quota" });
      // The pooled key leaves the pool in this transaction, or the CSR is not made.
      if (pooled && !pool.consume(pooled)) throw new Error("a claimed pooled key left the pool");
      const row: CsrRow = {
        id,
        created_at: this.#createdAt(),
        key_type: request.key_type,
        // The account's CSRs carry its tag; a zone's carry its recorded account's, if any.
        account_tag: scope.kind === "accounts" ? scope.id : this.needs.accountTag(),
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
      vault.store(seq, wrapped);
      counters.bump("csrs", 1);
      counters.bump(blockCounter("csrs", seq), 1);
      const source = pooled ? { key_source: "pool", pooled_key_id: pooled.id } : { key_source: "generated" };
      audit.record(call, { action: "create", resource: { type: "custom_csr", id }, result: true, metadata: { ...csrMetadata(row), ...source } });
      return ok(toRecord(row));
    });
  }

  // Creation times never go backwards within a scope (a clock stepping back
  // takes the last CSR's time), so created_at order stays seq order.
  #createdAt(): string {
    const now = this.needs.clock().toISOString();
    const last = this.storage.sql.one<{ created_at: string }>(`SELECT created_at FROM csrs ORDER BY seq DESC LIMIT 1`)?.created_at;
    return last !== undefined && last > now ? last : now;
  }

  // Written by the schema migration that introduced the clamp above.
  #createdAtFollowsSeq(): boolean {
    return this.needs.meta.get("created_at_follows_seq") === "1";
  }

  #refuseCreate<R extends EntitlementRefusal>(call: TenantCall, input: Result<CsrInput, BodyRefusal | CsrInputRefusal>, refusal: R): Result<never, R> {
    const metadata = input.ok ? { key_type: input.value.key_type, common_name: input.value.common_name, sans: input.value.sans } : {};
    const info = refusal.reason === "not_entitled" ? "not entitled to generate CSRs (1404)" : "quota used up (1403)";
    this.needs.audit.record(call, { action: "create", resource: { type: "custom_csr", id: null }, result: false, info, metadata });
    return fail(refusal);
  }

  /** One CSR by id, as the API's JSON. */
  get(id: string): Result<JsonText, CsrNotFound> {
    const row = this.storage.sql.raw(`SELECT ${CSR_COLUMNS} FROM csrs WHERE id = ?`, id)[0];
    return row ? ok(recordJson(row)) : fail({ reason: "csr_not_found" });
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

  /** The CSR's names (its SANs), or null when there is no such CSR. */
  names(id: string): string[] | null {
    const row = this.storage.sql.one<{ sans: string }>(`SELECT sans FROM csrs WHERE id = ?`, id);
    return row ? (JSON.parse(row.sans) as string[]) : null;
  }

  /**
   * One page of CSRs in the requested order, as the API's JSON array. Every
   * row of an object has the same account_tag, so that order is seq order;
   * so is created_at order once creation times follow seq (they do for every
   * CSR created since schema version 6, and the migration checked the older
   * ones): both are read by rank, at the same cost on any page.
   */
  list(query: ListQuery): Result<Page<JsonText>, InvalidQuery> {
    // The order is spliced into SQL: only the indexed columns may pass.
    if (!CSR_ORDERS.includes(query.order)) return fail({ reason: "invalid_query", parameter: "order", rule: "is not supported" });
    const { counters } = this.needs;
    const total = counters.get("csrs");
    const bySeq = query.order === "account_tag" || (query.order === "created_at" && this.#createdAtFollowsSeq());
    const page = { direction: query.direction, page: query.page, perPage: query.per_page, total };
    const rows = bySeq
      ? readRankPage(this.storage.sql, counters, { table: "csrs", columns: CSR_COLUMNS, prefix: "csrs", ...page })
      : readPage((statement, ...params) => this.storage.sql.raw(statement, ...params), { table: "csrs", columns: CSR_COLUMNS, order: query.order, ...page });
    return ok({ items: jsonArray(rows.map(recordJson)), count: rows.length, total });
  }

  /** The CSR a delete would remove, or null when there is none. */
  toDelete(id: string): CsrToDelete | null {
    return this.storage.sql.one<CsrToDelete>(`SELECT id, seq, key_type, common_name, sans, name FROM csrs WHERE id = ?`, id);
  }

  /** Records a delete refused because a certificate still uses the CSR (1420). Call inside the delete's transaction. */
  refuseDelete(call: TenantCall, csr: CsrToDelete): Result<never, CsrInUse> {
    this.needs.audit.record(call, {
      action: "delete",
      resource: { type: "custom_csr", id: csr.id },
      result: false,
      info: "used by a custom certificate (1420)",
      metadata: csrMetadata(csr),
    });
    return fail({ reason: "csr_in_use" });
  }

  /** Deletes a CSR and its wrapped key together, and records it. Call inside the delete's transaction. */
  remove(call: TenantCall, csr: CsrToDelete): { id: string } {
    this.needs.keys.remove(csr.seq);
    this.storage.sql.run(`DELETE FROM csrs WHERE seq = ?`, csr.seq);
    this.needs.counters.bump("csrs", -1);
    this.needs.counters.bump(blockCounter("csrs", csr.seq), -1);
    this.needs.audit.record(call, { action: "delete", resource: { type: "custom_csr", id: csr.id }, result: true, metadata: csrMetadata(csr) });
    return { id: csr.id };
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
export function admitCreate(
  input: Result<CsrInput, BodyRefusal | CsrInputRefusal>,
  entitlement: Entitlement,
  used: number,
): Result<CsrInput, BodyRefusal | CsrInputRefusal> | { ok: false; refuse: EntitlementRefusal } {
  if (!entitlement.granted) return { ok: false, refuse: { reason: "not_entitled" } };
  if (!input.ok) return input;
  if (used >= entitlement.quota) return { ok: false, refuse: { reason: "no_quota" } };
  return input;
}
