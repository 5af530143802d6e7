import { type Clock, systemClock } from "../core/clock";
import { fail, ok, type Result } from "../core/result";
import { parseProblem } from "./problem";
import type { AcmeBadInput, AcmeBadResponse, AcmeRequestRefusal } from "./refusals";
import { parseRetryAfter } from "./retry-after";

/**
 * The one way the client talks to a CA: an injected `fetch`, a timeout on
 * every request, replies read up to a size bound, https only, no redirects.
 */

/** What the client passes to `fetch`: the global fetch of workerd or Node fits, and so does a small one over node:https. */
export interface AcmeRequestInit {
  method: "GET" | "HEAD" | "POST";
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
  redirect: "manual";
}

/** The `fetch` the client calls. */
export type AcmeFetch = (url: string, init: AcmeRequestInit) => Promise<Response>;

/** How the client reaches the CA; every member has a default. */
export interface AcmeOptions {
  /** Default: the global fetch. workerd's goes through the Worker's globalOutbound. */
  readonly fetch?: AcmeFetch;
  /** Reads Retry-After dates. Default: the system clock. */
  readonly clock?: Clock;
  /** Per request, until the whole reply is read. Default 15,000 ms. */
  readonly timeoutMs?: number;
  /** The largest JSON reply read. Default 1 MiB. */
  readonly maxResponseBytes?: number;
  /** The largest certificate chain read. Default 256 KiB. */
  readonly maxCertificateBytes?: number;
  /** How often a request rejected with badNonce is sent again with a fresh nonce (RFC 8555 §6.5). Default 1. */
  readonly badNonceRetries?: number;
  /** RFC 8555 §6.1: clients must send a User-Agent. */
  readonly userAgent?: string;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
export const DEFAULT_MAX_CERTIFICATE_BYTES = 256 * 1024;
export const DEFAULT_USER_AGENT = "custom-csr-api-acme/1";

/** A reply read in full. */
export interface Reply {
  readonly url: string;
  readonly status: number;
  readonly headers: Headers;
  readonly body: Uint8Array;
  /** Retry-After in seconds from now, when sent and readable. */
  readonly retryAfter?: number;
}

/** The options with their defaults applied. */
export interface Transport {
  readonly fetch: AcmeFetch;
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly maxResponseBytes: number;
  readonly maxCertificateBytes: number;
  readonly badNonceRetries: number;
  readonly userAgent: string;
}

export function transport(options: AcmeOptions = {}): Transport {
  return {
    // Called through a closure: workerd's fetch refuses another `this`.
    fetch: options.fetch ?? ((url, init) => fetch(url, init)),
    clock: options.clock ?? systemClock,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxResponseBytes: options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    maxCertificateBytes: options.maxCertificateBytes ?? DEFAULT_MAX_CERTIFICATE_BYTES,
    badNonceRetries: options.badNonceRetries ?? 1,
    userAgent: options.userAgent ?? DEFAULT_USER_AGENT,
  };
}

/**
 * `text` as an absolute https URL without credentials, or why not. ACME is
 * HTTPS only (RFC 8555 §6.1); every URL a CA hands out (directory entries,
 * Location, order, authorization, challenge, finalize and certificate URLs)
 * goes through here before it is stored or requested.
 */
export function checkUrl(text: unknown, what: string): Result<string, AcmeBadResponse> {
  if (typeof text !== "string" || text.length > 2048) return fail({ reason: "acme_bad_response", detail: `${what} is not a URL` });
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail({ reason: "acme_bad_response", detail: `${what} is not a URL` });
  }
  if (url.protocol !== "https:") return fail({ reason: "acme_bad_response", detail: `${what} is not an https URL (${url.protocol})` });
  if (url.username || url.password) return fail({ reason: "acme_bad_response", detail: `${what} carries credentials` });
  return ok(url.href);
}

