// Property-based probing of the custom hostname routes over HTTP: create and
// edit bodies of every broken shape (hostnames, ssl of both kinds, metadata,
// origins, raw bytes), list query strings, and ids. Whatever arrives, the
// answer is a well-formed v4 envelope whose every code is documented with
// that status (docs/api.md's custom hostname table, or the codes it says the
// routes share with the Custom CSR table), never a 5xx; a refused create adds
// nothing, and a refused edit leaves the hostname byte for byte as it was.
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Reply, call, csrBody, documentedCodes, expectEnvelope } from "./api";
import { mintToken, scopeId } from "./credentials";
import { opensslCa } from "./openssl-ca";
import { type TestServer, startServer } from "./server";

const NUM_RUNS = Number(process.env.E2E_FUZZ_RUNS ?? 120);
const SEED = process.env.E2E_FUZZ_SEED === undefined ? undefined : Number(process.env.E2E_FUZZ_SEED);
const params = { numRuns: NUM_RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

const ZONE = scopeId("fh");
const BASE = `/client/v4/zones/${ZONE}/custom_hostnames`;

// The custom hostname table, and the codes docs/api.md says these routes share with the Custom CSR table.
const HOSTNAME_CODES = documentedCodes("## Custom hostname error codes");
const CSR_CODES = documentedCodes();
const SHARED = new Set([1000, 1001, 1002, 1003, 1004, 1005, 9103, 10000, 1402, 7000, 7001, 1400, 1433, 1438, 971, 1500, 1501, 1502, 1503, 1504, 1505, 1506]);
const documented = (code: number, status: number): boolean =>
  HOSTNAME_CODES.get(code) === status || (SHARED.has(code) && CSR_CODES.get(code) === status);

let server: TestServer;
let token: string;
let csrId: string;
let certificate: string;
/** Hostnames created by the fuzzers (names are unique per deployment, so generated names may collide: 409 is fine). */
const made: string[] = [];

async function total(): Promise<number> {
  const reply = await call<unknown[]>(server.origin, "GET", `${BASE}?per_page=5`, { token });
  expect(reply.status, reply.text).toBe(200);
  return reply.body!.result_info!.total_count;
}

/**
 * A hostname as an edit writes it: without what the zone's ACME machinery
 * records on its own (an order's progress: `ssl.status`, `validation_records`,
 * `validation_errors`, and the hostname's status that follows), which may
 * change between two reads while an accepted managed `ssl` is being ordered.
 */
function asWritten(text: string): unknown {
  const record = (JSON.parse(text) as { result: Record<string, unknown> & { ssl?: Record<string, unknown> } }).result;
  const { status: _status, ...rest } = record;
  if (!rest.ssl) return rest;
  const { status: _ssl, validation_records: _records, validation_errors: _errors, ...ssl } = rest.ssl;
  return { ...rest, ssl };
}

/** One request, its envelope and codes checked; the count of hostnames may change only by a 201. */
async function observe(context: string, send: () => Promise<Reply>): Promise<Reply> {
  const before = await total();
  const reply = await send();
  const body = expectEnvelope(reply, context);
  expect(reply.status, `${context}: ${reply.text}`).toBeLessThan(500);
  for (const error of body.errors) expect(documented(error.code, reply.status), `${context}: code ${error.code} with ${reply.status} is not documented so`).toBe(true);
  const after = await total();
  expect(after - before, `${context}: ${reply.status} changed the count`).toBe(reply.status === 201 ? 1 : 0);
  if (reply.status === 201) made.push((body.result as { id: string }).id);
  return reply;
}

// ---- arbitraries ----

const wrongType = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }));
const text = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 30 }),
  fc.string({ unit: "binary", maxLength: 30 }),
  fc.constantFrom("", " ", "\u0000", "\u202eRTL", "\ud800", "💥".repeat(30), "<script>", "\u200b"),
);
const field = <T>(good: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 6, arbitrary: good }, { weight: 2, arbitrary: text }, { weight: 1, arbitrary: wrongType }, fc.constant(undefined));
const goodHost = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/).map((label) => `${label}.customer-six.com`);
const badHost = fc.constantFrom(
  "*.customer-six.com", "a..customer-six.com", ".customer-six.com", "-a.customer-six.com", "192.0.2.1", "::1", "x.test", "x.localhost",
  "www.example.com", "co.uk", "github.io", "bücher.de", `${"a".repeat(64)}.com`, `${"b.".repeat(130)}com`, "UPPER.Customer-Six.COM", "com",
);
const hostname = fc.oneof({ weight: 5, arbitrary: goodHost }, badHost, text, wrongType, fc.constant(undefined));
const settings = fc.record(
  {
    min_tls_version: field(fc.constantFrom("1.0", "1.1", "1.2", "1.3", "1.4")),
    http2: field(fc.constantFrom("on", "off")),
    tls_1_3: field(fc.constantFrom("on", "off")),
    early_hints: field(fc.constantFrom("on", "off")),
    ciphers: field(fc.array(fc.constantFrom("ECDHE-RSA-AES128-GCM-SHA256", "AES128-SHA", "NOPE"), { maxLength: 3 })),
  },
  { requiredKeys: [] },
);
const managed = fc.record(
  {
    method: field(fc.constantFrom("http", "txt", "email", "cname")),
    type: field(fc.constantFrom("dv", "ov")),
    wildcard: field(fc.boolean()),
    certificate_authority: field(fc.constantFrom("lets_encrypt", "google", "ssl_com", "digicert", "pebble")),
    bundle_method: field(fc.constantFrom("ubiquitous", "optimal", "force", "best")),
    settings: fc.option(settings, { nil: undefined }),
  },
  { requiredKeys: [] },
);
const customCsr = fc.record(
  {
    custom_csr_id: fc.oneof(fc.constant("CSR"), fc.uuid().map(String), text, wrongType),
    custom_certificate: fc.oneof(fc.constant("CERTIFICATE"), fc.constant("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"), text, wrongType),
    custom_key: fc.option(fc.constant("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"), { nil: undefined }),
    bundle_method: field(fc.constantFrom("ubiquitous", "force")),
  },
  { requiredKeys: [] },
);
const ssl = fc.oneof(managed, customCsr, wrongType, fc.constant(undefined));
const metadata = fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }), wrongType, fc.constant({ big: "x".repeat(5000) }), fc.constant(undefined));
const body = fc.record(
  {
    hostname,
    ssl,
    custom_metadata: metadata,
    custom_origin_server: field(goodHost),
    custom_origin_sni: field(goodHost),
    extra: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }),
  },
  { requiredKeys: [] },
);
const filled = (b: unknown): string => JSON.stringify(b).replaceAll('"CSR"', JSON.stringify(csrId)).replaceAll('"CERTIFICATE"', JSON.stringify(certificate));
/** A raw request body: mostly objects, with the CSR and certificate placeholders filled in. */
const rawBody = fc.oneof(
  { weight: 8, arbitrary: body.map(filled) },
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.constantFrom("", "null", "[]", "{}", "{", '{"hostname":', "\ufeff{}", '"x"', "1e999", `{"__proto__":{"hostname":"p.customer-six.com"}}`),
  fc.uint8Array({ maxLength: 100 }),
);
/** An edit body: mostly without `hostname` (which an edit may not change: 409, 1439). */
const rawEdit = fc.oneof({ weight: 3, arbitrary: body.map((b) => filled({ ...b, hostname: undefined })) }, rawBody);

