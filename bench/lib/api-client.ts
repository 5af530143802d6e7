// The bench's client of the API under test: the v4 endpoints it creates and
// reads CSRs through, and the admin endpoints (a scope's stats, its key
// pool). Answers are JSON read as `unknown` and checked field by field, so a
// changed answer stops the run by name instead of steering it quietly.
import type { Endpoint, Headers } from "./load.ts";

/** A scope's kind, as in the API's paths. */
export type Kind = "accounts" | "zones";
export type KeyType = "p256v1" | "rsa2048";

/** What the admin stats endpoint says of a scope (the part the bench reads). */
export interface ScopeStats {
  csrs: number;
  databaseBytes: number;
  auditEntries: number;
}

/** `value[key]` of a parsed JSON value; undefined when value is not an object. */
export function prop(value: unknown, key: string): unknown {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

export interface ApiClient {
  /** The server's origin, e.g. http://127.0.0.1:8787. */
  readonly origin: string;
  /** The v4 API's base, e.g. http://127.0.0.1:8787/client/v4. */
  readonly api: string;
  /** The admin API's base, e.g. http://127.0.0.1:8787/admin/v1. */
  readonly adminBase: string;
  /** A request that must succeed; its parsed JSON body. */
  json(url: string, init?: RequestInit): Promise<unknown>;
  stats(kind: Kind, id: string): Promise<ScopeStats>;
  /** Keys ready in a scope's pool. */
  poolAvailable(kind: Kind, id: string): Promise<number>;
  /** Sets a scope's pool size (0: off). */
  setKeyPool(kind: Kind, id: string, size: number): Promise<void>;
  /** A load target: creates in a scope. */
  create(kind: Kind, id: string, keyType: KeyType): Endpoint & { headers: Headers };
  /** Creates one CSR (through `apiBase`, by default the API's own); its id. */
  createOne(kind: Kind, id: string, keyType?: KeyType, apiBase?: string): Promise<string>;
  /** Ids of a scope's first CSRs (a list page of `perPage`). */
  listIds(kind: Kind, id: string, perPage: number): Promise<string[]>;
}

/**
 * The client of the API at `origin` (no trailing slash), with a token's
 * `auth` header and the `admin` secret's; `fail` stops the run with what
 * went wrong (and the server's log).
 */
export function apiClient({ origin, auth, admin, body, fail }: { origin: string; auth: Headers; admin: Headers; body: object; fail: (what: string) => never }): ApiClient {
  const api = `${origin}/client/v4`;
  const adminBase = `${origin}/admin/v1`;
  const json = async (url: string, init: RequestInit = {}): Promise<unknown> => {
    const response = await fetch(url, init);
    const parsed: unknown = await response.json().catch(() => null);
    if (!response.ok) fail(`${init.method ?? "GET"} ${url} answered ${response.status}: ${JSON.stringify(parsed)?.slice(0, 300)}`);
    return parsed;
  };
  const number = (value: unknown, what: string): number => (typeof value === "number" ? value : fail(`${what} is not a number: ${JSON.stringify(value)}`));
  const text = (value: unknown, what: string): string => (typeof value === "string" ? value : fail(`${what} is not a string: ${JSON.stringify(value)}`));
  const result = async (url: string, init?: RequestInit) => prop(await json(url, init), "result");
  const adminUrl = (kind: Kind, id: string, rest: string) => `${adminBase}/${kind}/${id}/${rest}`;
  const createIn = (apiBase: string, kind: Kind, id: string) => `${apiBase}/${kind}/${id}/custom_csrs`;
  return {
    origin,
    api,
    adminBase,
    json,
    async stats(kind, id) {
      const stats = await result(adminUrl(kind, id, "stats"), { headers: admin });
      return {
        csrs: number(prop(stats, "csrs"), `${kind}/${id} stats: csrs`),
        databaseBytes: number(prop(stats, "database_bytes"), `${kind}/${id} stats: database_bytes`),
        auditEntries: number(prop(prop(stats, "audit"), "entries"), `${kind}/${id} stats: audit.entries`),
      };
    },
    async poolAvailable(kind, id) {
      return number(prop(await result(adminUrl(kind, id, "key_pool"), { headers: admin }), "available"), `${kind}/${id} key_pool: available`);
    },
    async setKeyPool(kind, id, size) {
      await json(adminUrl(kind, id, "key_pool"), { method: "PUT", headers: { ...admin, "content-type": "application/json" }, body: JSON.stringify({ size }) });
    },
    create: (kind, id, keyType) => ({ url: createIn(api, kind, id), method: "POST", headers: auth, body: { ...body, key_type: keyType } }),
    async createOne(kind, id, keyType = "p256v1", apiBase = api) {
      const made = await result(createIn(apiBase, kind, id), {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ ...body, key_type: keyType }),
      });
      return text(prop(made, "id"), `the CSR created in ${kind}/${id}: id`);
    },
    async listIds(kind, id, perPage) {
      const page = await result(`${createIn(api, kind, id)}?per_page=${perPage}`, { headers: auth });
      return (Array.isArray(page) ? page : fail(`the list of ${kind}/${id} is not an array`)).map((r: unknown) => text(prop(r, "id"), `a CSR of ${kind}/${id}: id`));
    },
  };
}
