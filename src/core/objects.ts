/**
 * The names (`idFromName`) of the Durable Objects of which the deployment
 * has exactly one. Here, in the lowest floor, so that any object can reach
 * another without importing its class's module.
 */

/** What the deployment holds: its scopes and the KEKs their data uses (src/deployment). */
export const DEPLOYMENT_REGISTRY_NAME = "deployment";

/** The operator's edges and the service's signing key (src/edges); also its name as a holder of KEK-wrapped data. */
export const EDGE_REGISTRY_NAME = "edge-registry";

/** The fleet's metrics, as every scope reports them (src/metrics). */
export const FLEET_METRICS_NAME = "fleet";

/** The hostname registry's shard names: `hostnames:0` … (src/hostnames). */
export const hostnameRegistryName = (shard: number): string => `hostnames:${shard}`;