describe("fuzz: custom hostnames", () => {
  beforeAll(async () => {
    server = await startServer({
      root: inject("e2eRoot"),
      name: "fuzz-hostnames",
      // Managed certificates are accepted (a CA is configured); its directory resolves nowhere, so orders only fail in the background.
      env: { ACME_DIRECTORIES: JSON.stringify({ lets_encrypt: { directory: "https://acme.invalid/directory" } }) },
    });
    token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] });
    const csr = await call<{ id: string; csr: string }>(server.origin, "POST", `/client/v4/zones/${ZONE}/custom_csrs`, {
      token,
      json: csrBody({ common_name: "a.customer-six.com", sans: ["a.customer-six.com", "*.customer-six.com"], key_type: "p256v1" }),
    });
    expect(csr.status, csr.text).toBe(201);
    csrId = csr.body!.result!.id;
    const ca = opensslCa(join(server.dir, "pki"), "/CN=fuzz hostname CA");
    certificate = ca.issue(csr.body!.result!.csr, "fuzz") + ca.pem();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("create bodies: 201 or a documented 4xx, and only a 201 adds a hostname", async () => {
    await fc.assert(
      fc.asyncProperty(rawBody, async (raw) => {
        const context = `POST ${typeof raw === "string" ? raw.slice(0, 160) : `bytes(${raw.length})`}`;
        const reply = await observe(context, () => call(server.origin, "POST", BASE, { token, raw, headers: { "content-type": "application/json" } }));
        expect([201, 400, 403, 404, 409, 413], context).toContain(reply.status);
      }),
      params,
    );
    expect(made.length, "some bodies were valid").toBeGreaterThan(0);
  });

  it("edit bodies: 202 or a documented 4xx, and a refused edit leaves the hostname exactly as it was", async () => {
    const target = made[0]!;
    await fc.assert(
      fc.asyncProperty(rawEdit, async (raw) => {
        const context = `PATCH ${typeof raw === "string" ? raw.slice(0, 160) : `bytes(${raw.length})`}`;
        const before = await call(server.origin, "GET", `${BASE}/${target}`, { token });
        const reply = await observe(context, () => call(server.origin, "PATCH", `${BASE}/${target}`, { token, raw, headers: { "content-type": "application/json" } }));
        expect([202, 400, 404, 409, 413], context).toContain(reply.status);
        if (reply.status !== 202) expect(asWritten((await call(server.origin, "GET", `${BASE}/${target}`, { token })).text), context).toEqual(asWritten(before.text));
      }),
      params,
    );
  });

  it("list query strings and ids: 200 or a documented 4xx, nothing changed", async () => {
    const key = fc.constantFrom("hostname", "hostname.exact", "hostname.contain", "hostname.startsWith", "id", "ssl", "ssl_status", "hostname_status", "wildcard", "order", "direction", "page", "per_page", "bogus");
    const value = fc.oneof(fc.constantFrom("1", "0", "-1", "100", "101", "1e3", "true", "false", "asc", "desc", "ssl", "active", "pending", "", made[0]!, "customer-six"), fc.string({ maxLength: 12 }));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(key, value), { maxLength: 4 }), async (pairs) => {
        const query = new URLSearchParams(pairs).toString();
        const reply = await observe(`GET ?${query}`, () => call(server.origin, "GET", `${BASE}?${query}`, { token }));
        expect([200, 400], query).toContain(reply.status);
      }),
      params,
    );
    for (const id of ["x", "..", randomUUID(), `${made[0]}x`, "%00", "quota", "fallback_origin"]) {
      const reply = await observe(`GET ${id}`, () => call(server.origin, "GET", `${BASE}/${id}`, { token }));
      expect([200, 400, 404]).toContain(reply.status);
    }
  });
});
