// Fills scopes to a size before they are measured. CSRs: over HTTP
// (creates at 16 connections, the real path) while that keeps the seeding
// within its time budget; then through the bench-only seeder Worker
// (bench/workers/seed.js), which calls TenantStore.createCsr directly (real
// keys, CSRs and wraps; no HTTP, no auth). Audit entries: through the
// seeder's setEntitlement calls. The object's own count is the truth.
import type { ApiClient, KeyType, Kind } from "./api-client.ts";
import type { Log } from "./lifecycle.ts";
import { load } from "./load.ts";
import type { Seeding } from "./results.ts";

export interface Seeder {
  /** Tops a scope up to `target` CSRs. */
  seed(kind: Kind, id: string, target: number, keyType?: KeyType): Promise<void>;
  /** Grows an account's audit trail to `target` entries. */
  seedAudit(id: string, target: number): Promise<void>;
}

/** Splits `batch` over 4 concurrent calls of the seeder Worker (`query` names what to add). */
function seederCalls(seedUrl: string, batch: number, query: (n: number) => string): Promise<unknown> {
  return Promise.all(
    Array.from({ length: 4 }, (_, i) => {
      const n = Math.floor(batch / 4) + (i < batch % 4 ? 1 : 0);
      return n ? fetch(`${seedUrl}/?${query(n)}`).then((r) => r.text(), () => null) : null;
    }),
  );
}

/**
 * A seeder over `client`; `seedUrl` is the seeder Worker's origin. A scope
 * grown by 100 or more is reported in `seeding`; seeding that stops
 * progressing fails the run.
 */
export function seeder({
  client,
  seedUrl,
  httpBudgetSeconds,
  seeding,
  log,
  fail,
}: {
  client: ApiClient;
  seedUrl: string;
  /** Above this projected time, CSRs go through the RPC seeder. */
  httpBudgetSeconds: number;
  seeding: Seeding[];
  log: Log;
  fail: (what: string) => never;
}): Seeder {
  // The last measured rate of HTTP creates (p256v1, batches of 500 or more), across scopes.
  let httpSeedRate: number | null = null;
  return {
    async seed(kind, id, target, keyType = "p256v1") {
      let have = (await client.stats(kind, id)).csrs;
      const t0 = Date.now();
      const from = have;
      let via: "http" | "rpc" = "http";
      while (have < target) {
        const missing = target - have;
        const projected = httpSeedRate ? missing / httpSeedRate : 0;
        if (via === "http" && keyType === "p256v1" && projected > httpBudgetSeconds) via = "rpc";
        if (via === "http" && missing < 50) {
          // At most 8 at once: a scope takes at most 16 rsa2048 creates in flight (429 beyond).
          for (let i = 0; i < missing; i += 8) await Promise.all(Array.from({ length: Math.min(8, missing - i) }, () => client.createOne(kind, id, keyType)));
          have = (await client.stats(kind, id)).csrs;
        } else if (via === "http") {
          const batch = Math.min(missing, 5_000);
          const b0 = Date.now();
          await load({ ...client.create(kind, id, keyType), connections: Math.min(keyType === "rsa2048" ? 8 : 16, batch), amount: batch });
          const now = (await client.stats(kind, id)).csrs;
          if (keyType === "p256v1" && batch >= 500) httpSeedRate = (now - have) / ((Date.now() - b0) / 1000);
          have = now;
        } else {
          await seederCalls(seedUrl, Math.min(missing, 1_000), (n) => `kind=${kind}&id=${id}&count=${n}&key_type=${keyType}`);
          const now = (await client.stats(kind, id)).csrs;
          if (now === have) fail(`seeding ${kind}/${id} is not progressing`);
          have = now;
        }
      }
      const seconds = (Date.now() - t0) / 1000;
      if (have - from >= 100) {
        seeding.push({
          name: `${kind}/${id}: ${from.toLocaleString("en")} → ${have.toLocaleString("en")} (${via === "http" ? "HTTP creates" : "HTTP, then the RPC seeder"})`,
          count: have - from,
          seconds,
          rate: (have - from) / seconds,
        });
        log(`seeded ${kind}/${id} to ${have} in ${seconds.toFixed(1)} s (${((have - from) / seconds).toFixed(0)}/s, last HTTP rate ${httpSeedRate?.toFixed(0) ?? "–"}/s)`);
      }
    },

    // Each entry goes through the real setEntitlement RPC: a hash-chained entry with a small metadata object.
    async seedAudit(id, target) {
      const t0 = Date.now();
      let have = (await client.stats("accounts", id)).auditEntries;
      const from = have;
      while (have < target) {
        await seederCalls(seedUrl, Math.min(target - have, 4_000), (n) => `kind=accounts&id=${id}&count=${n}&audit=1`);
        const now = (await client.stats("accounts", id)).auditEntries;
        if (now === have) fail(`seeding the audit trail of accounts/${id} is not progressing`);
        have = now;
      }
      const seconds = (Date.now() - t0) / 1000;
      if (have - from >= 100) {
        seeding.push({ name: `accounts/${id} audit trail: ${from.toLocaleString("en")} → ${have.toLocaleString("en")} entries (the RPC seeder)`, count: have - from, seconds, rate: (have - from) / seconds });
        log(`seeded the audit trail of accounts/${id} to ${have} entries in ${seconds.toFixed(1)} s`);
      }
    },
  };
}
