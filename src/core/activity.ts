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

/** Whether nothing is in flight and nothing was seen for `ms`. */
export function quietFor(ms: number, now: number = Date.now()): boolean {
  return inFlight === 0 && now - lastSeen >= ms;
}
