import { DurableObject } from "cloudflare:workers";
import { othersInFlight, touch } from "../core/activity";
import type { TenantCall } from "../core/call";
import { type Clock, systemClock } from "../core/clock";
import type { BodyRefusal, InvalidQuery, NoRoute, RateLimited, ScopeMismatch } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";
import { DEPLOYMENT_REGISTRY_NAME } from "../core/objects";
import type { CsrInput, CsrInputRefusal, KeyType } from "../pki/csr-input";
import type { EdgeRecipient } from "../pki/edge-key";
import type { Keyring } from "../pki/keyring";
import { generateKeyPair } from "../pki/keys";
import { type LazyStorage, openLazyStorage } from "../storage/storage";
import { AccountLink, type LinkReport } from "./account-link";
import { type AuditHead, type AuditQuery, AuditTrail, type ChainCheck, MacKeyMissing } from "./audit-trail";
import type {
  CertificateEdit,
  CertificateListQuery,
  CertificateRecord,
  CertificateUpload,
  PriorityChange,
  PriorityTargetNotFound,
} from "./certificate-records";
import { CertificateSeals } from "./certificate-seal";
import { CertificateStore, type EditRefusal, type UploadRefusal } from "./certificate-store";
import { Counters } from "./counters";
import { CsrStore, admitCreate } from "./csr-store";
import { type Entitlement, Entitlements, defaultEntitlement } from "./entitlements";
import { type DeliverRefusal, type DeliverableCertificate, type DeliveryBundle, KeyDelivery } from "./key-delivery";
import { KEY_POOL_ACTOR, KeyPool, type PoolCheck, type PoolRewrap, type PoolState, defaultPoolSize } from "./key-pool";
import { type KeyCheck, KeyVault, type RewrapReport } from "./key-vault";
import { TaskQueue } from "../core/task-queue";
import { KeyringGate } from "../deployment/keyring-gate";
import type { CsrRecord, ListQuery } from "./records";
import type { JsonText, Page } from "../storage/paging";
import { TENANT_MIGRATIONS } from "./schema";
import { Meta } from "./meta";
import type { AccessRefusal, AuditEntryNotFound, CertificateNotFound, CsrInUse, CsrNotFound, EntitlementRefusal } from "./refusals";
import { ScopeBinding } from "./scope-binding";
import { EMPTY_SCOPE, hostnameQuotaDefaults } from "./empty-scope";
import { type HostnameCreateRefusal, type HostnameEditRefusal, type HostnameNotFound, type HostnameQuota, HostnameStore, type UnknownCertificateAuthority } from "./hostname-store";
import type { CustomHostnameRecord, HostnameCreate, HostnameEdit, HostnameListQuery } from "../hostnames/hostname-records";
import { hostnameShardName } from "../hostnames/shard";
import { HostnameKeys, type KeyRewrap } from "./hostname-keys";
import { HostnameTwins } from "./hostname-twins";
import type { RewrapFailure } from "../pki/key-wrap";
import { AcmeAccounts } from "./acme-accounts";
import { AcmeOrders } from "./acme-orders";
import { type AcmeEnv, type RenewBefore, acmeConfig, acmeRetryMs } from "./acme-config";
import type { HostnameSslInput } from "../hostnames/hostname-records";
import { AlertOutbox } from "./alert-outbox";
import { type AlertingRefusal, AlertingStore, type HistoryEntry, type Policy, type PolicyInput, type Webhook, type WebhookInput } from "../alerting/alerting-store";
import { postWebhook } from "../alerting/post";
import { EDGE_REGISTRY_NAME, FLEET_METRICS_NAME } from "../core/objects";
import { scopeReport } from "./metrics-report";
import { AUDIT_CHAIN_ALERT, type AlertEvent, KEY_POOL_ALERT, scopeEvent } from "../alerting/alert-types";

export type { AuditHead, ChainCheck, DeliverableCertificate, DeliveryBundle, Entitlement, KeyCheck, PoolCheck, PoolState, RewrapReport };

/**
 * What a rewrap call reports: the batch of CSR keys, the pooled keys (all of
 * them, each call), and a batch of audit entries re-keyed (their MACs under
 * the current KEK). `remaining` counts all three.
 */
export type ScopeRewrap = RewrapReport & {
  pooled_rewrapped: number;
  pooled_failed: string[];
  pooled_failures: PoolRewrap["failures"];
  audit_rekeyed: number;
  /** Positions of audit entries whose MAC did not match under its old key: left as they are. */
  audit_failed: number[];
  /** Certificate rows re-sealed under the current KEK, and those whose MAC did not match (left as they are). */
  certificates_resealed: number;
  /** Certificate rows that had no MAC (uploaded before rows were sealed, or stripped), sealed by this call and named in its audit entry. */
  certificates_sealed: string[];
  certificates_failed: string[];
  /** Custom hostname rows (and their RSA twins' rows, named by certificate id) re-sealed under the current KEK, and those whose MAC did not match (left as they are). */
  hostnames_resealed: number;
  hostnames_failed: string[];
  /** Managed hostnames' keys and ACME account keys moved under the current KEK (all of them, each call), and those that were not. */
  hostname_keys_rewrapped: number;
  acme_accounts_rewrapped: number;
  /** Webhook destinations' secrets (accounts) moved under the current KEK. */
  webhook_secrets_rewrapped: number;
  key_failures: Array<RewrapFailure & { kind: "hostname_key" | "acme_account" | "webhook_secret" }>;
};

/**
 * At most one fresh RSA key generation at a time per scope, and at most this
 * many creates waiting for one; beyond, a create is refused with 429 (971)
 * and Retry-After (docs/api.md, "Limits"), so one scope's flood of rsa2048
 * creates cannot hold every other scope's requests behind its generations.
 */
export const RSA_GENERATIONS_WAITING = 16;

/** The actor of the ACME machinery's audit entries (certificates it installs). */
const ACME_ACTOR = { type: "system", id: "acme" } as const;
// Who raises and sends notifications, in the audit trail.
const ALERT_ACTOR = { type: "system", id: "notifications" } as const;
// A hand-over or delivery run that failed is tried again this much later.
const ALERT_RETRY_MS = 60_000;
// custom_csr_key_pool_empty is raised at most this often per scope.
const POOL_ALERT_INTERVAL_MS = 3_600_000;
// A scope reports its metrics this long after a write (the writes of a burst are reported together).
const METRICS_DELAY_MS = 1_000;
// How soon ACME work that could not run (no usable configuration or keys) is looked at again.
const ACME_BLOCKED_RETRY_MS = 5 * 60_000;

