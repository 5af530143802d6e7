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

/** @typedef {import("../profile/src-surface.ts").TenantStore} TenantStore */
/** @typedef {Parameters<TenantStore["createCsr"]>[0]} TenantCall */
/** @typedef {Parameters<TenantStore["createCsr"]>[1]} CreateInput */

/**
 * @typedef {object} SeedEnv
 * @property {DurableObjectNamespace<TenantStore>} TENANTS
 */

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
