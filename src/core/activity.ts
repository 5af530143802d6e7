/**
 * When this isolate last served a request, and how many it is serving now:
 * the signal background work (the RSA key pool's fill) waits on. An RSA-2048
 * key generation holds the JavaScript thread for 50–65 ms, and on a
 * self-hosted workerd every tenant and the routing Worker share that thread,
 * so a key is generated only after the isolate has been idle for a while.
 * Module state: one per isolate, shared by the Worker and the Durable
 * Objects it hosts (on Cloudflare each object's isolate sees its own calls).
 */
let inFlight = 0;
let lastSeen = 0;
// Requests in flight per scope (`zones:<id>`), once the Worker knows it.
const perScope = new Map<string, number>();

/** A request starts (the Worker) or a tenant call arrives (the object). */
export function begin(now: number = Date.now()): void {
  inFlight++;
  lastSeen = now;
}

/** A request started with `begin` has been answered. */
export function end(now: number = Date.now()): void {
  inFlight = Math.max(0, inFlight - 1);
  lastSeen = now;
}

/** A call was served that `begin`/`end` do not bracket (an RPC into an object). */
export function touch(now: number = Date.now()): void {
  lastSeen = now;
}

/** The request in flight is for `scope` (counted until `leave`). */
export function enter(scope: string): void {
  perScope.set(scope, (perScope.get(scope) ?? 0) + 1);
}

/** The request for `scope` that `enter` counted has been answered. */
export function leave(scope: string): void {
  const n = (perScope.get(scope) ?? 0) - 1;
  if (n > 0) perScope.set(scope, n);
  else perScope.delete(scope);
}

/** How many requests for `scope` are in flight. */
export function inFlightFor(scope: string): number {
  return perScope.get(scope) ?? 0;
}

/**
 * Whether requests for other scopes than `scope` (or for none, such as
 * /healthz) are in flight in this isolate: a tenant about to hold the thread
 * for a long computation lets them go first (src/tenant/tenant-store.ts).
 */
export function othersInFlight(scope: string): boolean {
  return inFlight - inFlightFor(scope) > 0;
}

/** Whether nothing is in flight and nothing was seen for `ms`. */
export function quietFor(ms: number, now: number = Date.now()): boolean {
  return inFlight === 0 && now - lastSeen >= ms;
}

/**
 * Runs `wait` (a request waiting on its client, such as for its body) as
 * time in which the request is not in flight, for the isolate and for its
 * scope (`scope`, when the request has one): a client that sends slowly, or
 * never finishes, must not hold back the idle work that waits on this
 * signal, nor make its own scope's count hide other scopes' requests from
 * `othersInFlight` (a tenant holding slow bodies open while it floods RSA
 * creates would otherwise turn the yield off).
 */
export async function idleWhile<T>(wait: () => Promise<T>, scope?: string): Promise<T> {
  // Neither the request's count nor its time: a body trickling in a byte at
  // a time must not look like traffic either.
  inFlight = Math.max(0, inFlight - 1);
  if (scope !== undefined) leave(scope);
  try {
    return await wait();
  } finally {
    inFlight++;
    if (scope !== undefined) enter(scope);
  }
}
