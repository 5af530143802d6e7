import type { EdgeRecipient } from "../pki/edge-key";
import { edgeRegistry } from "./edge-routes";
import { uuidParam } from "./csr-routes";
import { refuse, unwrap } from "./results";
import { readableTenant } from "./scopes";
import { success } from "./envelope";
import { API_PREFIXES, type ApiRequest, type ApiRouter, edgeContext } from "./request";

/**
 * The edge as registered right now: read from the registry on every request
 * (no cache), so a revocation takes effect on the edge's next request.
 * Unknown or revoked is 1474.
 */
async function registeredEdge(env: Env, edgeId: string, listing = false): Promise<EdgeRecipient> {
  return unwrap(await edgeRegistry(env).deliveryEdge(edgeId, listing));
}

/**
 * A delivery reply: the result, and `signed`, a compact JWS (EdDSA, the
 * service's own key, which the edge pinned) whose payload names what it is,
 * the zone, the edge, when it was signed and the result itself. The agent
 * acts on the signed payload only, so a server that is not this service
 * (a wrong --url, DNS, a proxy) cannot hand an edge keys of its own, and an
 * old reply replayed is recognised by its `iat`.
 */
async function signed(env: Env, what: "list" | "bundle", zoneId: string, edgeId: string, result: unknown): Promise<Response> {
  const payload = JSON.stringify({ typ: `custom-csr-delivery/${what}`, zone_id: zoneId, edge_id: edgeId, iat: Math.floor(Date.now() / 1000), result });
  return success(result, { signed: unwrap(await edgeRegistry(env).sign(payload)) });
}

/** The zone's certificates this edge may receive now: id, hosts, expires_on, modified_on. */
async function list(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, edgeId, call } = await edgeContext(request, env);
  const edge = await registeredEdge(env, edgeId, true);
  const stub = await readableTenant(env, scope);
  return signed(env, "list", scope.id, edgeId, stub ? unwrap(await stub.listDeliverable(call, edge)) : []);
}

/**
 * One certificate's bundle: the chain in PEM and the private key sealed to
 * this edge as a compact JWE. The key is unwrapped and sealed inside the
 * zone's Durable Object; this Worker only relays the ciphertext.
 */
async function bundle(request: ApiRequest, env: Env): Promise<Response> {
  const { scope, edgeId, call } = await edgeContext(request, env);
  const id = unwrap(uuidParam(request, "certificateId", { reason: "invalid_certificate_id" }));
  const edge = await registeredEdge(env, edgeId);
  const stub = await readableTenant(env, scope);
  if (!stub) refuse({ reason: "certificate_not_found" });
  return signed(env, "bundle", scope.id, edgeId, unwrap(await stub.deliverCertificate(call, edge, id)));
}

/** Registers the key delivery routes (zones only); returns their path patterns. */
export function deliveryRoutes(router: ApiRouter): RegExp[] {
  for (const prefix of API_PREFIXES) {
    const base = `${prefix}/zones/:scopeId/key_delivery/certificates`;
    router.get(base, list).get(`${base}/:certificateId`, bundle);
  }
  return [
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/key_delivery\/certificates\/?$/,
    /^\/(?:client|api)\/v4\/zones\/[^/]*\/key_delivery\/certificates\/[^/]+\/?$/,
  ];
}
