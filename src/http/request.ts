import type { IRequest, RouterType } from "itty-router";
import { type Principal, authorize } from "../auth/authenticate";
import type { Scope } from "../core/scope";
import { ApiError } from "./errors";

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

/** The scope and principal a tenant handler runs with, after checking its permission. */
export function tenantContext(request: ApiRequest, permission: "read" | "write"): { scope: Scope; principal: Principal } {
  const { scope, principal } = request;
  if (!scope || !principal) throw new Error("tenant route reached without scope or principal");
  const allowed = authorize(principal, scope, permission);
  if (!allowed.ok) throw new ApiError(allowed.reason);
  return { scope, principal };
}
