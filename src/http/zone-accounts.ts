import { DIRECTORY_NAME, type ZoneDirectory } from "../directory/zone-directory";

/**
 * How long this isolate answers from what it last read of a zone's account:
 * a zone recorded, moved or unrecorded takes effect for authorization
 * within this bound everywhere (at once in the isolate that made the change).
 */
export const ZONE_ACCOUNT_TTL_MS = 10_000;
const CACHE_MAX = 10_000;

// zone id -> its account (null: none recorded) and until when that answer stands.
const cache = new Map<string, { account: string | null; until: number }>();

/** The directory object. */
export function directory(env: Env): DurableObjectStub<ZoneDirectory> {
  return env.ZONE_DIRECTORY.get(env.ZONE_DIRECTORY.idFromName(DIRECTORY_NAME));
}

/** The zone's recorded account, from this isolate's cache while fresh, else from the directory. */
export async function zoneAccount(env: Env, zoneId: string, now: number = Date.now()): Promise<string | null> {
  const hit = cache.get(zoneId);
  if (hit && hit.until > now) return hit.account;
  const account = await directory(env).accountOf(zoneId);
  if (cache.size >= CACHE_MAX && !cache.has(zoneId)) cache.delete(cache.keys().next().value!);
  cache.set(zoneId, { account, until: now + ZONE_ACCOUNT_TTL_MS });
  return account;
}

/** Drops this isolate's answer for a zone (after the operator changed its account here). */
export function forgetZoneAccount(zoneId: string): void {
  cache.delete(zoneId);
}
