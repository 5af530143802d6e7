import { idleWhile } from "../core/activity";
import { type Scope, scopeName } from "../core/scope";
import type { BodyRefusal } from "../core/refusals";
import { type Result, fail, ok } from "../core/result";

/** The largest request body accepted: 150 SANs of 255 characters fit with room to spare. */
export const MAX_BODY_BYTES = 64 * 1024;

// Past the limit the rest is read and dropped, up to this much, rather than
// cancelled: wrangler dev's proxy can lose the connection when a Worker
// answers before consuming a chunked body. Beyond it, cancel.
const DISCARD_LIMIT = 1024 * 1024;

async function discardRest(reader: ReadableStreamDefaultReader<Uint8Array>, seen: number): Promise<void> {
  for (let size = seen; size <= DISCARD_LIMIT; ) {
    const { done, value } = await reader.read();
    if (done) return;
    size += value.byteLength;
  }
  await reader.cancel();
}

/** How long a request's whole body may take to arrive (BODY_TIMEOUT_SECONDS; default 10 s). */
export function bodyTimeoutMs(env: { BODY_TIMEOUT_SECONDS?: string }): number {
  const seconds = Number(env.BODY_TIMEOUT_SECONDS ?? "10");
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : 10_000;
}

/**
 * Reads and parses a JSON body, refusing more than MAX_BODY_BYTES without
 * buffering it (a Content-Length is not trusted: the stream is counted),
 * and a body that has not arrived in full within BODY_TIMEOUT_SECONDS (408,
 * 1438): a client that never finishes its body holds nothing for long.
 * While waiting for the body, the request does not count as activity, so it
 * does not hold back the idle work (the key pool's fill) either.
 */
export async function readJson(request: Request & { scope?: Scope }, env: { BODY_TIMEOUT_SECONDS?: string }): Promise<Result<unknown, BodyRefusal>> {
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) return fail({ reason: "body_too_large" });
  if (!request.body) return fail({ reason: "invalid_json" });
  const reader = request.body.getReader();
  const deadline = Date.now() + bodyTimeoutMs(env);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const next = await idleWhile(() => readBefore(reader, deadline), request.scope && scopeName(request.scope));
    if (next === "timeout") {
      void reader.cancel().catch(() => undefined);
      return fail({ reason: "body_timeout" });
    }
    const { done, value } = next;
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await discardRest(reader, size);
      return fail({ reason: "body_too_large" });
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  try {
    return ok(JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)));
  } catch {
    // Not UTF-8, not JSON, or nested beyond the parser's depth.
    return fail({ reason: "invalid_json" });
  }
}

/** The reader's next chunk, or "timeout" once `deadline` has passed. */
async function readBefore(reader: ReadableStreamDefaultReader<Uint8Array>, deadline: number): Promise<ReadableStreamReadResult<Uint8Array> | "timeout"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"timeout">((done) => {
    timer = setTimeout(() => done("timeout"), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([reader.read(), late]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}
