import { GENESIS_HASH, hex } from "./audit-chain";
import type { AuditHead, ChainCheck } from "./audit-trail";
import { type Entitlement, defaultEntitlement } from "./entitlements";
import { POOLED_KEY_TYPE, type PoolCheck, type PoolState, defaultPoolSize } from "./key-pool";
import type { JsonText, Page } from "../storage/paging";

/**
 * What a scope with no data answers, in one place: the tenant object answers
 * so when it was never written, and the Worker answers the same without
 * waking it when the deployment registry says the scope has no data (a read
 * never creates storage, not even the object's empty database file).
 */
export const EMPTY_SCOPE = {
  page: { items: "[]" as JsonText, count: 0, total: 0 } satisfies Page<JsonText>,
  entitlement: (env: Env): Entitlement & { used: number } => ({ ...defaultEntitlement(env), used: 0 }),
  keyPool: (env: Env): PoolState => ({ key_type: POOLED_KEY_TYPE, size: defaultPoolSize(env), available: 0, started: false }),
  poolCheck: (): PoolCheck => ({ checked: 0, ok: true, failed: [], failures: [] }),
  stats: (): { csrs: number; certificates: number; database_bytes: number; audit: AuditHead & { keyed_from: null } } => ({
    csrs: 0,
    certificates: 0,
    database_bytes: 0,
    audit: { entries: 0, head: hex(GENESIS_HASH), keyed_from: null },
  }),
  chain: (): ChainCheck => ({ ok: true, entries: 0, head: hex(GENESIS_HASH), keyed_from: null }),
  exportBatch: { lines: "", next: null as string | null },
  hostnameQuota: (env: Env) => {
    const { allocated, hard_cap } = hostnameQuotaDefaults(env);
    return { allocated, exceeded: allocated <= 0, hard_cap, used: 0 };
  },
} as const;

/** The custom hostname quota of a zone the operator set none for (wrangler.toml vars). */
export function hostnameQuotaDefaults(env: { DEFAULT_CUSTOM_HOSTNAME_QUOTA?: string; DEFAULT_CUSTOM_HOSTNAME_HARD_CAP?: string }): { allocated: number; hard_cap: number } {
  const number = (raw: string | undefined, fallback: number) => {
    const n = Number.parseInt(raw ?? "", 10);
    return Number.isFinite(n) && n >= 0 ? n : fallback;
  };
  const allocated = number(env.DEFAULT_CUSTOM_HOSTNAME_QUOTA, 10_000);
  return { allocated, hard_cap: Math.max(allocated, number(env.DEFAULT_CUSTOM_HOSTNAME_HARD_CAP, allocated)) };
}
