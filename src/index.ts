import { handle } from "./http/router";

export { DeploymentRegistry } from "./deployment/deployment-registry";
export { ZoneDirectory } from "./directory/zone-directory";
export { EdgeRegistry } from "./edges/edge-registry";
export { FleetMetrics } from "./metrics/fleet-metrics";
export { HostnameRegistry } from "./hostnames/hostname-registry";
export { ReadinessProbe } from "./health/readiness-probe";
export { TenantStore } from "./tenant/tenant-store";

export default {
  fetch: handle,
} satisfies ExportedHandler<Env>;
