import type { IRequest, RouterType } from "itty-router";
import { type Permission, type Principal, authorize } from "../auth/authenticate";
import type { Actor, TenantCall } from "../core/call";
import type { Scope } from "../core/scope";
import { refuse } from "./results";
import { zoneAccount } from "./zone-accounts";

/** A request as the handlers see it, after the `before` stages. */
export interface ApiRequest extends IRequest {
  requestId: string;
  started: number;
  scope?: Scope;
  principal?: Principal;
}

export type RouterArgs = [env: Env, ctx: ExecutionContext];

export const API_PREFIXES = ["/client/v4", "/api/v4"] as const;

export type ApiRouter = RouterType<ApiRequest, RouterArgs>;

// An IPv4 or IPv6 address as Cloudflare's edge writes CF-Connecting-IP; anything else is not recorded.
const IP_ADDRESS = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:.]{2,45})$/;

/** The caller's address from `CF-Connecting-IP`, when it is one. */
export function connectingIp(request: Request): string | undefined {
  const value = request.headers.get("cf-connecting-ip")?.trim();
  return value && IP_ADDRESS.test(value) ? value : undefined;
}

/** The actor the audit trail records for an authenticated caller. */
export function actorOf(principal: Principal, request: Request): Actor {
  const ip = connectingIp(request);
  const actor: Actor = principal.kind === "legacy"
    ? { type: "user", id: principal.subject, email: principal.subject }
    : { type: "user", id: principal.subject };
  return ip === undefined ? actor : { ...actor, ip };
}

/**
 * The call a key delivery handler makes: the token must hold Key Delivery on
 * the zone (directly, or through the zone's account) and name its edge (403,
 * 10000, otherwise); the actor is the edge.
 */
export async function edgeContext(request: ApiRequest, env: Env): Promise<{ scope: Scope; edgeId: string; call: TenantCall }> {
  const { scope, principal } = request;
  if (!scope || !principal) throw new Error("delivery route reached without scope or principal");
  const allowed = await authorize(principal, scope, "deliver", (zoneId) => zoneAccount(env, zoneId));
  if (!allowed.ok || principal.edge === undefined) refuse({ reason: "forbidden" });
  const ip = connectingIp(request);
  const actor: Actor = ip === undefined ? { type: "edge", id: principal.edge } : { type: "edge", id: principal.edge, ip };
  return { scope, edgeId: principal.edge, call: { scope, actor } };
}

/**
 * The call a tenant handler makes, after checking the caller's permission on
 * the scope (reading the zone's account when a grant depends on it).
 */
export async function tenantContext(
  request: ApiRequest,
  env: Env,
  permission: Permission,
): Promise<{ scope: Scope; principal: Principal; call: TenantCall }> {
  const { scope, principal } = request;
  if (!scope || !principal) throw new Error("tenant route reached without scope or principal");
  const allowed = await authorize(principal, scope, permission, (zoneId) => zoneAccount(env, zoneId));
  if (!allowed.ok) refuse(allowed);
  return { scope, principal, call: { scope, actor: actorOf(principal, request) } };
}
