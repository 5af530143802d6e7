import { DurableObject } from "cloudflare:workers";
import { touch } from "../core/activity";
import type { Actor, TenantCall } from "../core/call";
import { type Result, fail, ok } from "../core/result";
import type { CsrInput } from "../pki/csr-input";
import { AccountLink, type LinkReport } from "./account-link";
import { type AuditHead, type AuditQuery, AuditTrail, type ChainCheck } from "./audit-trail";
import type { EdgeRecipient } from "../pki/edge-key";
import type { CertificateEdit, CertificateRecord, CertificateUpload } from "./certificate-records";
import { CertificateStore } from "./certificate-store";
import { Counters } from "./counters";
import { CsrStore } from "./csr-store";
import { type Entitlement, Entitlements, defaultEntitlement } from "./entitlements";
import { type DeliverableCertificate, type DeliveryBundle, KeyDelivery } from "./key-delivery";
import { KeyPool, type PoolCheck, type PoolState, defaultPoolSize } from "./key-pool";
import { type KeyCheck, KeyVault, type RewrapReport } from "./key-vault";
import type { CsrRecord, JsonText, ListQuery, Page } from "./records";
import { TENANT_MIGRATIONS } from "./schema";
import { ScopeBinding } from "./scope-binding";
import { openStorage } from "../storage/storage";

export type { AuditHead, ChainCheck, DeliverableCertificate, DeliveryBundle, Entitlement, KeyCheck, PoolCheck, PoolState, RewrapReport };

// Who the audit trail names for work no request asked for.
const KEY_POOL_ACTOR: Actor = { type: "system", id: "key-pool" };

/**
 * One account's or zone's data, in its own SQLite-backed Durable Object. The
 * class is the RPC surface only: each method checks the scope and delegates
 * to the module of its concern (docs/storage.md lists what each one stores).
 * Every method returns a tagged Result, since thrown errors do not cross RPC
 * intact.
 */
