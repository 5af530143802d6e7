import { describe, expect, it } from "vitest";
import { errorInfo, failures } from "../src/http/envelope";
import { DETAILS, ERRORS, type ErrorEntry, type Reason } from "../src/http/errors";
import readme from "../docs/api.md?raw";

const entries = Object.entries(ERRORS) as Array<[Reason, ErrorEntry]>;

describe("the one table of refusals", () => {
  it("a message with a :reason placeholder has what fills it, and only such a message", () => {
    for (const [reason, entry] of entries) {
      expect(entry.message.includes(":reason"), reason).toBe(DETAILS[reason] !== undefined);
    }
  });

  it("within one API's table no code means two things: reasons sharing a code share its status", () => {
    const byCode = new Map<string, Reason[]>();
    for (const [reason, entry] of entries) {
      const key = `${entry.api ?? "custom_csrs"}:${entry.code}`;
      byCode.set(key, [...(byCode.get(key) ?? []), reason]);
    }
    const shared = [...byCode.entries()].filter(([, reasons]) => reasons.length > 1);
    for (const [code, reasons] of shared) {
      const statuses = new Set(reasons.map((r) => ERRORS[r].status));
      expect(statuses.size, `code ${code}: ${reasons.join(", ")}`).toBe(1);
    }
    expect(new Map(shared)).toEqual(
      new Map([
        ["custom_csrs:1500", ["internal", "scope_mismatch"]],
        ["custom_csrs:1501", ["key_encryption_unavailable", "key_encryption_key_missing"]],
        ["custom_hostnames:1432", ["hostname_method_unsupported", "hostname_email_validation"]],
      ]),
    );
  });

  it("typed data is rendered into the message, escaped where it comes from a certificate", () => {
    expect(errorInfo({ reason: "certificate_exists", pointer: "/certificate", certificate_id: "0b5a…" }).message).toContain("(0b5a…)");
    expect(errorInfo({ reason: "key_encryption_mismatch", kek_id: "k2" }).message).toContain("Key-encryption key k2 is not");
    expect(errorInfo({ reason: "record_integrity_failed", record: "edge", id: "paris-1" }).message).toContain("(edge paris-1)");
    expect(errorInfo({ reason: "zone_account_moved", account_id: "acc-2" }).message).toContain("(acc-2)");
    const host = errorInfo({ reason: "invalid_certificate_host", pointer: "/certificate", host: "a\u0000b\u2028c/d" });
    expect(host.message).toContain('"a\\u0000b?c/d"');
    expect(host.source).toEqual({ pointer: "/certificate" });
    expect(errorInfo({ reason: "invalid_query", parameter: "per_page", rule: "must be an integer from 5 to 50" }).message).toBe(
      "Invalid query parameter: per_page must be an integer from 5 to 50. Check your input and try again.",
    );
  });

  it("a reply carries the first refusal's status and Retry-After when it has one", async () => {
    const reply = failures([{ reason: "rate_limited" }, { reason: "internal" }], "req-1");
    expect(reply.status).toBe(429);
    expect(reply.headers.get("retry-after")).toBe("1");
    const body = (await reply.json()) as { errors: Array<{ code: number; request_id: string }> };
    expect(body.errors.map((e) => e.code)).toEqual([971, 1500]);
    expect(body.errors[0]!.request_id).toBe("req-1");
  });
});

describe("docs/api.md's error tables are this table", () => {
  // Rows look like `| 400 | 1405–1409 | … |` or `| 400 | 1442 / 1443 | … |`; one table per API, under its heading.
  function tableUnder(heading: string): Map<number, number> {
    const start = readme.indexOf(`\n${heading}\n`);
    const end = readme.indexOf("\n#", start + heading.length + 2);
    const documented = new Map<number, number>();
    for (const line of readme.slice(start, end === -1 ? undefined : end).split("\n")) {
      const row = /^\|\s*(\d{3})\s*\|\s*([0-9][0-9\s/–-]*?)\s*\|/.exec(line);
      if (!row) continue;
      for (const part of row[2]!.split("/")) {
        const [from, to] = part.trim().split(/[–-]/).map(Number);
        for (let code = from!; code <= (to ?? from!); code++) documented.set(code, Number(row[1]));
      }
    }
    return documented;
  }
  const tables = {
    custom_csrs: tableUnder("## Error codes"),
    custom_hostnames: tableUnder("## Custom hostname error codes"),
    alerting: tableUnder("## Notifications error codes"),
  };
  // Answered by the TLS proxy's nginx configuration (docs/nginx.conf), not by the Worker.
  const NOT_THE_WORKER = [1504];

  it("the tables are found", () => {
    expect(tables.custom_csrs.size).toBeGreaterThan(60);
    expect(tables.custom_hostnames.size).toBeGreaterThan(30);
    expect(tables.alerting.size).toBeGreaterThan(8);
  });

  it("every code the API answers is documented with its status, in its API's table", () => {
    for (const [reason, entry] of entries) expect(tables[entry.api ?? "custom_csrs"].get(entry.code), `${reason} (${entry.code})`).toBe(entry.status);
  });

  it("every documented code is one the API answers (or the TLS proxy's)", () => {
    for (const api of ["custom_csrs", "custom_hostnames", "alerting"] as const) {
      const answered = new Set(entries.filter(([, entry]) => (entry.api ?? "custom_csrs") === api).map(([, entry]) => entry.code));
      for (const code of tables[api].keys()) expect(answered.has(code) || NOT_THE_WORKER.includes(code), `docs/api.md documents ${code} (${api})`).toBe(true);
    }
  });
});
