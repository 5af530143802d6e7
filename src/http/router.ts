import { Router } from "itty-router";
import { begin, end, enter, leave } from "../core/activity";
import { authenticate } from "../auth/authenticate";
import { logs } from "../core/log";
import { type Scope, isScopeId } from "../core/scope";
import { adminRoutes } from "./admin";
import { alertingRoutes } from "./alerting-routes";
import { metricsRoutes } from "./metrics-route";
import { recordRequest } from "../metrics/request-metrics";
import { auditRoutes } from "./audit-routes";
import { certificateRoutes } from "./certificate-routes";
import { csrRoutes } from "./csr-routes";
import { deploymentRoutes } from "./deployment-routes";
import { deliveryRoutes } from "./delivery-routes";
import { directoryRoutes } from "./directory-routes";
import { edgeRoutes } from "./edge-routes";
import { Refused } from "./errors";
import { type Result, fail, ok } from "../core/result";
import { refuse, unwrap } from "./results";
import { failure } from "./envelope";
import { healthRoutes } from "./health";
import { hostnameRoutes } from "./hostname-routes";
import type { ApiRequest, ApiRouter, RouterArgs } from "./request";

// Resources served per scope kind; anything else under a scope is 404.
const RESOURCES: Record<Scope["kind"], readonly string[]> = {
  accounts: ["custom_csrs", "audit_logs", "alerting"],
  zones: ["custom_csrs", "custom_certificates", "custom_hostnames", "audit_logs", "key_delivery"],
};
const SCOPED_PATH = /^\/(?:client|api)\/v4\/(accounts|zones)\/([^/]*)\/([^/]+)(?:\/.*)?$/;

/** The scope a tenant path names: an empty id is 1401, a malformed one (or badly escaped) 1434. */
function pathScope(kind: Scope["kind"], raw: string): Result<Scope, { readonly reason: "missing_scope_id" | "invalid_scope_id" }> {
  let id: string;
  try {
    id = decodeURIComponent(raw);
  } catch {
    return fail({ reason: "invalid_scope_id" });
  }
  if (id === "") return fail({ reason: "missing_scope_id" });
  return isScopeId(id) ? ok({ kind, id }) : fail({ reason: "invalid_scope_id" });
}

/**
 * First stage: the path. A tenant route gets its scope, checked before any
 * credential (an empty id is 1401, a malformed one 1434).
 */
function withScope(request: ApiRequest): undefined {
  const match = SCOPED_PATH.exec(new URL(request.url).pathname);
  if (!match) return undefined;
  const kind = match[1] as Scope["kind"];
  if (!RESOURCES[kind].includes(match[3]!)) return undefined;
  request.scope = unwrap(pathScope(kind, match[2]!));
  enter(`${kind}:${request.scope.id}`);
  return undefined;
}

/** Second stage: credentials, only for tenant routes (admin routes check their own secret). */
async function withPrincipal(request: ApiRequest, env: Env): Promise<undefined> {
  if (!request.scope) return undefined;
  const principal = await authenticate(request, env);
  request.principal = unwrap(principal);
  return undefined;
}

const router: ApiRouter = Router<ApiRequest, RouterArgs>({
  before: [withScope, withPrincipal],
  catch: (error: unknown, raw) => {
    const request = raw as ApiRequest;
    if (error instanceof Refused) return failure(error.refusal, request.requestId);
    // Internal detail goes to the log only, never into the response.
    console.error(
      JSON.stringify({
        level: "error",
        request_id: request.requestId,
        error: error instanceof Error ? error.name : "unknown",
        message: error instanceof Error ? error.message : String(error),
      }),
    );
    return failure({ reason: "internal" }, request.requestId);
  },
  finally: [
    (response: Response | undefined, request: ApiRequest, env: Env) => {
      const final = response ?? failure({ reason: "internal" }, request.requestId);
      final.headers.set("x-request-id", request.requestId);
      recordRequest(request.route ?? null, request.method, final.status, Date.now() - request.started);
      // One line per request at info (stdout); LOG_LEVEL warn or error silences them.
      if (logs(env.LOG_LEVEL, "info")) {
        console.log(
          JSON.stringify({
            level: "info",
            request_id: request.requestId,
            method: request.method,
            route: request.route ?? null,
            scope: request.scope ? `${request.scope.kind}:${request.scope.id}` : null,
            principal: request.principal ? `${request.principal.kind}:${request.principal.subject}` : null,
            status: final.status,
            duration_ms: Date.now() - request.started,
          }),
        );
      }
      return final;
    },
  ],
});

const known: RegExp[] = [];
for (const register of [alertingRoutes, metricsRoutes, csrRoutes, certificateRoutes, hostnameRoutes, deliveryRoutes, auditRoutes, deploymentRoutes, adminRoutes, directoryRoutes, edgeRoutes, healthRoutes]) {
  for (const route of register(router)) known.push(route);
}

// Last: an unknown path is 404; a known path with another method is 405.
router.all("*", (request: ApiRequest) => {
  const path = new URL(request.url).pathname;
  refuse({ reason: known.some((pattern) => pattern.test(path)) ? "method_not_allowed" : "no_route" });
});

/** Serves one request; never throws. Background work waits while any is in flight (src/core/activity.ts). */
export async function handle(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const apiRequest = request as ApiRequest;
  apiRequest.requestId = crypto.randomUUID();
  apiRequest.started = Date.now();
  begin(apiRequest.started);
  try {
    return await router.fetch(apiRequest, env, ctx);
  } finally {
    end();
    if (apiRequest.scope) leave(`${apiRequest.scope.kind}:${apiRequest.scope.id}`);
  }
}

