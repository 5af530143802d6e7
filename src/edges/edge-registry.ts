import { DurableObject } from "cloudflare:workers";
import { DEPLOYMENT_REGISTRY_NAME, EDGE_REGISTRY_NAME } from "../core/objects";
import { type Result, fail, ok } from "../core/result";
import { KeyringGate } from "../deployment/keyring-gate";
import type { EdgeRecipient } from "../pki/edge-key";
import type { EdgeLabels } from "../pki/geo-policy";
import type { KeyRefusal, Keyring } from "../pki/keyring";
import type { IntegrityFailed } from "../pki/row-seal";
import { openStorage } from "../storage/storage";
import type { EdgeRecord, EdgeRegistration } from "./edge-records";
import { type EdgeNotFound, EdgeStore } from "./edge-store";
import { EDGE_MIGRATIONS } from "./schema";
import { type ServiceJwk, type ServiceKeyRefusal, ServiceKeys } from "./service-key";

export type { EdgeRecord, EdgeRegistration, ServiceJwk };
export { EDGE_REGISTRY_NAME };

/** What the registry's rewrap did: the service key moved, rows re-sealed, rows that failed their MAC. */
export interface RegistryRewrap {
  service_key_rewrapped: boolean;
  /** Why the service key was not moved (its KEK missing, its wrap or public half damaged), or null. */
  service_key_failure: ServiceKeyRefusal["reason"] | null;
  resealed: number;
  failed: string[];
  /** Rows that had no MAC (registered before rows were sealed, or stripped), sealed now: the operator should check them. */
  unsealed: string[];
  /** KEKs this registry's data is still under. */
  kek_ids: string[];
}

/** A delivery request from an edge that is not registered: unknown, or revoked (ours: 1474). */
export type EdgeNotRegistered = { readonly reason: "edge_not_registered" };

/**
 * The operator's edges, in a SQLite-backed Durable Object of its own (one
 * for the whole deployment): edges serve every zone, so they belong to no
 * tenant's object, and one object gives every delivery a consistent view in
 * which a revocation takes effect on the next request. It also holds the
 * service's signing key, with which every delivery listing and bundle is
 * signed for the edges that pinned it. Rows are sealed with a MAC under a
 * key derived from a KEK, opened through the same gate as a tenant's (the
 * registry's data counts as the scope `edge-registry` with the deployment
 * registry). The class is the RPC surface only; every method returns a
 * Result.
 */
