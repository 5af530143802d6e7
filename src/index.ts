import { handle } from "./http/router";

export { TenantStore } from "./tenant/tenant-store";

export default {
  fetch: handle,
} satisfies ExportedHandler<Env>;
