import { DurableObject } from "cloudflare:workers";
import { type Result, fail, ok } from "../core/result";
import { openStorage } from "../storage/storage";
import type { EdgeRecipient } from "../pki/edge-key";
import type { EdgeLabels } from "../pki/geo-policy";
import type { EdgeRecord, EdgeRegistration } from "./edge-records";
import { EdgeStore } from "./edge-store";
import { EDGE_MIGRATIONS } from "./schema";

export type { EdgeRecord, EdgeRegistration };

/** The one registry object's name: the registry is a singleton for the deployment. */
export const EDGE_REGISTRY_NAME = "edge-registry";

/**
 * The operator's edges, in a SQLite-backed Durable Object of its own (one
 * for the whole deployment): edges serve every zone, so they belong to no
 * tenant's object, and one object gives every delivery a consistent view in
 * which a revocation takes effect on the next request. The class is the RPC
 * surface only; EdgeStore owns the table. Every method returns a Result.
 */
export class EdgeRegistry extends DurableObject<Env> {
  readonly #edges: EdgeStore;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const { sql, transaction } = openStorage(ctx, EDGE_MIGRATIONS);
    this.#edges = new EdgeStore(sql, transaction);
  }

  /** Registers an edge or replaces its key and labels (admin). */
  putEdge(id: string, registration: EdgeRegistration): Result<{ record: EdgeRecord; created: boolean }> {
    return ok(this.#edges.put(id, registration));
  }

  getEdge(id: string): Result<EdgeRecord> {
    const record = this.#edges.get(id);
    return record ? ok(record) : fail("edge_not_found");
  }

  /** Every registered edge, by id (admin). */
  listEdges(): Result<EdgeRecord[]> {
    return ok(this.#edges.list());
  }

  /** Revokes an edge (admin). */
  deleteEdge(id: string): Result<{ id: string }> {
    return this.#edges.remove(id);
  }

  /** The edge a delivery request comes from, as registered now; 1474 when unknown or revoked. */
  deliveryEdge(id: string): Result<EdgeRecipient> {
    const record = this.#edges.get(id);
    if (!record) return fail("edge_not_registered");
    return ok({ id: record.id, public_key: record.public_key, thumbprint: record.thumbprint, labels: record.labels });
  }

  /** The labels of every registered edge. */
  edgeLabels(): Result<EdgeLabels[]> {
    return ok(this.#edges.labels());
  }
}
