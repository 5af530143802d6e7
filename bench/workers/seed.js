// Bench-only: fills a scope through the real TenantStore.createCsr RPC (real
// keys, real CSRs, real wraps), skipping only HTTP and authentication, so a
// scope of 100,000 CSRs takes minutes, not hours; with `audit=1`, grows the
// scope's audit trail through the real setEntitlement RPC (one hash-chained
// entry each). Bound to the API worker's Durable Object namespace; never part
// of the deployed Worker. Loaded into workerd as it is (no build step), so
// JavaScript, typed with JSDoc and checked by bench/workers/tsconfig.json:
// the RPC calls against TenantStore's own method types.
//
//   GET /?kind=accounts|zones&id=ID&count=N[&key_type=p256v1|rsa2048][&audit=1]
//   GET /?fleet=1&from=I&zones=N&per_zone=M
//
// The second form reports N zones (bench-fleet-I … I+N-1) of M custom
// certificates each to the fleet's metrics object, through the RPC a zone's
// own object reports with (FleetMetrics.report), as those zones would after
// their uploads: what `npm run bench -- metrics` scrapes at fleet scale.

/** @typedef {import("../profile/src-surface.ts").TenantStore} TenantStore */
/** @typedef {Parameters<TenantStore["createCsr"]>[0]} TenantCall */
/** @typedef {Parameters<TenantStore["createCsr"]>[1]} CreateInput */
/** @typedef {import("../profile/src-surface.ts").FleetMetrics} FleetMetrics */

/**
 * @typedef {object} SeedEnv
 * @property {DurableObjectNamespace<TenantStore>} TENANTS
 * @property {DurableObjectNamespace<FleetMetrics>} METRICS
 */

const DAY = 86_400_000;

/**
 * Reports zones `from` … `from + zones - 1`, each with `perZone` custom
 * certificates expiring 1 to 200 days from now (spread, so the soonest are
 * spread over the fleet), and a few counters.
 * @param {SeedEnv} env
 * @param {number} from
 * @param {number} zones
 * @param {number} perZone
 */
async function seedFleet(env, from, zones, perZone) {
  const fleet = env.METRICS.get(env.METRICS.idFromName("fleet"));
  const now = Date.now();
  for (let z = from; z < from + zones; z++) {
    const certificates = Array.from({ length: perZone }, (_, i) => ({
      id: crypto.randomUUID(),
      kind: /** @type {const} */ ("custom_certificate"),
      custom_csr_id: crypto.randomUUID(),
      hostname: null,
      expires_on: new Date(now + (1 + ((z * perZone + i) * 7919) % 200) * DAY).toISOString(),
      status: "active",
    }));
    await fleet.report({ scope: `zones:bench-fleet-${z}`, at: new Date(now).toISOString(), certificates, pool: null, counters: { acme_orders_placed: 0 } });
  }
}

const INPUT = {
  key_type: "p256v1",
  common_name: "app.customer-one.com",
  country: "US",
  state: "California",
  locality: "San Francisco",
  organization: "Customer One",
  organizational_unit: null,
  name: null,
  description: null,
  sans: ["app.customer-one.com", "www.customer-one.com"],
};

export default {
  /**
   * @param {Request} request
   * @param {SeedEnv} env
   * @returns {Promise<Response>}
   */
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.searchParams.has("fleet")) {
      const from = Number(url.searchParams.get("from") ?? "0");
      const zones = Number(url.searchParams.get("zones"));
      const perZone = Number(url.searchParams.get("per_zone"));
      await seedFleet(env, from, zones, perZone);
      return Response.json({ reported: zones });
    }
    const kind = url.searchParams.get("kind");
    const id = url.searchParams.get("id");
    const count = Number(url.searchParams.get("count"));
    const keyType = url.searchParams.get("key_type") ?? "p256v1";
    if ((kind !== "accounts" && kind !== "zones") || !id || (keyType !== "p256v1" && keyType !== "rsa2048")) {
      return Response.json({ error: "kind (accounts or zones), id and key_type (p256v1 or rsa2048) are required" }, { status: 400 });
    }
    const stub = env.TENANTS.get(env.TENANTS.idFromName(`${kind}:${id}`));
    /** @type {TenantCall} */
    const call = { scope: { kind, id }, actor: { type: "admin", id: "bench-seed" } };
    /** @type {CreateInput} */
    const input = { ok: true, value: { ...INPUT, key_type: keyType, name: `n${count}` } };
    const results = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        url.searchParams.has("audit") ? stub.setEntitlement(call, { granted: true, quota: 1_000_000 + i }) : stub.createCsr(call, input),
      ),
    );
    const failed = results.filter((r) => !r.ok).length;
    return Response.json({ created: count - failed, failed });
  },
};