/** The same check for a URL the caller supplies (a directory, or one it stored). */
export function checkInputUrl(text: string, what: string): Result<string, AcmeBadInput> {
  const checked = checkUrl(text, what);
  return checked.ok ? checked : fail({ reason: "acme_bad_input", detail: checked.detail });
}

async function readBounded(response: Response, max: number): Promise<Uint8Array | null> {
  const declared = response.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > max) {
    await response.body?.cancel().catch(() => undefined);
    return null;
  }
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body;
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.name === "Error" ? error.message : `${error.name}: ${error.message}`;
  return String(error);
}

/**
 * Sends one request and reads the whole reply, at most `maxBytes` of it,
 * within the timeout. A 3xx is not followed (RFC 8555 gives redirects no
 * role); it comes back as a reply like any other, for the caller to refuse.
 */
export async function send(
  t: Transport,
  url: string,
  init: { method: "GET" | "HEAD" | "POST"; headers?: Record<string, string>; body?: string },
  maxBytes: number = t.maxResponseBytes,
): Promise<Result<Reply, AcmeRequestRefusal>> {
  const signal = AbortSignal.timeout(t.timeoutMs);
  const headers = { "user-agent": t.userAgent, ...init.headers };
  try {
    const request: AcmeRequestInit = { method: init.method, headers, signal, redirect: "manual" };
    if (init.body !== undefined) request.body = init.body;
    const response = await t.fetch(url, request);
    const body = await readBounded(response, maxBytes);
    if (body === null) {
      return fail({ reason: "acme_bad_response", detail: `the reply to ${init.method} ${url} is over ${maxBytes} bytes`, status: response.status });
    }
    const retryAfter = parseRetryAfter(response.headers.get("retry-after"), t.clock());
    const reply: Reply = { url, status: response.status, headers: response.headers, body };
    return ok(retryAfter === undefined ? reply : { ...reply, retryAfter });
  } catch (error) {
    if (signal.aborted) return fail({ reason: "acme_unreachable", detail: `${init.method} ${url}: no complete reply within ${t.timeoutMs} ms` });
    return fail({ reason: "acme_unreachable", detail: `${init.method} ${url}: ${describe(error)}` });
  }
}

/** The reply's body as JSON, or undefined if it is not UTF-8 JSON. */
export function replyJson(reply: Reply): unknown {
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(reply.body));
  } catch {
    return undefined;
  }
}

/**
 * The refusal for a reply with an error status: the CA's problem document
 * when it sent one (RFC 8555 §6.7; its Retry-After kept), else a bad
 * response naming the status.
 */
export function replyRefusal(reply: Reply, doing: string): AcmeRequestRefusal {
  const problem = parseProblem(replyJson(reply));
  if (!problem) {
    const type = reply.headers.get("content-type") ?? "no content type";
    return { reason: "acme_bad_response", detail: `${doing}: HTTP ${reply.status} (${type}), not a problem document`, status: reply.status };
  }
  return {
    reason: "acme_problem",
    type: problem.type,
    detail: problem.detail,
    status: reply.status,
    ...(problem.subproblems ? { subproblems: problem.subproblems } : {}),
    ...(reply.retryAfter !== undefined ? { retry_after: reply.retryAfter } : {}),
  };
}

/**
 * The reply's JSON object when its status is one of `expected`, else the
 * refusal it amounts to.
 */
export function expectJson(reply: Reply, expected: readonly number[], doing: string): Result<Record<string, unknown>, AcmeRequestRefusal> {
  if (!expected.includes(reply.status)) {
    if (reply.status >= 200 && reply.status < 400) {
      return fail({ reason: "acme_bad_response", detail: `${doing}: unexpected HTTP ${reply.status}`, status: reply.status });
    }
    return fail(replyRefusal(reply, doing));
  }
  const body = replyJson(reply);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return fail({ reason: "acme_bad_response", detail: `${doing}: the reply is not a JSON object` });
  }
  return ok(body as Record<string, unknown>);
}
