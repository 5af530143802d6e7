// The agent's only network I/O: bounded JSON GETs against the service, with
// the token only over https:// (or http:// to this host).
import { isIP } from "node:net";
import { EdgeError } from "./errors.ts";
import { isRecord } from "./json.ts";
import { printable } from "./output.ts";

/** The most a reply may be: a bundle is a certificate chain and a sealed key (kilobytes); a listing, a few hundred bytes per certificate. */
export const MAX_REPLY_BYTES = 16 * 1024 * 1024;
/** How long one request may take, connection to last byte. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** A v4 envelope: its result and signature, or its first error. */
export type Reply =
  | { ok: true; result: unknown; signed: string | null }
  | { ok: false; status: number; code: number | null; message: string };

/**
 * The API base for --url: `https://host[/prefix]` gains `/client/v4` unless
 * it ends in `/client/v4` or `/api/v4`. Plain http:// only to this host: a
 * token sent in the clear is a token anyone on the path can use.
 */
export function apiBase(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new EdgeError(`--url ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new EdgeError(`--url must be https:// (or http:// to this host), not ${parsed.protocol}`);
  if (parsed.protocol === "http:" && !loopback(parsed.hostname)) {
    throw new EdgeError(`--url ${parsed.origin} is plain http:// to another host: the token would cross the network in the clear; use https://`);
  }
  const base = parsed.href.replace(/\/+$/, "");
  return /\/(?:client|api)\/v4$/.test(base) ? base : `${base}/client/v4`;
}

/** Whether a URL's host is this machine: localhost, 127.0.0.0/8 or ::1. */
export function loopback(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "");
  if (host === "localhost" || host === "::1") return true;
  return isIP(host) === 4 && host.startsWith("127.");
}

/** Limits of one request; tests shrink them. */
export interface RequestLimits {
  maxBytes: number;
  timeoutMs: number;
}

const LIMITS: RequestLimits = { maxBytes: MAX_REPLY_BYTES, timeoutMs: REQUEST_TIMEOUT_MS };

/**
 * One GET with the token: the envelope's result and its `signed` member, or
 * the first error's code and (printable, shortened) message. An unreachable
 * service, a reply past the bound, or one that is not JSON is an EdgeError.
 */
export async function getJson(url: string, token: string, limits: RequestLimits = LIMITS): Promise<Reply> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(limits.timeoutMs) });
  } catch (error) {
    throw new EdgeError(`cannot reach ${new URL(url).origin}: ${reason(error)}`);
  }
  const text = await boundedText(response, url, limits.maxBytes);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new EdgeError(`${response.status} from ${url}: not a JSON envelope`);
  }
  const envelope = isRecord(body) ? body : {};
  if (response.ok && envelope.success === true) {
    return { ok: true, result: envelope.result, signed: typeof envelope.signed === "string" ? envelope.signed : null };
  }
  const first: unknown = Array.isArray(envelope.errors) ? envelope.errors[0] : undefined;
  const error = isRecord(first) ? first : {};
  return {
    ok: false,
    status: response.status,
    code: typeof error.code === "number" ? error.code : null,
    message: printable(String(error.message ?? "no message").slice(0, 500)),
  };
}

/** A reply's body as text, refused past maxBytes without reading the rest. */
async function boundedText(response: Response, url: string, maxBytes: number): Promise<string> {
  const tooLarge = () => new EdgeError(`the reply from ${new URL(url).origin} is larger than ${maxBytes} bytes: refused`);
  const declared = Number(response.headers.get("content-length") ?? "0");
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw tooLarge();
  }
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const read = () =>
    reader.read().catch((error: unknown) => {
      throw new EdgeError(`the reply from ${new URL(url).origin} broke off: ${reason(error)}`);
    });
  for (;;) {
    const chunk = await read();
    if (chunk.done) break;
    size += chunk.value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(chunk.value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Why a request failed: the network error under fetch's own "fetch failed". */
function reason(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? error.cause.message : error.message;
}