export class EdgeRegistry extends DurableObject<Env> {
  readonly #edges: EdgeStore;
  readonly #serviceKeys: ServiceKeys;
  readonly #gate: KeyringGate;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const storage = openStorage(ctx, EDGE_MIGRATIONS);
    this.#edges = new EdgeStore(storage);
    this.#serviceKeys = new ServiceKeys(storage);
    const registry = env.DEPLOYMENT.get(env.DEPLOYMENT.idFromName(DEPLOYMENT_REGISTRY_NAME));
    this.#gate = new KeyringGate(storage, () => this.env.KEY_ENCRYPTION_KEYS, registry, () => undefined, {
      kekIds: () => [...new Set([...this.#serviceKeys.kekIds(), ...this.#edges.kekIds()])],
      opens: async (kekId, keyring) => (await this.#serviceKeys.opens(kekId, keyring)) ?? this.#edges.opens(kekId, keyring) ?? true,
    });
  }

  /** Registers an edge or replaces its key and labels (admin); with the service key the edge must pin. */
  async putEdge(id: string, registration: EdgeRegistration): Promise<Result<{ record: EdgeRecord & { service_key: ServiceJwk }; created: boolean }, ServiceKeyRefusal>> {
    const keyring = await this.#keys();
    if (!keyring.ok) return keyring;
    const serviceKey = await this.#serviceKeys.publicKey(keyring.value);
    if (!serviceKey.ok) return serviceKey;
    const { record, created } = this.#edges.put(id, registration, keyring.value);
    return ok({ record: { ...record, service_key: serviceKey.value }, created });
  }

  /** One edge (admin), with the service key it must pin; 1477 when its row was changed in storage. */
  async getEdge(id: string): Promise<Result<EdgeRecord & { service_key: ServiceJwk }, ServiceKeyRefusal | EdgeNotFound>> {
    const keyring = await this.#keys();
    if (!keyring.ok) return keyring;
    const record = this.#edges.get(id, keyring.value);
    if (!record.ok) return record;
    const serviceKey = await this.#serviceKeys.publicKey(keyring.value);
    if (!serviceKey.ok) return serviceKey;
    return ok({ ...record.value, service_key: serviceKey.value });
  }

  /** Every registered edge, by id (admin); a row changed in storage is listed as failing its integrity check. */
  async listEdges(): Promise<Result<Array<EdgeRecord | { id: string; integrity: "failed" }>, KeyRefusal>> {
    const keyring = await this.#keys();
    if (!keyring.ok) return keyring;
    return ok(this.#edges.list(keyring.value));
  }

  /** Revokes an edge (admin). */
  deleteEdge(id: string): Result<{ id: string }, EdgeNotFound> {
    return this.#edges.remove(id);
  }

  /** The edge a delivery request comes from, as registered now; 1474 when unknown or revoked, 1477 when its row was changed. */
  async deliveryEdge(id: string, listing = false): Promise<Result<EdgeRecipient, KeyRefusal | EdgeNotRegistered | IntegrityFailed>> {
    const keyring = await this.#keys();
    if (!keyring.ok) return keyring;
    const record = this.#edges.get(id, keyring.value);
    if (!record.ok) return record.reason === "edge_not_found" ? fail({ reason: "edge_not_registered" }) : record;
    // A listing is a sync: when it happened is the edge's last-sync metric.
    if (listing) this.ctx.storage.sql.exec(`INSERT INTO edge_syncs (edge_id, last_sync_at) VALUES (?, ?) ON CONFLICT (edge_id) DO UPDATE SET last_sync_at = excluded.last_sync_at`, id, new Date().toISOString());
    const { public_key, thumbprint, labels } = record.value;
    return ok({ id, public_key, thumbprint, labels });
  }

  /** When each registered edge last fetched its listing (null: never), for the fleet's metrics. */
  syncTimes(): Result<Array<{ id: string; last_sync_at: string | null }>, never> {
    return ok(
      this.ctx.storage.sql
        .exec<{ id: string; last_sync_at: string | null }>(`SELECT e.id AS id, s.last_sync_at AS last_sync_at FROM edges e LEFT JOIN edge_syncs s ON s.edge_id = e.id ORDER BY e.id`)
        .toArray(),
    );
  }

  /** The labels of every registered (intact) edge. */
  async edgeLabels(): Promise<Result<EdgeLabels[], KeyRefusal>> {
    const keyring = await this.#keys();
    if (!keyring.ok) return keyring;
    return ok(this.#edges.labels(keyring.value));
  }

  /** The service's public signing key, which edges pin (`edge sync --service-key`). */
  async serviceKey(): Promise<Result<ServiceJwk, ServiceKeyRefusal>> {
    const keyring = await this.#keys();
    if (!keyring.ok) return keyring;
    return this.#serviceKeys.publicKey(keyring.value);
  }

  /** A compact JWS of `payload` under the service key (a delivery listing or bundle). */
  async sign(payload: string): Promise<Result<string, ServiceKeyRefusal>> {
    const keyring = await this.#keys();
    if (!keyring.ok) return keyring;
    return this.#serviceKeys.sign(keyring.value, payload);
  }

  /**
   * Moves the registry's data under the current KEK (the deployment-wide
   * rewrap): the service key's wrap, and every row's MAC (a row whose MAC
   * does not match is left, and reported). Tells the deployment registry
   * which KEKs it is still under.
   */
  async rewrap(): Promise<Result<RegistryRewrap, KeyRefusal>> {
    const keyring = await this.#keys();
    if (!keyring.ok) return keyring;
    const moved = await this.#serviceKeys.rewrap(keyring.value);
    if (!moved.ok) console.error(JSON.stringify({ level: "error", event: "service_key_not_rewrapped", reason: moved.reason }));
    const { resealed, failed, unsealed } = this.#edges.reseal(keyring.value);
    if (unsealed.length > 0) console.error(JSON.stringify({ level: "warn", event: "edge_rows_sealed", edge_ids: unsealed }));
    const kekIds = [...new Set([...this.#serviceKeys.kekIds(), ...this.#edges.kekIds()])].sort();
    const registry = this.env.DEPLOYMENT.get(this.env.DEPLOYMENT.idFromName(DEPLOYMENT_REGISTRY_NAME));
    await registry.reportKeks(EDGE_REGISTRY_NAME, kekIds);
    return ok({ service_key_rewrapped: moved.ok && moved.value, service_key_failure: moved.ok ? null : moved.reason, resealed, failed, unsealed, kek_ids: kekIds });
  }

  #keys(): Promise<Result<Keyring, KeyRefusal>> {
    return this.#gate.open(EDGE_REGISTRY_NAME);
  }
}
