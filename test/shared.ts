// Fixtures shared by the HTTP tests: a client for the Worker's own fetch
// handler, valid request bodies, and typed envelopes.
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { TenantCall } from "../src/core/call";
import type { CsrRecord, Envelope } from "./envelope";
import { authHeaders, mintToken } from "./tokens";

export type { Envelope };

export interface Reply<T = unknown> {
  status: number;
  headers: Headers;
  body: Envelope<T>;
}

import { csrBody } from "./bodies";

export { csrBody };

/** A unique scope id per test, so tests never share a Durable Object. */
export function scopeId(prefix = "t"): string {
  return `${prefix}${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

export type Kind = "accounts" | "zones";

/** A token with Write on exactly this scope. */
export function tokenFor(kind: Kind, id: string, opts: { readOnly?: boolean } = {}): Promise<string> {
  return mintToken({ ...(kind === "accounts" ? { accounts: [id] } : { zones: [id] }), readOnly: opts.readOnly ?? false });
}

/** Sends a request through the Worker's fetch handler and parses the envelope. */
export async function call<T = unknown>(
  method: string,
  path: string,
  init: { token?: string | null; body?: unknown; rawBody?: BodyInit; headers?: Record<string, string> } = {},
): Promise<Reply<T>> {
  const headers: Record<string, string> = { ...(init.token ? authHeaders(init.token) : {}), ...init.headers };
  let body: BodyInit | undefined = init.rawBody;
  if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers["content-type"] = "application/json";
  }
  const response = await exports.default.fetch(new Request(`https://api.test${path}`, { method, headers, body }));
  const text = await response.text();
  expect(response.headers.get("content-type")).toMatch(/^application\/json/);
  return { status: response.status, headers: response.headers, body: JSON.parse(text) as Envelope<T> };
}

/** A scope with a token, and shorthands for its four endpoints. */
export async function scope(kind: Kind = "zones", id = scopeId()) {
  const token = await tokenFor(kind, id);
  const base = `/client/v4/${kind}/${id}/custom_csrs`;
  return {
    kind,
    id,
    token,
    base,
    create: (body: unknown = csrBody()) => call<CsrRecord>("POST", base, { token, body }),
    list: (query = "") => call<CsrRecord[]>("GET", `${base}${query}`, { token }),
    get: (csrId: string) => call<CsrRecord>("GET", `${base}/${csrId}`, { token }),
    remove: (csrId: string) => call<{ id: string }>("DELETE", `${base}/${csrId}`, { token }),
  };
}

/** Asserts a Cloudflare-style error envelope with one error of `code`. */
export function expectError(reply: Reply, status: number, code: number): void {
  expect({ status: reply.status, code: reply.body.errors[0]?.code }).toEqual({ status, code });
  expect(reply.body.success).toBe(false);
  expect(reply.body.result).toBeNull();
  expect(reply.body.errors).toHaveLength(1);
  expect(typeof reply.body.errors[0]!.message).toBe("string");
  expect(reply.body.messages).toEqual([]);
}

/** The tenant object of a scope, for storage checks with runInDurableObject. */
export function tenantStub(kind: Kind, id: string) {
  return env.TENANTS.get(env.TENANTS.idFromName(`${kind}:${id}`));
}

export const adminHeaders = { authorization: `Bearer ${env.ADMIN_SECRET}` };

/** A tenant RPC call as the operator makes it, for tests that call the object directly. */
export function adminCall(kind: Kind, id: string): TenantCall {
  return { scope: { kind, id }, actor: { type: "admin", id: "admin" } };
}
