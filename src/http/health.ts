import type { Refusal } from "./errors";
import { PROBE_NAME } from "../health/readiness-probe";
import { failures, success } from "./envelope";
import type { ApiRequest, ApiRouter } from "./request";

/** How long /readyz waits for the probe object before answering 503 (1503). */
export const READINESS_TIMEOUT_MS = 5_000;

/** Liveness: the process serves requests. Touches no storage and no secret. */
function live(): Response {
  return success({ status: "ok" });
}

/**
 * Readiness: storage is writable and the key-encryption keys load, both
 * checked by the probe object (on the Durable Object side, where tenant
 * objects use them). 503 with one error per failing check (1501, 1502), or
 * 1503 when the probe does not answer in time. No tenant data is read.
 */
async function ready(request: ApiRequest, env: Env): Promise<Response> {
  const probe = env.READINESS.get(env.READINESS.idFromName(PROBE_NAME));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), READINESS_TIMEOUT_MS);
  });
  let found: readonly Refusal[];
  try {
    const report = await Promise.race([probe.check(), timeout]);
    if (report === "timeout") found = [{ reason: "readiness_timeout" }];
    else found = report.ok ? report.value.failures : [];
  } catch (error) {
    // The probe object could not even run (its database cannot be opened):
    // storage is what failed.
    console.error(
      JSON.stringify({
        level: "error",
        request_id: request.requestId,
        event: "readiness_probe_failed",
        error: error instanceof Error ? error.message : String(error),
      }),
    );
    found = [{ reason: "storage_unavailable" }];
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
  const [first, ...rest] = found;
  if (first) return failures([first, ...rest], request.requestId);
  return success({ status: "ready", checks: { storage: "ok", key_encryption_keys: "ok" } });
}

/** Registers GET /healthz and GET /readyz (unauthenticated, no tenant data); returns their path patterns. */
export function healthRoutes(router: ApiRouter): RegExp[] {
  router.get("/healthz", live).get("/readyz", ready);
  return [/^\/healthz\/?$/, /^\/readyz\/?$/];
}
