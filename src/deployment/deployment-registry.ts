import { DurableObject } from "cloudflare:workers";
import { type Result, fail, ok } from "../core/result";
import { type KeyRefusal, KeyringError, loadKeyring } from "../pki/keyring";
import { type Storage, openStorage } from "../storage/storage";
import { type KekMismatch, type KekRecord, KekUsage } from "./kek-usage";
import { type KeyStatus, keyStatus } from "./key-status";
import { DEPLOYMENT_MIGRATIONS } from "./schema";
import { type ScopeImport, type ScopePage, ScopeList } from "./scope-list";
import { EDGE_REGISTRY_NAME } from "../core/objects";

export type { KekRecord, KeyStatus, ScopeImport, ScopePage };

export { DEPLOYMENT_REGISTRY_NAME } from "../core/objects";

/**
 * What the deployment as a whole holds (docs/storage.md): which scopes have
 * data, and which key-encryption keys that data is wrapped under, with each
 * KEK's check value. One Durable Object for the deployment, apart from the
 * tenants; it holds no tenant data and no key. The Worker asks it whether a
 * scope exists before waking the scope's object for a read (and caches a
 * yes), and tells it of a scope before the scope's first write; tenant
 * objects record each KEK they wrap under here; /readyz and npm start
 * compare the configured KEKs with the recorded check values. The class is
 * the RPC surface; every method returns a Result.
 */
export class DeploymentRegistry extends DurableObject<Env> {
  readonly #storage: Storage;
  readonly #scopes: ScopeList;
  readonly #keks: KekUsage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const storage = (this.#storage = openStorage(ctx, DEPLOYMENT_MIGRATIONS));
    this.#scopes = new ScopeList(storage);
    this.#keks = new KekUsage(storage);
  }

  /** Lists a scope before its first write (idempotent). */
  enlistScope(name: string): Result<void, never> {
    this.#scopes.enlist(name);
    return ok(undefined);
  }

  /**
   * Whether a scope has data: `exists` when it is listed, and `complete`
   * when the list holds every scope with data (otherwise an unlisted scope
   * may still have some, from before the registry existed).
   */
  lookupScope(name: string): Result<{ exists: boolean; complete: boolean }, never> {
    return ok({ exists: this.#scopes.has(name), complete: this.#scopes.complete() });
  }

  /**
   * Lists the scopes found in an existing data directory (npm start's
   * import), each with the KEK ids its data uses when the importer read them
   * (then the scope has reported its KEKs; the edge registry's are recorded
   * under its name, which is not a scope), and records `checks`: check values
   * the importer verified against that data by a trial unwrap, so they are
   * known before any write could record another key's. Marks the list
   * complete when told so. One transaction; 1505 naming a KEK whose check
   * value differs from the one recorded, and then nothing is written.
   */
  importScopes(scopes: ScopeImport[], complete: boolean, checks: Record<string, string> = {}): Result<{ added: number }, KekMismatch> {
    return this.#storage.transaction((): Result<{ added: number }, KekMismatch> => {
      const mismatch = this.#keks.mismatch(checks);
      if (mismatch) return fail(mismatch);
      this.#keks.record(checks);
      for (const { name, kek_ids } of scopes) if (kek_ids !== null) this.#keks.add(name, kek_ids);
      return ok({ added: this.#scopes.import(scopes.filter((s) => s.name !== EDGE_REGISTRY_NAME), complete) });
    });
  }

  /** One page of scopes by name, with the KEKs each one's data uses. */
  listScopes(after: string, limit: number): Result<ScopePage, never> {
    return ok(this.#scopes.page(after, limit));
  }

  /** A scope wraps data under `kekId`: its check value is recorded, or must match the one recorded (1505). */
  useKek(scope: string, kekId: string, check: string): Result<void, KekMismatch> {
    return this.#keks.use(scope, kekId, check);
  }

  /** The KEKs a scope's data uses now (after a rewrap counted them): the scope has reported its KEKs. */
  reportKeks(scope: string, kekIds: string[]): Result<void, never> {
    this.#storage.transaction(() => {
      this.#keks.report(scope, kekIds);
      this.#scopes.markReported(scope);
    });
    return ok(undefined);
  }

  /**
   * A deployment-wide rewrap finished with `scope`: its object reported the
   * KEKs its data uses (reportKeks), or it has none (an object never
   * written, listed by name only): either way nothing unknown is left.
   */
  scopeRewrapped(scope: string): Result<void, never> {
    this.#scopes.markReported(scope);
    return ok(undefined);
  }

  /** Every recorded KEK, with its check value and how many scopes use it. */
  listKeks(): Result<KekRecord[], never> {
    return ok(this.#keks.list());
  }

  /**
   * The configured KEKs against the recorded ones (GET /admin/v1/keys,
   * /readyz): each one's state, which may be retired, and the failures that
   * stop the deployment from serving its data (1501, 1505, naming the KEK).
   */
  async keyStatus(): Promise<Result<{ status: KeyStatus; failures: KeyRefusal[] }, KeyRefusal>> {
    let keyring;
    try {
      keyring = await loadKeyring(this.env.KEY_ENCRYPTION_KEYS);
    } catch (error) {
      if (!(error instanceof KeyringError)) throw error;
      return fail({ reason: "key_encryption_unavailable" });
    }
    return ok(keyStatus(keyring, this.#keks.list(), { complete: this.#scopes.complete(), unreported: this.#scopes.unreported() }));
  }

  /**
   * What a deployment-wide rewrap visits, by name after `after`: scopes
   * with data under a KEK other than `current`, and scopes listed by name
   * only (whose KEKs are not known until a rewrap counts them).
   */
  scopesNotUnder(current: string, after: string, limit: number): Result<string[], never> {
    const names = new Set([...this.#keks.scopesNotUnder(current, after, limit), ...this.#scopes.unreportedAfter(after, limit)]);
    return ok([...names].sort().slice(0, limit));
  }
}
