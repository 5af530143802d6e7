import { DurableObject } from "cloudflare:workers";
import type { Result } from "../core/result";
import { ok } from "../core/result";
import type { TenantCall } from "../core/call";
import type { CsrInput } from "../pki/csr-input";
import type { EdgeRecipient } from "../pki/edge-key";
import type { CertificateEdit, CertificateRecord, CertificateUpload } from "./certificate-records";
import { CertificateStore } from "./certificate-store";
import { Counters } from "./counters";
import { CsrStore } from "./csr-store";
import { type Entitlement, Entitlements, defaultEntitlement } from "./entitlements";
import { type DeliverableCertificate, type DeliveryBundle, KeyDelivery } from "./key-delivery";
import { type KeyCheck, KeyVault, type RewrapReport } from "./key-vault";
import type { CsrRecord, JsonText, ListQuery, Page } from "./records";
import { migrate } from "./schema";
import { ScopeBinding } from "./scope-binding";
import { Sql } from "../core/sql";
import type { TenantStorage } from "./storage";

export type { DeliverableCertificate, DeliveryBundle, Entitlement, KeyCheck, RewrapReport };

/**
 * One account's or zone's data, in its own SQLite-backed Durable Object. The
 * class is the RPC surface only: each method checks the scope and delegates
 * to the module of its concern (docs/storage.md lists what each one stores).
 * Every method returns a tagged Result, since thrown errors do not cross RPC
 * intact.
 */
export class TenantStore extends DurableObject<Env> {
  readonly #binding: ScopeBinding;
  readonly #counters: Counters;
  readonly #entitlements: Entitlements;
  readonly #vault: KeyVault;
  readonly #csrs: CsrStore;
  readonly #certificates: CertificateStore;
  readonly #delivery: KeyDelivery;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = new Sql(ctx.storage.sql);
    const storage: TenantStorage = { sql, transaction: (fn) => ctx.storage.transactionSync(fn) };
    migrate(sql, storage.transaction);
    this.#binding = new ScopeBinding(sql);
    this.#counters = new Counters(sql);
    this.#entitlements = new Entitlements(sql, defaultEntitlement(env));
    this.#vault = new KeyVault(sql, () => this.env.KEY_ENCRYPTION_KEYS);
    this.#csrs = new CsrStore(storage, this.#vault, this.#counters, this.#entitlements);
    this.#certificates = new CertificateStore(storage, this.#csrs, this.#counters);
    this.#delivery = new KeyDelivery(this.#certificates, this.#vault);
  }

  /** Generates a key and CSR for a validated request, within the scope's entitlement. */
  createCsr(call: TenantCall, input: Result<CsrInput>): Promise<Result<CsrRecord>> {
    return this.#csrs.create(call.scope, this.#binding.check(call.scope), input);
  }

  /** One CSR by id, as the API's JSON. */
  getCsr(call: TenantCall, id: string): Result<JsonText> {
    this.#binding.check(call.scope);
    return this.#csrs.get(id);
  }

  /** One page of CSRs in the requested order, as the API's JSON array. */
  listCsrs(call: TenantCall, query: ListQuery): Result<Page<JsonText>> {
    this.#binding.check(call.scope);
    return this.#csrs.list(query);
  }

  /** Deletes a CSR and its wrapped key together; 1420 while a certificate names it. */
  deleteCsr(call: TenantCall, id: string): Result<{ id: string }> {
    this.#binding.check(call.scope);
    return this.#csrs.remove(id, (csrId) => this.#certificates.referencing(csrId));
  }

  /** Installs a CA-signed certificate for one of this zone's CSRs. */
  uploadCertificate(call: TenantCall, upload: CertificateUpload): Promise<Result<CertificateRecord>> {
    this.#binding.check(call.scope);
    return this.#certificates.upload(call.scope, upload);
  }

  /** Cloudflare's edit: a renewed certificate for the same key, a new placement or bundle method. */
  editCertificate(call: TenantCall, id: string, edit: CertificateEdit): Promise<Result<CertificateRecord>> {
    this.#binding.check(call.scope);
    return this.#certificates.edit(call.scope, id, edit);
  }

  getCertificate(call: TenantCall, id: string): Result<CertificateRecord> {
    this.#binding.check(call.scope);
    return this.#certificates.get(call.scope, id);
  }

  /** One page of certificates in upload order. */
  listCertificates(call: TenantCall, query: Pick<ListQuery, "page" | "per_page" | "direction">): Result<Page<JsonText>> {
    this.#binding.check(call.scope);
    return this.#certificates.list(call.scope, query);
  }

  /** Deletes a certificate; its CSR becomes deletable again. */
  deleteCertificate(call: TenantCall, id: string): Result<{ id: string }> {
    this.#binding.check(call.scope);
    return this.#certificates.remove(id);
  }

  /** The certificates a registered edge may receive (call.actor is the edge). */
  listDeliverable(call: TenantCall, edge: EdgeRecipient): Result<DeliverableCertificate[]> {
    this.#binding.check(call.scope);
    return this.#delivery.list(edge);
  }

  /** One certificate's chain and its key sealed to the edge (call.actor is the edge). */
  deliverCertificate(call: TenantCall, edge: EdgeRecipient, id: string): Promise<Result<DeliveryBundle>> {
    return this.#delivery.deliver(call.scope, this.#binding.check(call.scope), edge, id);
  }

  /** Admin self-check of one stored key. */
  verifyCsrKey(call: TenantCall, id: string): Promise<Result<KeyCheck>> {
    return this.#vault.verify(this.#binding.check(call.scope), id);
  }

  /** Admin: re-wraps a batch of keys under the current KEK. */
  rewrapKeys(call: TenantCall, limit: number, after: string): Promise<Result<RewrapReport>> {
    return this.#vault.rewrap(this.#binding.check(call.scope), limit, after);
  }

  /** What this scope holds, and the size of its database (for operators and the benchmark). */
  getStats(call: TenantCall): Result<{ csrs: number; certificates: number; database_bytes: number }> {
    this.#binding.check(call.scope);
    return ok({
      csrs: this.#counters.get("csrs"),
      certificates: this.#counters.get("certificates"),
      database_bytes: this.ctx.storage.sql.databaseSize,
    });
  }

  /** The entitlement in force for this scope. */
  getEntitlement(call: TenantCall): Result<Entitlement & { used: number }> {
    this.#binding.check(call.scope);
    return ok({ ...this.#entitlements.current(), used: this.#counters.get("csrs") });
  }

  /** Sets this scope's entitlement (admin only; the Worker checks the admin secret). */
  setEntitlement(call: TenantCall, entitlement: Entitlement): Result<Entitlement & { used: number }> {
    this.#binding.check(call.scope);
    this.#entitlements.set(entitlement);
    return this.getEntitlement(call);
  }
}