export class TenantStore extends DurableObject<Env> {
  readonly #binding: ScopeBinding;
  readonly #account: AccountLink;
  readonly #audit: AuditTrail;
  readonly #counters: Counters;
  readonly #entitlements: Entitlements;
  readonly #vault: KeyVault;
  readonly #pool: KeyPool;
  readonly #csrs: CsrStore;
  readonly #certificates: CertificateStore;
  readonly #delivery: KeyDelivery;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const storage = openStorage(ctx, TENANT_MIGRATIONS);
    const { sql } = storage;
    this.#binding = new ScopeBinding(sql);
    this.#counters = new Counters(sql);
    this.#audit = new AuditTrail(sql, this.#counters);
    this.#account = new AccountLink(storage, this.#audit);
    this.#entitlements = new Entitlements(storage, defaultEntitlement(env), this.#audit);
    this.#vault = new KeyVault(storage, () => this.env.KEY_ENCRYPTION_KEYS, this.#audit);
    this.#pool = new KeyPool(storage, this.#vault, this.#audit, defaultPoolSize(env), (ms) => {
      void ctx.storage.setAlarm(Date.now() + ms);
    });
    this.#csrs = new CsrStore(storage, this.#vault, this.#counters, this.#entitlements, this.#audit, this.#pool, this.#account);
    this.#certificates = new CertificateStore(storage, this.#csrs, this.#counters, this.#audit);
    this.#delivery = new KeyDelivery(this.#certificates, this.#vault, this.#audit);
  }

  /** Generates a key and CSR for a validated request, within the scope's entitlement. */
  createCsr(call: TenantCall, input: Result<CsrInput>): Promise<Result<CsrRecord>> {
    return this.#csrs.create(call, this.#enter(call), input);
  }

  /** One CSR by id, as the API's JSON. */
  getCsr(call: TenantCall, id: string): Result<JsonText> {
    this.#enter(call);
    return this.#csrs.get(id);
  }

  /** One page of CSRs in the requested order, as the API's JSON array. */
  listCsrs(call: TenantCall, query: ListQuery): Result<Page<JsonText>> {
    this.#enter(call);
    return this.#csrs.list(query);
  }

  /** Deletes a CSR and its wrapped key together; 1420 while a certificate names it. */
  deleteCsr(call: TenantCall, id: string): Result<{ id: string }> {
    this.#enter(call);
    return this.#csrs.remove(call, id, (csrId) => this.#certificates.referencing(csrId));
  }

  /** Installs a CA-signed certificate for one of this zone's CSRs. */
  uploadCertificate(call: TenantCall, upload: CertificateUpload): Promise<Result<CertificateRecord>> {
    this.#enter(call);
    return this.#certificates.upload(call, upload);
  }

  /** Cloudflare's edit: a renewed certificate for the same key, a new placement or bundle method. */
  editCertificate(call: TenantCall, id: string, edit: CertificateEdit): Promise<Result<CertificateRecord>> {
    this.#enter(call);
    return this.#certificates.edit(call, id, edit);
  }

  getCertificate(call: TenantCall, id: string): Result<CertificateRecord> {
    this.#enter(call);
    return this.#certificates.get(call.scope, id);
  }

  /** One page of certificates in upload order. */
  listCertificates(call: TenantCall, query: Pick<ListQuery, "page" | "per_page" | "direction">): Result<Page<JsonText>> {
    this.#enter(call);
    return this.#certificates.list(call.scope, query);
  }

  /** Deletes a certificate; its CSR becomes deletable again. */
  deleteCertificate(call: TenantCall, id: string): Result<{ id: string }> {
    this.#enter(call);
    return this.#certificates.remove(call, id);
  }

  /** The certificates a registered edge may receive (call.actor is the edge). */
  listDeliverable(call: TenantCall, edge: EdgeRecipient): Result<DeliverableCertificate[]> {
    this.#enter(call);
    return this.#delivery.list(edge);
  }

  /** One certificate's chain and its key sealed to the edge (call.actor is the edge). */
  deliverCertificate(call: TenantCall, edge: EdgeRecipient, id: string): Promise<Result<DeliveryBundle>> {
    return this.#delivery.deliver(call, this.#enter(call), edge, id);
  }

  /** Admin self-check of one stored key. */
  verifyCsrKey(call: TenantCall, id: string): Promise<Result<KeyCheck>> {
    return this.#vault.verify(call, this.#enter(call), id);
  }

  /**
   * Admin: re-wraps a batch of CSR keys under the current KEK, and every
   * pooled key not under it; `remaining` counts both.
   */
  async rewrapKeys(call: TenantCall, limit: number, after: string): Promise<Result<RewrapReport & { pooled_rewrapped: number; pooled_failed: string[] }>> {
    const name = this.#enter(call);
    const keyring = await this.#vault.keyring();
    if (!keyring.ok) return keyring;
    const pooled = await this.#pool.rewrap(call, name, keyring.value);
    const batch = await this.#vault.rewrap(call, name, limit, after);
    if (!batch.ok) return batch;
    return ok({ ...batch.value, remaining: batch.value.remaining + pooled.remaining, pooled_rewrapped: pooled.rewrapped, pooled_failed: pooled.failed });
  }

  /**
   * Admin (zones): the account the zone now belongs to (null: none). Its
   * CSRs take that account's tag, and the move is recorded, in one
   * transaction. The directory object is updated by the Worker after this.
   */
  linkAccount(call: TenantCall, accountId: string | null, directoryRevision: number): Result<LinkReport> {
    this.#enter(call);
    if (call.scope.kind !== "zones") return fail("no_route");
    return ok(this.#account.link(call, accountId, directoryRevision, (account) => this.#csrs.retag(account)));
  }

  /** Admin: the scope's RSA key pool, its size and how many keys are ready. */
  getKeyPool(call: TenantCall): Result<PoolState> {
    this.#enter(call);
    return ok(this.#pool.state());
  }

  /** Admin: keep `size` RSA keys ready (0 turns the pool off and destroys its keys). */
  setKeyPool(call: TenantCall, size: number): Result<PoolState> {
    this.#enter(call);
    return ok(this.#pool.setSize(call, size));
  }

  /** Admin self-check of every pooled key. */
  verifyKeyPool(call: TenantCall): Promise<Result<PoolCheck>> {
    return this.#pool.verify(call, this.#enter(call));
  }

  /**
   * Fills the key pool, one key per run, while the isolate is idle (the pool
   * says when to run again). Errors are logged, never thrown: a retried alarm
   * would only repeat them.
   */
  override async alarm(): Promise<void> {
    const scope = this.#binding.bound();
    if (!scope) return;
    try {
      const next = await this.#pool.fillOne({ scope, actor: KEY_POOL_ACTOR }, this.#binding.check(scope));
      if (next !== null) await this.ctx.storage.setAlarm(Date.now() + next);
    } catch (error) {
      console.error(JSON.stringify({ level: "error", event: "key_pool_fill_failed", message: error instanceof Error ? error.message : String(error) }));
    }
  }

  /**
   * What this scope holds, the size of its database, and the audit chain's
   * head, which an operator can keep elsewhere to prove later that nothing
   * before it was rewritten.
   */
  getStats(call: TenantCall): Result<{ csrs: number; certificates: number; database_bytes: number; audit: AuditHead }> {
    this.#enter(call);
    return ok({
      csrs: this.#counters.get("csrs"),
      certificates: this.#counters.get("certificates"),
      database_bytes: this.ctx.storage.sql.databaseSize,
      audit: this.#audit.head(),
    });
  }

  /** One page of the scope's audit trail, as the audit-log API's JSON array. */
  listAudit(call: TenantCall, query: AuditQuery): Result<Page<JsonText>> {
    this.#enter(call);
    return ok(this.#audit.list(call.scope.id, query));
  }

  /** Up to `limit` audit entries after `after` (an entry id, or null from the start) as JSON lines. */
  exportAudit(call: TenantCall, after: string | null, limit: number): Result<{ lines: string; next: string | null }> {
    this.#enter(call);
    const page = this.#audit.exportPage(call.scope.id, after, limit);
    return page ? ok(page) : fail("audit_entry_not_found");
  }

  /** Recomputes the audit chain: ok with its length and head, or where it breaks. */
  verifyAudit(call: TenantCall): Result<ChainCheck> {
    return ok(this.#audit.verify(this.#enter(call)));
  }

  /** The entitlement in force for this scope. */
  getEntitlement(call: TenantCall): Result<Entitlement & { used: number }> {
    this.#enter(call);
    return ok({ ...this.#entitlements.current(), used: this.#counters.get("csrs") });
  }

  // Every call checks the scope this object holds and tells the isolate's
  // activity signal that a tenant is being served (the key pool waits on it).
  #enter(call: TenantCall): string {
    touch();
    return this.#binding.check(call.scope);
  }

  /** Sets this scope's entitlement (admin only; the Worker checks the admin secret). */
  setEntitlement(call: TenantCall, entitlement: Entitlement): Result<Entitlement & { used: number }> {
    this.#enter(call);
    this.#entitlements.set(call, entitlement);
    return this.getEntitlement(call);
  }
}
