// Plain-HTTP access to the test server, and the envelope every reply must be.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { expect } from "vitest";
import { REPO_ROOT } from "./server";

export type { CsrRecord, Envelope } from "../envelope";
import { csrBody as validBody } from "../bodies";
import type { CsrRecord, Envelope } from "../envelope";

/** One HTTP exchange: status, headers, the raw text and the parsed body (null if not JSON). */
export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  text: string;
  body: Envelope<T> | null;
}

/** Request options for {@link call}. */
export interface CallInit {
  token?: string;
  /** JSON-encoded and sent with content-type application/json. */
  json?: unknown;
  /** Sent as is. */
  raw?: string | Uint8Array;
  headers?: Record<string, string>;
}

/** Sends one request to `origin + path` and reads the reply. */
export async function call<T = unknown>(origin: string, method: string, path: string, init: CallInit = {}): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  // A copy, so the bytes sit in a plain ArrayBuffer as fetch's types want.
  let body: string | Uint8Array<ArrayBuffer> | undefined = init.raw instanceof Uint8Array ? new Uint8Array(init.raw) : init.raw;
  if (init.json !== undefined) {
    body = JSON.stringify(init.json);
    headers["content-type"] ??= "application/json";
  }
  const response = await fetch(`${origin}${path}`, {
    method,
    headers,
    body,
    redirect: "manual",
    signal: AbortSignal.timeout(60_000),
  });
  const text = await response.text();
  let parsed: Envelope<T> | null = null;
  try {
    parsed = JSON.parse(text) as Envelope<T>;
  } catch {
    parsed = null;
  }
  return { status: response.status, headers: response.headers, text, body: parsed };
}

/** A create body that passes every check, P-256 unless overridden (fast keys keep the fuzzer's runs short). */
export function csrBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return validBody({ key_type: "p256v1", ...overrides });
}

// Internals that must never reach a client: JS stack frames, exception
// names, workerd/miniflare diagnostics.
const LEAKS: RegExp[] = [
  /\n\s*at\s/,
  // Inside JSON text a newline is the two characters \ and n.
  /\\n\s+at\s/,
  /\bat [\w$.<>]+ \((?:file|node|webpack|\/)/,
  /\b(?:Type|Range|Syntax|Reference|Internal)Error\b/,
  /\bError:/,
  /workerd|miniflare|wrangler/i,
  /\.(?:ts|js|mjs):\d+/,
];

/**
 * Asserts a well-formed v4 envelope: JSON with the right content type, a
 * status below 500, `errors` and `messages` arrays of {code, message},
 * `result` null on failure, and no internals in the text.
 */
export function expectEnvelope(reply: Reply, context = ""): Envelope {
  const where = `${context} -> ${reply.status} ${reply.text.slice(0, 300)}`;
  expect(reply.status, where).toBeGreaterThanOrEqual(200);
  expect(reply.status, where).toBeLessThan(500);
  expect(reply.headers.get("content-type"), where).toMatch(/^application\/json/);
  // README: every response carries an x-request-id.
  expect(reply.headers.get("x-request-id"), where).toMatch(/^[0-9a-f-]{36}$/);
  expect(reply.body, where).not.toBeNull();
  const body = reply.body!;
  expect(typeof body, where).toBe("object");
  expect(typeof body.success, where).toBe("boolean");
  expect(body.success, where).toBe(reply.status < 300);
  for (const list of [body.errors, body.messages]) {
    expect(Array.isArray(list), where).toBe(true);
    for (const info of list) {
      expect(typeof info.code, where).toBe("number");
      expect(Number.isInteger(info.code), where).toBe(true);
      expect(typeof info.message, where).toBe("string");
    }
  }
  expect("result" in body, where).toBe(true);
  if (!body.success) {
    expect(body.result, where).toBeNull();
    expect(body.errors.length, where).toBeGreaterThan(0);
  } else {
    expect(body.errors, where).toEqual([]);
  }
  // A success echoes the caller's own fields in `result`; only what the
  // server wrote itself is searched there.
  const own = body.success ? JSON.stringify([body.errors, body.messages]) : reply.text;
  for (const leak of LEAKS) expect(own, `${where}: leaks ${leak}`).not.toMatch(leak);
  return body;
}

/** Asserts an error envelope with exactly one error of `code`. */
export function expectError(reply: Reply, status: number, code: number): void {
  const body = expectEnvelope(reply);
  expect({ status: reply.status, codes: body.errors.map((e) => e.code) }).toEqual({ status, codes: [code] });
}

/** `total_count` of a scope's list, read with `token`. */
export async function totalCount(origin: string, base: string, token: string): Promise<number> {
  const reply = await call<CsrRecord[]>(origin, "GET", `${base}?per_page=5`, { token });
  expect(reply.status, reply.text).toBe(200);
  return reply.body!.result_info!.total_count;
}

/** Every CSR of a scope, walking all pages at per_page 50. */
export async function listAll(origin: string, base: string, token: string): Promise<CsrRecord[]> {
  const all: CsrRecord[] = [];
  for (let page = 1; ; page++) {
    const reply = await call<CsrRecord[]>(origin, "GET", `${base}?per_page=50&page=${page}`, { token });
    expect(reply.status, reply.text).toBe(200);
    all.push(...reply.body!.result);
    if (page >= reply.body!.result_info!.total_pages) return all;
  }
}

/** The operator's admin call, with ADMIN_SECRET. */
export function admin<T = unknown>(origin: string, secret: string, method: string, path: string, json?: unknown): Promise<Reply<T>> {
  return call<T>(origin, method, `/admin/v1${path}`, {
    headers: { authorization: `Bearer ${secret}` },
    ...(json === undefined ? {} : { json }),
  });
}

/**
 * docs/api.md's error table as code → HTTP status, read at run time so the
 * suite holds the service to whatever its documentation currently promises.
 * Rows look like `| 400 | 1405–1409 | … |` or `| 400 | 1442 / 1443 | … |`.
 */
export function documentedCodes(heading = "## Error codes"): Map<number, number> {
  const table = new Map<number, number>();
  const readme = readFileSync(join(REPO_ROOT, "docs", "api.md"), "utf8");
  // The Custom CSR API's table by default; the custom hostname API's has codes of its own, under its own heading.
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`docs/api.md has no ${heading}`);
  const section = readme.slice(start, readme.indexOf("\n#", start + 2));
  for (const line of section.split("\n")) {
    const row = /^\|\s*(\d{3})\s*\|\s*([0-9][0-9\s/–-]*?)\s*\|/.exec(line);
    if (!row) continue;
    const status = Number(row[1]);
    for (const part of row[2]!.split("/")) {
      const [from, to] = part.trim().split(/[–-]/).map(Number);
      for (let code = from!; code <= (to ?? from!); code++) table.set(code, status);
    }
  }
  if (table.size < 15) throw new Error(`docs/api.md error table ${heading} not found or unreadable`);
  return table;
}
