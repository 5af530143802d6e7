import { DurableObject } from "cloudflare:workers";
import { type Result, ok } from "../core/result";
import type { KeyRefusal } from "../pki/keyring";
import type { StorageUnavailable } from "./checks";
import { DEPLOYMENT_REGISTRY_NAME } from "../core/objects";
import { openStorage } from "../storage/storage";
import { PROBE_MIGRATIONS, Throttled, checkKeys, checkStorage } from "./checks";

/** How long one check's result answers /readyz (at most one storage write per interval). */
export const READINESS_INTERVAL_MS = 1_000;

/** What the readiness check found: the failures of the checks that did not pass (none when ready). */
export interface ReadinessReport {
  readonly failures: ReadonlyArray<StorageUnavailable | KeyRefusal>;
}

/** The one probe object's name (`idFromName`): a single small database, never a tenant's. */
export const PROBE_NAME = "readiness";

/**
 * The readiness probe (GET /readyz): a Durable Object of its own, with one
 * one-row table, so that checking that storage is writable never creates
 * tenant objects or rows. It runs in the same runtime, on the same storage
 * and with the same secrets as the tenant objects, so what it finds holds
 * for them.
 */
export class ReadinessProbe extends DurableObject<Env> {
  readonly #sql = openStorage(this.ctx, PROBE_MIGRATIONS).sql;
  readonly #checks = new Throttled(async (): Promise<ReadinessReport> => {
    const registry = this.env.DEPLOYMENT.get(this.env.DEPLOYMENT.idFromName(DEPLOYMENT_REGISTRY_NAME));
    const [storage, keys] = await Promise.all([
      checkStorage(this.#sql, () => this.ctx.storage.sync()),
      checkKeys(this.env.KEY_ENCRYPTION_KEYS, { keyStatus: () => registry.keyStatus() }),
    ]);
    return { failures: [...(storage === null ? [] : [storage]), ...keys] };
  }, READINESS_INTERVAL_MS);

  /** Every check's outcome (run at most once a second); a failing check is reported, never thrown. */
  async check(): Promise<Result<ReadinessReport, never>> {
    return ok(await this.#checks.get());
  }
}
