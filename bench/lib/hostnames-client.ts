// The custom hostname endpoints as the renewals scenario calls them: create
// with a managed certificate (http-01), read a hostname's or a zone's ssl
// status, delete, and read a zone's whole audit trail. Answers are JSON read
// as `unknown` and checked as far as the scenario uses them.
import type { AuditEntry } from "./renewals-audit.ts";

/** A hostname's ssl status and the messages of its validation_errors. */
export interface HostnameState {
  status: string;
  errors: string[];
}

export interface HostnamesClient {
  /** Creates `hostname` in `zone` with ssl {method: "http", type: "dv"}; its id. */
  create(zone: string, hostname: string): Promise<string>;
  /** A hostname's ssl status. */
  status(zone: string, id: string): Promise<string>;
  remove(zone: string, id: string): Promise<void>;
  /** Every hostname of a zone (up to 1,000) by id. */
  states(zone: string): Promise<Map<string, HostnameState>>;
  /** A zone's audit trail, oldest first, every page. */
  audit(zone: string): Promise<AuditEntry[]>;
}

const record = (value: unknown): Record<string, unknown> => (typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {});

/** The client of the API at `origin` with a token's `auth` header; `fail` stops the run with what went wrong. */
export function hostnamesClient({ origin, auth, fail }: { origin: string; auth: Record<string, string>; fail: (what: string) => never }): HostnamesClient {
  const api = `${origin}/client/v4/zones`;
  const result = async (url: string, init: RequestInit = {}): Promise<unknown> => {
    const response = await fetch(url, { ...init, headers: { ...auth, "content-type": "application/json", ...init.headers } });
    const body = record(await response.json().catch(() => null));
    if (!response.ok) fail(`${init.method ?? "GET"} ${url}: ${response.status} ${JSON.stringify(body).slice(0, 300)}`);
    return body.result;
  };
  const state = (h: unknown): HostnameState => {
    const ssl = record(record(h).ssl);
    const errors = Array.isArray(ssl.validation_errors) ? ssl.validation_errors.map((e) => String(record(e).message ?? JSON.stringify(e))) : [];
    return { status: String(ssl.status), errors };
  };
  return {
    async create(zone, hostname) {
      const made = record(await result(`${api}/${zone}/custom_hostnames`, { method: "POST", body: JSON.stringify({ hostname, ssl: { method: "http", type: "dv" } }) }));
      return typeof made.id === "string" ? made.id : fail(`the create of ${hostname} has no id`);
    },
    async status(zone, id) {
      return state(await result(`${api}/${zone}/custom_hostnames/${id}`)).status;
    },
    async remove(zone, id) {
      await result(`${api}/${zone}/custom_hostnames/${id}`, { method: "DELETE" });
    },
    async states(zone) {
      const page = await result(`${api}/${zone}/custom_hostnames?per_page=1000`);
      return new Map((Array.isArray(page) ? page : []).map((h) => [String(record(h).id), state(h)]));
    },
    async audit(zone) {
      const entries: AuditEntry[] = [];
      for (let page = 1; ; page++) {
        const got = await result(`${api}/${zone}/audit_logs?per_page=100&direction=asc&page=${page}`);
        const items = Array.isArray(got) ? (got as AuditEntry[]) : [];
        entries.push(...items);
        if (items.length < 100) return entries;
      }
    },
  };
}
