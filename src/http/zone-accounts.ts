import { DIRECTORY_NAME, type ZoneDirectory } from "../directory/zone-directory";

/**
 * How long this isolate answers from what it last read of a zone's account:
 * a zone recorded, moved or unrecorded takes effect for authorization
 * within this bound everywhere (at once in the isolate that made the change).
 */
export const ZONE_ACCOUNT_TTL_MS = 10_000;
const CACHE_MAX = 10_000;

// zone id -> its account (null: none recorded) and until when that answer
// stands; a lookup under way is shared by the requests that need it meanwhile.
const cache = new Map<string, { account: Promise<string | null>; until: number }>();

/** The directory object. */
export function directory(env: Env): DurableObjectStub<ZoneDirectory> {
  return env.ZONE_DIRECTORY.get(env.ZONE_DIRECTORY.idFromName(DIRECTORY_NAME));
}

/** The zone's recorded account, from this isolate's cache while fresh, else from the directory. */
export function zoneAccount(env: Env, zoneId: string, now: number = Date.now()): Promise<string | null> {
  const hit = cache.get(zoneId);
  if (hit && hit.until > now) return hit.account;
  const entry = { account: directory(env).accountOf(zoneId), until: now + ZONE_ACCOUNT_TTL_MS };
  // A failed lookup is not remembered: the next request asks again.
  entry.account.catch(() => {
    if (cache.get(zoneId) === entry) cache.delete(zoneId);
  });
  if (cache.size >= CACHE_MAX && !cache.has(zoneId)) cache.delete(cache.keys().next().value!);
  cache.set(zoneId, entry);
  return entry.account;
}

/** Drops this isolate's answer for a zone (after the operator changed its account here). */
export function forgetZoneAccount(zoneId: string): void {
  cache.delete(zoneId);
}
