import { isEdgeId } from "../core/edge-id";
import { EDGE_REGISTRY_NAME, type EdgeRegistry } from "../edges/edge-registry";
import { parseEdgeRegistration } from "../edges/edge-input";
import { requireAdminSecret } from "./admin";
import { readJson } from "./body";
import { type Result, fail, ok } from "../core/result";
import { unwrap } from "./results";
import { success } from "./envelope";
import type { ApiRequest, ApiRouter } from "./request";

/** The deployment's one edge registry. */
export function edgeRegistry(env: Env): DurableObjectStub<EdgeRegistry> {
  return env.EDGES.get(env.EDGES.idFromName(EDGE_REGISTRY_NAME));
}

function parseEdgeId(request: ApiRequest): Result<string, { readonly reason: "invalid_edge_id" }> {
  let id: string;
  try {
    id = decodeURIComponent(request.params.edgeId ?? "");
  } catch {
    return fail({ reason: "invalid_edge_id" });
  }
  return isEdgeId(id) ? ok(id) : fail({ reason: "invalid_edge_id" });
}

const edgeId = (request: ApiRequest): string => unwrap(parseEdgeId(request));

/**
 * Registers an edge, or replaces its key and labels: 201 when new, 200 when
 * replaced (RFC 9110 §9.3.4). Body: {"public_key": JWK, "labels": {...}}.
 */
async function putEdge(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  const id = edgeId(request);
  const registration = unwrap(await parseEdgeRegistration(unwrap(await readJson(request, env))));
  const { record, created } = unwrap(await edgeRegistry(env).putEdge(id, registration));
  return success(record, { status: created ? 201 : 200 });
}

async function getEdge(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  return success(unwrap(await edgeRegistry(env).getEdge(edgeId(request))));
}

async function listEdges(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  return success(unwrap(await edgeRegistry(env).listEdges()));
}

/** Revokes an edge: its next delivery request is refused (1474). */
async function deleteEdge(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  return success(unwrap(await edgeRegistry(env).deleteEdge(edgeId(request))));
}

/**
 * GET /admin/v1/service_key: the service's public signing key, which every
 * edge pins (`edge sync --service-key`); also in each edge's record.
 */
async function getServiceKey(request: ApiRequest, env: Env): Promise<Response> {
  await requireAdminSecret(request, env);
  return success({ service_key: unwrap(await edgeRegistry(env).serviceKey()) });
}

/** Registers the operator's edge routes; returns their path patterns. */
export function edgeRoutes(router: ApiRouter): RegExp[] {
  router.get("/admin/v1/service_key", getServiceKey);
  router.get("/admin/v1/edges", listEdges);
  router.put("/admin/v1/edges/:edgeId", putEdge).get("/admin/v1/edges/:edgeId", getEdge).delete("/admin/v1/edges/:edgeId", deleteEdge);
  return [/^\/admin\/v1\/edges\/?$/, /^\/admin\/v1\/edges\/[^/]+\/?$/, /^\/admin\/v1\/service_key\/?$/];
}