/** How long an RSA generation lets other scopes' requests go first, at most, and in what steps. */
export const RSA_YIELD_MAX_MS = 50;
const RSA_YIELD_STEP_MS = 2;

// Audit entries re-keyed per rewrap call (an HMAC and a row each).
const AUDIT_REKEY_BATCH = 5000;


/**
 * One account's or zone's data, in its own SQLite-backed Durable Object. The
 * class is the RPC surface only: each method checks the scope and delegates
 * to the module of its concern (docs/storage.md lists what each one stores).
 * Every method returns a tagged Result, since thrown errors do not cross RPC
 * intact.
 *
 * An object that was never written has no schema at all: reads answer as an
 * empty scope and write nothing (a read never creates storage), and the
 * first write lists the scope with the deployment registry, then makes the
 * schema. Every write opens the keyring through the gate, which refuses a
 * KEK that is not the one the data was wrapped under.
 */
export class TenantStore extends DurableObject<Env> {
  readonly #clock: Clock = systemClock;
  readonly #storage: LazyStorage;
  readonly #binding: ScopeBinding;
  readonly #account: AccountLink;
  readonly #audit: AuditTrail;
  readonly #counters: Counters;
  readonly #entitlements: Entitlements;
  readonly #vault: KeyVault;
  readonly #pool: KeyPool;
  readonly #csrs: CsrStore;
  readonly #certificates: CertificateStore;
  readonly #hostnames: HostnameStore;
  readonly #hostnameKeys: HostnameKeys;
  readonly #twins: HostnameTwins;
  readonly #meta: Meta;
  readonly #outbox: AlertOutbox;
  readonly #alerting: AlertingStore;
  readonly #acmeAccounts: AcmeAccounts;
  readonly #acme: AcmeOrders;
  readonly #seals: CertificateSeals;
  readonly #delivery: KeyDelivery;
  readonly #gate: KeyringGate;
  readonly #rsa = new TaskQueue(1, RSA_GENERATIONS_WAITING);

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const storage = (this.#storage = openLazyStorage(ctx, TENANT_MIGRATIONS));
    const { sql } = storage;
    const clock = this.#clock;
    const meta = (this.#meta = new Meta(storage));
    this.#binding = new ScopeBinding(meta);
    this.#counters = new Counters(sql);
    this.#audit = new AuditTrail(sql, this.#counters, clock);
    this.#account = new AccountLink(meta, this.#audit);
    this.#entitlements = new Entitlements(storage, defaultEntitlement(env), this.#audit);
    this.#vault = new KeyVault(storage, this.#audit);
    this.#pool = new KeyPool(
      storage,
      this.#audit,
      defaultPoolSize(env),
      (ms) => {
        void ctx.storage.setAlarm(clock().getTime() + ms);
      },
      clock,
    );
    this.#csrs = new CsrStore(storage, {
      keys: this.#vault,
      pool: this.#pool,
      audit: this.#audit,
      counters: this.#counters,
      meta,
      quota: () => this.#entitlements.current().quota,
      accountTag: () => this.#account.current(),
      generate: (keyType, name) => this.#generate(keyType, name),
      clock,
    });
    this.#seals = new CertificateSeals(storage);
    this.#certificates = new CertificateStore(storage, this.#csrs, this.#counters, this.#audit, this.#seals, clock);
    this.#hostnameKeys = new HostnameKeys(storage, clock);
    this.#acmeAccounts = new AcmeAccounts(storage, clock);
    this.#twins = new HostnameTwins(storage, this.#audit, clock);
    this.#outbox = new AlertOutbox(storage, this.#audit, clock);
    this.#alerting = new AlertingStore(storage, this.#audit, clock, (name) => this.#counters.bump(`metric:${name}`, 1));
    this.#hostnames = new HostnameStore(
      storage,
      this.#hostnameKeys,
      this.#twins,
      this.#csrs,
      this.#counters,
      this.#audit,
      {
        claim: (hostname, id) => this.#hostnameRegistry(hostname).claim(hostname, { zone_id: this.#zoneId(), custom_hostname_id: id }),
        release: async (hostname, id) => {
          await this.#hostnameRegistry(hostname).release(hostname, { zone_id: this.#zoneId(), custom_hostname_id: id });
        },
      },
      hostnameQuotaDefaults(env),
      clock,
    );
    this.#acme = new AcmeOrders(
      storage,
      this.#hostnames,
      this.#hostnameKeys,
      this.#twins,
      this.#acmeAccounts,
      this.#csrs,
      {
        publish: async (hostname, id, token, keyAuthorization, expires) => {
          await this.#hostnameRegistry(hostname).putChallenge(hostname, { zone_id: this.#zoneId(), custom_hostname_id: id }, token, keyAuthorization, expires);
        },
        withdraw: async (hostname, id) => {
          await this.#hostnameRegistry(hostname).dropChallenges({ zone_id: this.#zoneId(), custom_hostname_id: id });
        },
      },
      this.#audit,
      clock,
      (call, event, resource) => this.#outbox.raise(call, event, resource),
      (name) => this.#counters.bump(`metric:${name}`, 1),
    );
    this.#delivery = new KeyDelivery(this.#certificates, this.#hostnames, this.#vault, this.#hostnameKeys, this.#twins, this.#audit, clock);
    this.#gate = new KeyringGate(storage, () => this.env.KEY_ENCRYPTION_KEYS, this.#registry(), (keyring) => this.#opened(keyring), {
      kekIds: () => [...new Set([...this.#vault.kekIds(), ...this.#pool.kekIds()])],
      opens: async (kekId, keyring) => {
        const name = this.#binding.bound();
        if (!name) return true;
        const scope = `${name.kind}:${name.id}`;
        return (await this.#vault.opens(kekId, keyring, scope)) ?? (await this.#pool.opens(kekId, keyring, scope)) ?? true;
      },
    });
    // A zone with ACME work and no alarm (one lost between a commit and its setAlarm, or dropped after the
    // runtime's retries) gets its alarm back when the object starts.
    if (storage.exists) {
      void ctx.blockConcurrencyWhile(async () => {
        const work =
          this.#acme.nextWake() !== null || this.#outbox.pending().length > 0 || this.#alerting.nextWake() !== null || this.#alerting.watchesEdges() || this.#metricsStale();
        if (work && (await ctx.storage.getAlarm()) === null) await ctx.storage.setAlarm(this.#clock().getTime());
      });
    }
  }

  /** Generates a key and CSR for a validated request, within the scope's entitlement. */
  async createCsr(
    call: TenantCall,
    input: Result<CsrInput, BodyRefusal | CsrInputRefusal>,
  ): Promise<Result<CsrRecord, AccessRefusal | BodyRefusal | CsrInputRefusal | EntitlementRefusal | RateLimited>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    const fresh = read.value === null;
    const entitlement = fresh ? defaultEntitlement(this.env) : this.#entitlements.current();
    // Decided before anything is written: a malformed body writes nothing.
    const admitted = admitCreate(input, entitlement, fresh ? 0 : this.#counters.get("csrs"));
    if (!admitted.ok && !("refuse" in admitted)) return admitted;
    const name = await this.#write(call);
    if (!name.ok) return name;
    const keyring = await this.#gate.open(name.value);
    if (!keyring.ok) return keyring;
    if (!admitted.ok) return this.#csrs.refuse(call, input, admitted.refuse);
    // The pool as this create finds it (rsa2048 only: p256v1 keys are not pooled).
    const pool = admitted.value.key_type === "rsa2048" ? this.#pool.state() : null;
    const created = await this.#csrs.create(call, name.value, admitted.value, keyring.value);
    // A pool that was running and had no key for this create: the key was made on demand.
    if (created.ok && pool !== null && pool.started && pool.size > 0 && pool.available === 0) await this.#poolEmptyAlert(call, pool.size);
    return created;
  }

  // custom_csr_key_pool_empty: an rsa2048 create found the scope's running pool empty (at most once an hour per scope).
  async #poolEmptyAlert(call: TenantCall, size: number): Promise<void> {
    const now = this.#clock();
    const told = this.#meta.get("pool_empty_told_at");
    if (told !== null && now.getTime() - Date.parse(told) < POOL_ALERT_INTERVAL_MS) return;
    const scope = call.scope;
    this.#storage.transaction(() => {
      this.#meta.set("pool_empty_told_at", now.toISOString());
      const event = scopeEvent(scope, KEY_POOL_ALERT, `The RSA key pool of ${scope.kind}:${scope.id} is empty: creates generate their keys on demand.`, { pool_size: size, available: 0 }, now);
      this.#outbox.raise({ scope, actor: ALERT_ACTOR }, event, { type: "key_pool", id: null });
    });
    await this.#wake(now.getTime());
  }

  /** One CSR by id, as the API's JSON. */
  getCsr(call: TenantCall, id: string): Result<JsonText, ScopeMismatch | CsrNotFound> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return read.value === null ? fail({ reason: "csr_not_found" }) : this.#csrs.get(id);
  }

  /** One page of CSRs in the requested order, as the API's JSON array. */
  listCsrs(call: TenantCall, query: ListQuery): Result<Page<JsonText>, ScopeMismatch | InvalidQuery> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return read.value === null ? ok(EMPTY_SCOPE.page) : this.#csrs.list(query);
  }

  /**
   * Deletes a CSR and its wrapped key together, only while no certificate
   * names it (1420, recorded as a refused delete): one transaction reads
   * both tables, so an upload cannot slip in between.
   */
  async deleteCsr(call: TenantCall, id: string): Promise<Result<{ id: string }, AccessRefusal | CsrNotFound | CsrInUse>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "csr_not_found" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#storage.transaction((): Result<{ id: string }, CsrNotFound | CsrInUse> => {
      const csr = this.#csrs.toDelete(id);
      if (csr === null) return fail({ reason: "csr_not_found" });
      if (this.#certificates.referencing(id) || this.#hostnames.referencing(id)) return this.#csrs.refuseDelete(call, csr);
      return ok(this.#csrs.remove(call, csr));
    });
  }

  /** Installs a CA-signed certificate for one of this zone's CSRs. */
  async uploadCertificate(call: TenantCall, upload: CertificateUpload): Promise<Result<CertificateRecord, AccessRefusal | UploadRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "csr_not_found", pointer: "/custom_csr_id" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#certificates.upload(call, upload, keyring.value);
  }

  /** Cloudflare's edit: a renewed certificate for the same key, a new placement or bundle method. */
  async editCertificate(call: TenantCall, id: string, edit: CertificateEdit): Promise<Result<CertificateRecord, AccessRefusal | EditRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "certificate_not_found" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#certificates.edit(call, id, edit, keyring.value);
  }

  getCertificate(call: TenantCall, id: string): Result<CertificateRecord, ScopeMismatch | CertificateNotFound> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return read.value === null ? fail({ reason: "certificate_not_found" }) : this.#certificates.get(call.scope, id);
  }

  /** One page of certificates: highest priority first, then upload order; only those the query's status filter admits. */
  listCertificates(call: TenantCall, query: CertificateListQuery): Result<Page<JsonText>, ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return read.value === null ? ok(EMPTY_SCOPE.page) : this.#certificates.list(call.scope, query);
  }

  /** Cloudflare's prioritize: new priorities for the certificates named, all or none; answers the list page `query` asks for. */
  async prioritizeCertificates(
    call: TenantCall,
    changes: PriorityChange[],
    query: CertificateListQuery,
  ): Promise<Result<Page<JsonText>, AccessRefusal | PriorityTargetNotFound>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return changes.length === 0 ? ok(EMPTY_SCOPE.page) : fail({ reason: "certificate_not_found", pointer: changes[0]!.pointer });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#certificates.prioritize(call, changes, query);
  }

  /** Deletes a certificate; its CSR becomes deletable again. */
  async deleteCertificate(call: TenantCall, id: string): Promise<Result<{ id: string }, AccessRefusal | CertificateNotFound>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "certificate_not_found" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#certificates.remove(call, id);
  }

  /** The certificates a registered edge may receive (call.actor is the edge). */
  async listDeliverable(call: TenantCall, edge: EdgeRecipient): Promise<Result<DeliverableCertificate[], AccessRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return ok([]);
    const keyring = await this.#gate.open(read.value);
    if (!keyring.ok) return keyring;
    return this.#delivery.list(call, read.value, keyring.value, edge);
  }

  /** One certificate's chain and its key sealed to the edge (call.actor is the edge). */
  async deliverCertificate(call: TenantCall, edge: EdgeRecipient, id: string): Promise<Result<DeliveryBundle, AccessRefusal | DeliverRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "certificate_not_found" });
    const keyring = await this.#gate.open(read.value);
    if (!keyring.ok) return keyring;
    return this.#delivery.deliver(call, read.value, keyring.value, edge, id);
  }

  /** Creates a custom hostname (zones): Cloudflare's customHostnames.create. */
  async createHostname(
    call: TenantCall,
    input: HostnameCreate,
  ): Promise<Result<{ record: CustomHostnameRecord; overQuota: boolean }, AccessRefusal | NoRoute | HostnameCreateRefusal | UnknownCertificateAuthority>> {
    if (call.scope.kind !== "zones") return fail({ reason: "no_route" });
    const ssl = this.#managedSsl(input.ssl);
    if (!ssl.ok) return ssl;
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    const made = await this.#hostnames.create(call, { ...input, ssl: ssl.value }, keyring.value, this.#renewBefore());
    if (made.ok && ssl.value !== null) {
      const { enqueue, acme } = this.#acmeAfter(ssl.value, false);
      if (enqueue) this.#storage.transaction(() => this.#acme.enqueue(made.value.record.id, enqueue.ca, enqueue.purpose));
      // The alarm runs now: it orders, or schedules itself for the renewal of an uploaded certificate.
      if (acme) await this.#wake(this.#clock().getTime());
    }
    return made;
  }

  getHostname(call: TenantCall, id: string): Result<CustomHostnameRecord, ScopeMismatch | HostnameNotFound> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return read.value === null ? fail({ reason: "hostname_not_found" }) : this.#hostnames.get(id);
  }

  listHostnames(call: TenantCall, query: HostnameListQuery): Result<Page<JsonText>, ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return ok(read.value === null ? EMPTY_SCOPE.page : this.#hostnames.list(query));
  }

  async editHostname(call: TenantCall, id: string, edit: HostnameEdit): Promise<Result<CustomHostnameRecord, AccessRefusal | HostnameEditRefusal | UnknownCertificateAuthority>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "hostname_not_found" });
    const ssl = this.#managedSsl(edit.ssl ?? null);
    if (!ssl.ok) return ssl;
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    const edited = await this.#hostnames.edit(call, id, ssl.value === null ? edit : { ...edit, ssl: ssl.value }, keyring.value, this.#renewBefore());
    if (edited.ok && ssl.value !== null) {
      // An ssl asking for ACME sent again restarts its order (Cloudflare re-triggers validation); an upload drops it.
      const { enqueue, acme } = this.#acmeAfter(ssl.value, edited.value.ssl?.expires_on !== undefined);
      const cancelled = this.#storage.transaction(() => {
        if (enqueue) this.#acme.enqueue(id, enqueue.ca, enqueue.purpose);
        else return this.#acme.cancel(id);
        return false;
      });
      // An order dropped (the certificate is uploaded now): its http-01 answer goes too.
      if (cancelled) await this.#hostnameRegistry(edited.value.hostname).dropChallenges({ zone_id: this.#zoneId(), custom_hostname_id: id });
      if (acme) await this.#wake(this.#clock().getTime());
    }
    return edited;
  }

  async deleteHostname(call: TenantCall, id: string): Promise<Result<{ id: string }, AccessRefusal | HostnameNotFound>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "hostname_not_found" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    const removed = await this.#hostnames.remove(call, id);
    if (removed.ok) this.#acme.cancel(id);
    return removed;
  }

  /** The zone's custom hostname quota (the SDK's quota.get). */
  getHostnameQuota(call: TenantCall): Result<HostnameQuota, ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return ok(read.value === null ? EMPTY_SCOPE.hostnameQuota(this.env) : this.#hostnames.quota());
  }

  /** Admin: sets the zone's custom hostname quota. */
  async setHostnameQuota(call: TenantCall, quota: { allocated: number; hard_cap: number }): Promise<Result<HostnameQuota, AccessRefusal>> {
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return ok(this.#hostnames.setQuota(call, quota));
  }

  /** Cloudflare's fallback origin (null: none set). */
  getFallbackOrigin(call: TenantCall): Result<{ origin: string; created_at: string; updated_at: string } | null, ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return ok(read.value === null ? null : this.#hostnames.fallbackOrigin());
  }

  /** Sets (or, with null, deletes) the fallback origin; answers it as it was set, or as it was before a delete. */
  async setFallbackOrigin(call: TenantCall, origin: string | null): Promise<Result<{ origin: string; created_at: string; updated_at: string } | null, AccessRefusal>> {
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return ok(this.#hostnames.setFallbackOrigin(call, origin));
  }

  // ---- notifications (accounts): Cloudflare's alerting v3 (src/alerting/, docs/notifications.md)

  /** Creates a webhook destination once its test message was answered with a 2xx. */
  async createWebhook(call: TenantCall, input: WebhookInput): Promise<Result<{ id: string }, AccessRefusal | NoRoute | AlertingRefusal>> {
    if (call.scope.kind !== "accounts") return fail({ reason: "no_route" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#alerting.createWebhook(call, input, keyring.value, postWebhook);
  }

  async updateWebhook(call: TenantCall, id: string, input: WebhookInput): Promise<Result<{ id: string }, AccessRefusal | NoRoute | AlertingRefusal>> {
    if (call.scope.kind !== "accounts") return fail({ reason: "no_route" });
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "alert_webhook_not_found" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#alerting.updateWebhook(call, id, input, keyring.value, postWebhook);
  }

  listWebhooks(call: TenantCall): Result<Webhook[], ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return ok(read.value === null ? [] : this.#alerting.listWebhooks());
  }

  getWebhook(call: TenantCall, id: string): Result<Webhook, ScopeMismatch | AlertingRefusal> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return read.value === null ? fail({ reason: "alert_webhook_not_found" }) : this.#alerting.getWebhook(id);
  }

  async deleteWebhook(call: TenantCall, id: string): Promise<Result<null, AccessRefusal | AlertingRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "alert_webhook_not_found" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#alerting.removeWebhook(call, id);
  }

  async createPolicy(call: TenantCall, input: PolicyInput): Promise<Result<{ id: string }, AccessRefusal | NoRoute | AlertingRefusal>> {
    if (call.scope.kind !== "accounts") return fail({ reason: "no_route" });
    const read = this.#read(call);
    if (!read.ok) return read;
    // A policy names destinations: an account with none has nothing a policy could name.
    if (read.value === null && (input.mechanisms.webhooks ?? []).length > 0) return fail({ reason: "alert_mechanism_unknown", pointer: "/mechanisms/webhooks/0/id" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    const created = this.#alerting.createPolicy(call, input);
    // A policy that watches edges starts being checked now.
    if (created.ok && this.#alerting.watchesEdges()) await this.#wake(this.#clock().getTime());
    return created;
  }

  async updatePolicy(call: TenantCall, id: string, edit: Partial<PolicyInput>): Promise<Result<{ id: string }, AccessRefusal | AlertingRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "alert_policy_not_found" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    const updated = this.#alerting.updatePolicy(call, id, edit);
    if (updated.ok && this.#alerting.watchesEdges()) await this.#wake(this.#clock().getTime());
    return updated;
  }

  listPolicies(call: TenantCall): Result<Policy[], ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return ok(read.value === null ? [] : this.#alerting.listPolicies());
  }

  getPolicy(call: TenantCall, id: string): Result<Policy, ScopeMismatch | AlertingRefusal> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return read.value === null ? fail({ reason: "alert_policy_not_found" }) : this.#alerting.getPolicy(id);
  }

  async deletePolicy(call: TenantCall, id: string): Promise<Result<null, AccessRefusal | AlertingRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "alert_policy_not_found" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#alerting.removePolicy(call, id);
  }

  alertHistory(call: TenantCall, query: { page: number; per_page: number; since?: string; before?: string }): Result<{ items: HistoryEntry[]; total: number }, ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return ok(read.value === null ? { items: [], total: 0 } : this.#alerting.history(query));
  }

  /**
   * A zone of this account hands over the events it raised (its alarm; the
   * account takes each once, by id). An account that never wrote anything
   * has no policies: nothing is written, and the events are answered as taken.
   */
  async receiveAlerts(call: TenantCall, events: AlertEvent[]): Promise<Result<number, ScopeMismatch>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return ok(0);
    const made = this.#alerting.receive(events);
    if (made > 0) await this.#wake(this.#clock().getTime());
    return ok(made);
  }

  /** Admin self-check of one stored key. */
  async verifyCsrKey(call: TenantCall, id: string): Promise<Result<KeyCheck, AccessRefusal | CsrNotFound>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return fail({ reason: "csr_not_found" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return this.#vault.verify(call, read.value, id, keyring.value);
  }

  /**
   * Admin: re-wraps a batch of CSR keys under the current KEK, and every
   * pooled key not under it; `remaining` counts both. Then tells the
   * deployment registry which KEKs the scope's data is still under, so a
   * KEK no scope uses can be retired (GET /admin/v1/keys).
   */
  async rewrapKeys(call: TenantCall, limit: number, after: string): Promise<Result<ScopeRewrap, AccessRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) {
      const current = await this.#gate.currentId();
      if (!current.ok) return current;
      return ok({
        kek_id: current.value,
        rewrapped: 0,
        failed: [],
        failures: [],
        remaining: 0,
        next_after: null,
        pooled_rewrapped: 0,
        pooled_failed: [],
        pooled_failures: [],
        audit_rekeyed: 0,
        audit_failed: [],
        certificates_resealed: 0,
        certificates_sealed: [],
        certificates_failed: [],
        hostnames_resealed: 0,
        hostnames_failed: [],
        hostname_keys_rewrapped: 0,
        acme_accounts_rewrapped: 0,
        webhook_secrets_rewrapped: 0,
        key_failures: [],
      });
    }
    const name = read.value;
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    const pooled = await this.#pool.rewrap(call, name, keyring.value);
    const batch = await this.#vault.rewrap(call, name, keyring.value, limit, after);
    const audit = this.#storage.transaction(() => this.#audit.rekey(name, keyring.value, AUDIT_REKEY_BATCH));
    const seals = this.#storage.transaction(() => {
      const report = this.#seals.reseal(keyring.value, name);
      if (report.unsealed.length > 0) {
        this.#audit.record(call, {
          action: "seal",
          resource: { type: "custom_certificate", id: null },
          result: true,
          info: "certificate rows without a MAC sealed by the operator's rewrap: uploaded before rows were sealed, or stripped in storage",
          metadata: { certificate_ids: report.unsealed },
        });
      }
      return report;
    });
    const rows = this.#hostnames.reseal(keyring.value, call);
    const twins = this.#twins.reseal(keyring.value, call);
    const hostnames = { resealed: rows.resealed + twins.resealed, failed: [...rows.failed, ...twins.failed] };
    const recordKeys = (type: "hostname_key" | "acme_account") => (report: KeyRewrap) =>
      this.#audit.record(call, {
        action: "rewrap",
        resource: { type, id: null },
        result: report.failures.length === 0,
        ...(report.failures.length === 0 ? {} : { info: `${report.failures.length} key(s) not moved: erased when they did not unwrap, left when their KEK is not configured` }),
        metadata: { kek_id: keyring.value.currentId, ...report },
      });
    const hostnameKeys = await this.#hostnameKeys.rewrap(name, keyring.value, recordKeys("hostname_key"));
    const accounts = await this.#acmeAccounts.rewrap(name, keyring.value, recordKeys("acme_account"));
    const secrets = await this.#alerting.rewrapSecrets(call, keyring.value);
    if (secrets.rewrapped > 0 || secrets.failures.length > 0) {
      this.#audit.record(call, {
        action: "rewrap",
        resource: { type: "alert_webhook", id: null },
        result: secrets.failures.length === 0,
        ...(secrets.failures.length === 0 ? {} : { info: `${secrets.failures.length} webhook secret(s) not moved` }),
        metadata: { kek_id: keyring.value.currentId, rewrapped: secrets.rewrapped, failures: secrets.failures },
      });
    }
    if (hostnameKeys.lost.length > 0) {
      // A managed key that no longer opens: its certificate is renewed at once, with a fresh key.
      this.#storage.transaction(() => {
        for (const id of hostnameKeys.lost) this.#hostnames.renewNow(id);
      });
      await this.#wake(this.#clock().getTime());
    }
    await this.#registry().reportKeks(name, this.#keksInUse());
    return ok({
      ...batch,
      remaining: batch.remaining + pooled.remaining + audit.remaining + seals.failed.length + hostnames.failed.length + hostnameKeys.remaining + accounts.remaining + secrets.remaining,
      pooled_rewrapped: pooled.rewrapped,
      pooled_failed: pooled.failed,
      pooled_failures: pooled.failures,
      audit_rekeyed: audit.rekeyed,
      audit_failed: audit.failed,
      certificates_resealed: seals.resealed,
      certificates_sealed: seals.unsealed,
      certificates_failed: seals.failed,
      hostnames_resealed: hostnames.resealed,
      hostnames_failed: hostnames.failed,
      hostname_keys_rewrapped: hostnameKeys.rewrapped,
      acme_accounts_rewrapped: accounts.rewrapped,
      webhook_secrets_rewrapped: secrets.rewrapped,
      key_failures: [
        ...hostnameKeys.failures.map((f) => ({ ...f, kind: "hostname_key" as const })),
        ...accounts.failures.map((f) => ({ ...f, kind: "acme_account" as const })),
        ...secrets.failures.map((f) => ({ ...f, kind: "webhook_secret" as const })),
      ],
    });
  }

  /**
   * Admin (zones): the account the zone now belongs to (null: none). Its
   * CSRs take that account's tag, and the move is recorded, in one
   * transaction. The directory object is updated by the Worker after this.
   */
  async linkAccount(call: TenantCall, accountId: string | null, directoryRevision: number): Promise<Result<LinkReport, AccessRefusal | NoRoute>> {
    if (call.scope.kind !== "zones") return fail({ reason: "no_route" });
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return ok(this.#storage.transaction(() => this.#account.link(call, accountId, directoryRevision, this.#csrs.retag(accountId))));
  }

  /** Admin: the scope's RSA key pool, its size and how many keys are ready. */
  getKeyPool(call: TenantCall): Result<PoolState, ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return ok(EMPTY_SCOPE.keyPool(this.env));
    return ok(this.#pool.state());
  }

  /** Admin: keep `size` RSA keys ready (0 turns the pool off and destroys its keys). */
  async setKeyPool(call: TenantCall, size: number): Promise<Result<PoolState, AccessRefusal>> {
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return ok(this.#pool.setSize(call, size));
  }

  /** Admin self-check of every pooled key. */
  async verifyKeyPool(call: TenantCall): Promise<Result<PoolCheck, AccessRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return ok(EMPTY_SCOPE.poolCheck());
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    return ok(await this.#pool.verify(call, read.value, keyring.value));
  }

  /**
   * Fills the key pool, one key per run, while the isolate is idle (the pool
   * says when to run again). Errors are logged, never thrown: a retried alarm
   * would only repeat them.
   */
  override async alarm(): Promise<void> {
    if (!this.#storage.exists) return;
    const scope = this.#binding.bound();
    if (!scope) return;
    const name = `${scope.kind}:${scope.id}`;
    const wakes: number[] = [];
    try {
      const next = await this.#pool.fillOne({ scope, actor: KEY_POOL_ACTOR }, name, () => this.#gate.open(name));
      if (next !== null) wakes.push(this.#clock().getTime() + next);
    } catch (error) {
      console.error(JSON.stringify({ level: "error", event: "key_pool_fill_failed", message: error instanceof Error ? error.message : String(error) }));
    }
    if (scope.kind === "zones") {
      let ran = false;
      try {
        ran = await this.#runAcme({ scope, actor: ACME_ACTOR }, name);
      } catch (error) {
        console.error(JSON.stringify({ level: "error", event: "acme_run_failed", message: error instanceof Error ? error.message : String(error) }));
      }
      const next = this.#acme.nextWake();
      // Work that could not run (no usable configuration or keys, or a failure) is looked at again in a few minutes, not at once.
      if (next !== null) wakes.push(ran ? next : Math.max(next, this.#clock().getTime() + ACME_BLOCKED_RETRY_MS));
      wakes.push(...(await this.#runZoneAlerts({ scope, actor: ALERT_ACTOR }, name)));
    } else {
      wakes.push(...(await this.#runDeliveries({ scope, actor: ALERT_ACTOR }, name)));
    }
    await this.#reportMetrics(name);
    // A request during this run may have set an earlier alarm (a write's metrics report, an order): it is kept.
    // (One already due is this run's own, should the runtime still report it: never a reason to run again at once.)
    const set = await this.ctx.storage.getAlarm();
    if (set !== null && set > this.#clock().getTime()) wakes.push(set);
    if (wakes.length > 0) await this.ctx.storage.setAlarm(Math.max(Math.min(...wakes), this.#clock().getTime() + 50));
  }

  // Whether the scope changed since it last reported its metrics (every change is an audit entry).
  #metricsStale(): boolean {
    return String(this.#audit.head().entries) !== (this.#meta.get("metrics_reported") ?? "");
  }

  // Reports the scope to the fleet's metrics when it changed since the last report; a failure is logged and
  // retried at the next alarm (the report replaces the last one whole, so one missed is made up by the next).
  async #reportMetrics(name: string): Promise<void> {
    if (!this.#metricsStale()) return;
    const entries = String(this.#audit.head().entries);
    try {
      const report = scopeReport(this.#storage, name, this.#pool.state(), this.#counters, this.#clock());
      await this.env.METRICS.get(this.env.METRICS.idFromName(FLEET_METRICS_NAME)).report(report);
      this.#storage.transaction(() => this.#meta.set("metrics_reported", entries));
    } catch (error) {
      console.error(JSON.stringify({ level: "error", event: "metrics_report_failed", scope: name, message: error instanceof Error ? error.message : String(error) }));
      await this.#wake(this.#clock().getTime() + ALERT_RETRY_MS);
    }
  }

  // One run of the ACME machinery, when the deployment has CAs configured and
  // the keys open (without, the hostnames waiting say why in a validation
  // error, and nothing ran: false).
  async #runAcme(call: TenantCall, name: string): Promise<boolean> {
    const config = acmeConfig(this.env as AcmeEnv);
    if (!config.ok) {
      this.#acme.blocked(`the deployment's ACME configuration cannot be used (${config.problem}); the operator must fix it`);
      return false;
    }
    const keyring = await this.#gate.open(name);
    if (!keyring.ok) {
      this.#acme.blocked(`the service's keys cannot be used (${keyring.reason}); the operator must fix KEY_ENCRYPTION_KEYS`);
      return false;
    }
    for (const id of this.#hostnames.unordered()) {
      const hostname = this.#hostnames.managed(id);
      const ca = hostname?.ca ?? config.value.defaultCa;
      if (ca) this.#storage.transaction(() => this.#acme.enqueue(id, ca, hostname?.has_certificate ? "renew" : "issue"));
    }
    await this.#acme.run(call, name, keyring.value, config.value, acmeRetryMs(this.env as AcmeEnv));
    return true;
  }

  // custom_csr_audit_chain_failed: a verification found the trail broken (once per break: its position and reason).
  async #auditBreakAlert(call: TenantCall, checked: Extract<ChainCheck, { ok: false }>): Promise<void> {
    const key = JSON.stringify(checked.broken_at);
    if (this.#meta.get("audit_break_told") === key) return;
    const now = this.#clock();
    const scope = call.scope;
    this.#storage.transaction(() => {
      this.#meta.set("audit_break_told", key);
      const event = scopeEvent(scope, AUDIT_CHAIN_ALERT, `The audit trail of ${scope.kind}:${scope.id} failed verification at entry ${checked.broken_at.position}.`, { broken_at: checked.broken_at, entries_checked: checked.entries_checked }, now);
      this.#outbox.raise({ scope, actor: ALERT_ACTOR }, event, { type: "audit_log", id: null });
    });
    await this.#wake(now.getTime());
  }

  // A zone's notifications: the expiry notices that are due raised, and the events raised handed to the
  // zone's account (a zone under no account has no policies: its events are dropped). Answers when to run again.
  async #runZoneAlerts(call: TenantCall, name: string): Promise<number[]> {
    const wakes: number[] = [];
    try {
      const keyring = await this.#gate.open(name);
      if (!keyring.ok) {
        // Only work waiting is looked at again later (a zone with nothing due is not woken for nothing).
        const expiry = this.#outbox.nextExpiry();
        const due = this.#outbox.pending().length > 0 || (expiry !== null && expiry <= this.#clock().getTime());
        return due ? [this.#clock().getTime() + ACME_BLOCKED_RETRY_MS] : expiry === null ? [] : [expiry];
      }
      this.#outbox.raiseExpiries(call);
      const events = this.#outbox.pending();
      if (events.length > 0) {
        const account = this.#account.current();
        if (account !== null) {
          const stub = this.env.TENANTS.get(this.env.TENANTS.idFromName(`accounts:${account}`));
          const taken = await stub.receiveAlerts({ scope: { kind: "accounts", id: account }, actor: ALERT_ACTOR }, events);
          // Kept for the next run unless the account took them.
          if (!taken.ok) throw new Error(`the account's object refused the events (${taken.reason})`);
        }
        this.#outbox.handedOver(events.map((e) => e.id));
        if (this.#outbox.pending().length > 0) wakes.push(this.#clock().getTime());
      }
    } catch (error) {
      console.error(JSON.stringify({ level: "error", event: "alerts_run_failed", message: error instanceof Error ? error.message : String(error) }));
      wakes.push(this.#clock().getTime() + ALERT_RETRY_MS);
    }
    const expiry = this.#outbox.nextExpiry();
    if (expiry !== null) wakes.push(expiry);
    return wakes;
  }

  // An account's notifications: its own events (its key pool, its audit trail) taken as its zones' are, its
  // policies' edges checked, and the deliveries that are due sent; answers when to run again.
  async #runDeliveries(call: TenantCall, name: string): Promise<number[]> {
    const wakes: number[] = [];
    try {
      const keyring = await this.#gate.open(name);
      if (!keyring.ok) return this.#alerting.nextWake() === null && !this.#alerting.watchesEdges() ? [] : [this.#clock().getTime() + ACME_BLOCKED_RETRY_MS];
      const own = this.#outbox.pending();
      if (own.length > 0) {
        this.#alerting.receive(own);
        this.#outbox.handedOver(own.map((e) => e.id));
      }
      if (this.#alerting.watchesEdges()) {
        const syncs = await this.env.EDGES.get(this.env.EDGES.idFromName(EDGE_REGISTRY_NAME)).syncTimes();
        const next = this.#alerting.checkEdges(call, syncs.ok ? syncs.value : []);
        if (next !== null) wakes.push(next);
      }
      const seconds = Number(this.env.NOTIFICATION_RETRY_SECONDS ?? "30");
      await this.#alerting.run(call, call.scope.id, keyring.value, postWebhook, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 30_000);
    } catch (error) {
      console.error(JSON.stringify({ level: "error", event: "deliveries_run_failed", message: error instanceof Error ? error.message : String(error) }));
      return [this.#clock().getTime() + ALERT_RETRY_MS];
    }
    const next = this.#alerting.nextWake();
    return next === null ? wakes : [...wakes, next];
  }

  // The object's alarm at `at` at the latest (it may be set earlier already: the key pool's, or another order's).
  async #wake(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /**
   * An ssl with its CA resolved when ACME is asked for (a managed
   * certificate, or a custom CSR's with method and type): the request's, else
   * ACME_DEFAULT_CA; 1453 when the deployment has no such CA, or no ACME
   * configuration at all.
   */
  #managedSsl<T extends HostnameSslInput | null>(ssl: T): Result<T, UnknownCertificateAuthority> {
    if (ssl === null) return ok(ssl);
    const asked = ssl.kind === "managed" ? ssl.certificate_authority : ssl.acme === null ? undefined : ssl.acme.certificate_authority;
    if (asked === undefined) return ok(ssl);
    const config = acmeConfig(this.env as AcmeEnv);
    const name = asked ?? (config.ok ? config.value.defaultCa : null) ?? "(none: ACME_DEFAULT_CA)";
    if (!config.ok || !config.value.cas.has(name)) return fail({ reason: "hostname_certificate_authority_unknown", pointer: "/ssl/certificate_authority", name });
    return ok(ssl.kind === "managed" ? { ...ssl, certificate_authority: name } : { ...ssl, acme: { ...ssl.acme!, certificate_authority: name } });
  }

  /**
   * What an ssl just recorded asks of the ACME machinery: an order (a
   * managed certificate, or a custom CSR's to obtain by ACME), nothing (a
   * certificate uploaded: a custom CSR's with ACME is renewed when due), or
   * dropping the order in progress (no ACME any more).
   */
  #acmeAfter(ssl: HostnameSslInput, inForce: boolean): { enqueue: { ca: string; purpose: "issue" | "renew" } | null; acme: boolean } {
    if (ssl.kind === "managed") return { enqueue: { ca: ssl.certificate_authority!, purpose: inForce ? "renew" : "issue" }, acme: true };
    if (ssl.acme === null) return { enqueue: null, acme: false };
    return { enqueue: ssl.custom_certificate === null ? { ca: ssl.acme.certificate_authority!, purpose: inForce ? "renew" : "issue" } : null, acme: true };
  }

  // The renewal rule a custom CSR's uploaded certificate is scheduled by when ACME renews it (null: no ACME configured).
  #renewBefore(): RenewBefore | null {
    const config = acmeConfig(this.env as AcmeEnv);
    return config.ok ? config.value.renewBefore : null;
  }

  /**
   * What this scope holds, the size of its database, and the audit chain's
   * head, which an operator can keep elsewhere to prove later that nothing
   * before it was rewritten.
   */
  getStats(call: TenantCall): Result<{ csrs: number; certificates: number; database_bytes: number; audit: AuditHead & { keyed_from: number | null } }, ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return ok(EMPTY_SCOPE.stats());
    return ok({
      csrs: this.#counters.get("csrs"),
      certificates: this.#counters.get("certificates"),
      database_bytes: this.ctx.storage.sql.databaseSize,
      audit: { ...this.#audit.head(), keyed_from: this.#audit.keyedFrom() },
    });
  }

  /** One page of the scope's audit trail, as the audit-log API's JSON array. */
  listAudit(call: TenantCall, query: AuditQuery): Result<Page<JsonText>, ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    return read.value === null ? ok(EMPTY_SCOPE.page) : ok(this.#audit.list(call.scope.id, query));
  }

  /**
   * Up to `limit` audit entries, and about `maxBytes` of text (at least one
   * entry), after `after` (an entry id, or null from the start) as JSON lines.
   */
  exportAudit(call: TenantCall, after: string | null, limit: number, maxBytes: number): Result<{ lines: string; next: string | null }, ScopeMismatch | AuditEntryNotFound> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return after === null ? ok(EMPTY_SCOPE.exportBatch) : fail({ reason: "audit_entry_not_found" });
    const page = this.#audit.exportPage(call.scope.id, after, limit, maxBytes);
    return page ? ok(page) : fail({ reason: "audit_entry_not_found" });
  }

  /**
   * Recomputes the audit chain and checks its MACs: ok with its length, head
   * and first keyed position, or where it breaks; 1501 naming a KEK some
   * MAC is keyed under that is not configured.
   */
  async verifyAudit(call: TenantCall): Promise<Result<ChainCheck, AccessRefusal>> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return ok(EMPTY_SCOPE.chain());
    const keyring = await this.#gate.open(read.value);
    if (!keyring.ok) return keyring;
    try {
      const checked = this.#audit.verify(read.value, keyring.value);
      if (!checked.ok) await this.#auditBreakAlert(call, checked);
      return ok(checked);
    } catch (error) {
      if (error instanceof MacKeyMissing) return fail({ reason: "key_encryption_key_missing", kek_id: error.kekId });
      throw error;
    }
  }

  /** The entitlement in force for this scope. */
  getEntitlement(call: TenantCall): Result<Entitlement & { used: number }, ScopeMismatch> {
    const read = this.#read(call);
    if (!read.ok) return read;
    if (read.value === null) return ok(EMPTY_SCOPE.entitlement(this.env));
    return ok({ ...this.#entitlements.current(), used: this.#counters.get("csrs") });
  }

  /** Sets this scope's entitlement (admin only; the Worker checks the admin secret). */
  async setEntitlement(call: TenantCall, entitlement: Entitlement): Promise<Result<Entitlement & { used: number }, AccessRefusal>> {
    const keyring = await this.#writeWithKeys(call);
    if (!keyring.ok) return keyring;
    this.#entitlements.set(call, entitlement);
    return this.getEntitlement(call);
  }

  // Every call tells the isolate's activity signal that a tenant is being
  // served (the key pool waits on it). A read checks the scope this object
  // holds without writing anything; it answers null when the object was
  // never written (the caller answers as an empty scope).
  #read(call: TenantCall): Result<string | null, ScopeMismatch> {
    touch();
    if (!this.#storage.exists) return ok(null);
    return this.#binding.check(call.scope);
  }

  // A write: the scope is listed with the deployment registry before the
  // object's first write (so the Worker never answers a scope with data as
  // empty), the schema is made, and the scope is bound to this object.
  async #write(call: TenantCall): Promise<Result<string, ScopeMismatch>> {
    touch();
    if (!this.#storage.exists) {
      const name = `${call.scope.kind}:${call.scope.id}`;
      await this.#registry().enlistScope(name);
      this.#storage.create();
    }
    const bound = this.#binding.bind(call.scope);
    // The alarm runs a moment after the write: the scope reports its metrics (src/metrics/fleet-metrics.ts), and a
    // zone raises the expiry notices now due and schedules the next (src/tenant/alert-outbox.ts).
    if (bound.ok) await this.#wake(this.#clock().getTime() + METRICS_DELAY_MS);
    return bound;
  }

  // A write that needs the keyring (every write: its audit entry is keyed).
  async #writeWithKeys(call: TenantCall): Promise<Result<Keyring, AccessRefusal>> {
    const name = await this.#write(call);
    if (!name.ok) return name;
    return this.#gate.open(name.value);
  }

  // The KEK ids the scope's data is under now, for the deployment registry.
  #keksInUse(): string[] {
    return [
      ...new Set([
        ...this.#vault.kekIds(),
        ...this.#pool.kekIds(),
        ...this.#audit.kekIds(),
        ...this.#seals.kekIds(),
        ...this.#hostnames.kekIds(),
        ...this.#twins.kekIds(),
        ...this.#alerting.kekIds(),
        ...this.#hostnameKeys.kekIds(),
        ...this.#acmeAccounts.kekIds(),
      ]),
    ].sort();
  }

  // Every keyring the gate hands out keys the audit trail.
  #opened(keyring: Keyring): void {
    this.#audit.useKeyring(keyring);
  }

  // A fresh key pair. RSA generations run one at a time per scope, a bounded
  // number waiting, and each first lets other scopes' requests in flight in
  // this isolate go ahead (for at most RSA_YIELD_MAX_MS): a generation holds
  // the thread for 50–65 ms, and back to back they would hold every other
  // tenant's requests behind them (bench: "during a flood").
  #generate(keyType: KeyType, scope: string): Promise<CryptoKeyPair | null> {
    if (keyType !== "rsa2048") return generateKeyPair(keyType);
    return this.#rsa.run(async () => {
      // Always one step (requests that arrived meanwhile get in), then more
      // while other scopes' requests are in flight.
      let waited = 0;
      do {
        await new Promise((done) => setTimeout(done, RSA_YIELD_STEP_MS));
        waited += RSA_YIELD_STEP_MS;
      } while (waited < RSA_YIELD_MAX_MS && othersInFlight(scope));
      return generateKeyPair(keyType);
    });
  }

  // The zone this object holds (hostname claims name it); only asked after a write bound it.
  #zoneId(): string {
    const scope = this.#binding.bound();
    if (!scope || scope.kind !== "zones") throw new Error("a hostname claim outside a zone's object");
    return scope.id;
  }

  #hostnameRegistry(hostname: string) {
    return this.env.HOSTNAMES.get(this.env.HOSTNAMES.idFromName(hostnameShardName(hostname)));
  }

  #registry() {
    return this.env.DEPLOYMENT.get(this.env.DEPLOYMENT.idFromName(DEPLOYMENT_REGISTRY_NAME));
  }
}
