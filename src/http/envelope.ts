import type { JsonText, Page } from "../storage/paging";
import type { Refused } from "../core/result";
import { DETAILS, ERRORS, type ErrorEntry, type Refusal } from "./errors";

/** One entry of `errors` or `messages` in Cloudflare's v4 envelope. */
export interface ResponseInfo {
  code: number;
  message: string;
  source?: { pointer: string };
  /** On errors: the request's id, as in the x-request-id header and the log. */
  request_id?: string;
}

export interface ResultInfo {
  count: number;
  page: number;
  per_page: number;
  total_count: number;
  total_pages: number;
}

// Applied to every response: the API only ever returns JSON, and nothing in
// it may be cached, sniffed or framed.
const SECURITY_HEADERS: Record<string, string> = {
  "content-type": "application/json; charset=utf-8",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
};

function json(body: unknown, status: number, headers: Record<string, string> = {}): Response {
  return reply(JSON.stringify(body), status, headers);
}

function reply(text: string, status: number, headers: Record<string, string> = {}): Response {
  return new Response(text, { status, headers: { ...SECURITY_HEADERS, ...headers } });
}

/** A streamed body that is not an envelope (an export), with the same security headers. */
export function streamed(body: ReadableStream<Uint8Array>, contentType: string): Response {
  return new Response(body, { status: 200, headers: { ...SECURITY_HEADERS, "content-type": contentType } });
}

/** What a success envelope may carry besides its result. */
export interface SuccessOptions {
  status?: number;
  messages?: ResponseInfo[];
  resultInfo?: ResultInfo;
  /** Ours, on key delivery replies: a JWS of the reply under the service's key (src/http/delivery-routes.ts). */
  signed?: string;
}

/** A success envelope, as every Cloudflare v4 endpoint answers. */
export function success(result: unknown, options: SuccessOptions = {}): Response {
  return successJson(JSON.stringify(result) as JsonText, options);
}

/** The same envelope around a result that is already JSON (records rendered by the tenant object). */
export function successJson(result: JsonText, options: SuccessOptions = {}): Response {
  const info = options.resultInfo ? `,"result_info":${JSON.stringify(options.resultInfo)}` : "";
  const signed = options.signed === undefined ? "" : `,"signed":${JSON.stringify(options.signed)}`;
  const messages = JSON.stringify(options.messages ?? []);
  return reply(`{"success":true,"errors":[],"messages":${messages},"result":${result}${info}${signed}}`, options.status ?? 200);
}

/** A list reply: the page's items and Cloudflare's `result_info`. */
export function pageOf(page: Page<JsonText>, query: { page: number; per_page: number }): Response {
  return successJson(page.items, {
    resultInfo: {
      count: page.count,
      page: query.page,
      per_page: query.per_page,
      total_count: page.total,
      total_pages: Math.ceil(page.total / query.per_page),
    },
  });
}

/** Renders a catalog entry as the error info Cloudflare returns. */
export function errorInfo(refusal: Refusal, requestId?: string): ResponseInfo {
  const entry: ErrorEntry = ERRORS[refusal.reason];
  // DETAILS is keyed by reason, each function typed by the refusal of that
  // reason; TypeScript cannot follow the pairing through the index.
  const detail = DETAILS[refusal.reason] as ((r: Refusal) => string) | undefined;
  const message = detail === undefined ? entry.message : entry.message.replace(":reason", detail(refusal));
  const info: ResponseInfo = { code: entry.code, message };
  const { pointer } = refusal as Refused;
  if (pointer !== undefined) info.source = { pointer };
  if (requestId !== undefined) info.request_id = requestId;
  return info;
}

/**
 * The one builder of every error reply: the status and code come from the
 * catalog, `result` is null, and nothing internal (stack, exception text)
 * is ever included.
 */
export function failure(f: Refusal, requestId?: string): Response {
  return failures([f], requestId);
}

/**
 * Several refusals in one reply (a readiness check that fails more than one
 * way), in the order given; the status is the first one's.
 */
export function failures(list: readonly [Refusal, ...Refusal[]], requestId?: string): Response {
  const headers: Record<string, string> = requestId === undefined ? {} : { "x-request-id": requestId };
  const entry: { readonly status: number; readonly retryAfter?: number } = ERRORS[list[0].reason];
  // RFC 9110 §10.2.3: when to try again, in seconds (the SDK waits for it).
  if (entry.retryAfter !== undefined) headers["retry-after"] = String(entry.retryAfter);
  // The SDK retries a 409 twice unless told not to; ours are answers, not races to retry.
  if (ERRORS[list[0].reason].status === 409) headers["x-should-retry"] = "false";
  const errors = list.map((f) => errorInfo(f, requestId));
  return json({ success: false, errors, messages: [], result: null }, ERRORS[list[0].reason].status, headers);
}

/**
 * The same reply, with `release` called once its body has been read to the
 * end by the runtime (sent), or abandoned: what a read that holds a slot of
 * a bounded queue gives back only when its bytes have left the process.
 */
export function releasedWhenSent(response: Response, release: () => void): Response {
  const body = response.body;
  if (!body) {
    release();
    return response;
  }
  const reader = body.getReader();
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) {
          controller.close();
          release();
        } else {
          controller.enqueue(value);
        }
      } catch (error) {
        release();
        controller.error(error);
      }
    },
    cancel(reason) {
      release();
      return reader.cancel(reason);
    },
  });
  return new Response(stream, { status: response.status, headers: response.headers });
}
