import { handle } from "./http/router";

export { EdgeRegistry } from "./edges/edge-registry";
export { TenantStore } from "./tenant/tenant-store";

export default {
  fetch: handle,
} satisfies ExportedHandler<Env>;
