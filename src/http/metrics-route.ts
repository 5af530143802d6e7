import { EDGE_REGISTRY_NAME, FLEET_METRICS_NAME } from "../core/objects";
import { EXPOSITION_TYPE, type Exposition, labels } from "../metrics/exposition";
import { renderRequests } from "../metrics/request-metrics";
import { requireAdminSecret } from "./admin";
import type { ApiRequest, ApiRouter } from "./request";
import { unwrap } from "./results";

const DEFAULT_SERIES = 10_000;

/**
 * GET /metrics, Prometheus's text format, with `Authorization: Bearer
 * <ADMIN_SECRET>`: this server's requests, the fleet's certificates, key
 * pools and counters as the scopes reported them (one object read, never
 * every scope's), and the edges' last syncs (docs/metrics.md).
 */
async function metrics(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  const now = Date.now();
  const out: Exposition = [];
  renderRequests(out);
  const limit = Number(env.METRICS_MAX_CERTIFICATE_SERIES ?? DEFAULT_SERIES);
  const fleet = env.METRICS.get(env.METRICS.idFromName(FLEET_METRICS_NAME));
  out.push(unwrap(await fleet.render(Number.isSafeInteger(limit) && limit >= 0 ? limit : DEFAULT_SERIES, now)));
  const edges = unwrap(await env.EDGES.get(env.EDGES.idFromName(EDGE_REGISTRY_NAME)).syncTimes());
  out.push("# HELP custom_csr_edges_registered Edges registered to receive keys.");
  out.push("# TYPE custom_csr_edges_registered gauge");
  out.push(`custom_csr_edges_registered ${edges.length}`);
  out.push("# HELP custom_csr_edge_last_sync_timestamp_seconds When the edge last fetched its listing (edge sync); absent for an edge that never did.");
  out.push("# TYPE custom_csr_edge_last_sync_timestamp_seconds gauge");
  for (const edge of edges) if (edge.last_sync_at !== null) out.push(`custom_csr_edge_last_sync_timestamp_seconds${labels({ edge: edge.id })} ${Math.floor(Date.parse(edge.last_sync_at) / 1000)}`);
  return new Response(`${out.join("\n")}\n`, { status: 200, headers: { "content-type": EXPOSITION_TYPE, "cache-control": "no-store" } });
}

/** Registers GET /metrics; returns its path pattern. */
export function metricsRoutes(router: ApiRouter): RegExp[] {
  router.get("/metrics", metrics);
  return [/^\/metrics$/];
}
