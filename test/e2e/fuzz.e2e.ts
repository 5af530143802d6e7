// Property-based probing of the running server over HTTP: bodies, paths,
// query strings, headers and tokens of every broken shape. Whatever arrives,
// the answer is a well-formed v4 envelope with a documented code, never a
// 5xx or an internal detail, and a refused request writes nothing.
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type CsrRecord, type Reply, call, csrBody, documentedCodes, expectEnvelope } from "./api";
import { legacyKey, mintToken, policiesFor, scopeId, signHs256 } from "./credentials";
import { type TestServer, startServer } from "./server";
import { expectCsrsVerified } from "./verify";

const NUM_RUNS = Number(process.env.E2E_FUZZ_RUNS ?? 150);
// A failing seed can be replayed with E2E_FUZZ_SEED (fast-check prints it).
const SEED = process.env.E2E_FUZZ_SEED === undefined ? undefined : Number(process.env.E2E_FUZZ_SEED);
const params = { numRuns: NUM_RUNS, ...(SEED === undefined ? {} : { seed: SEED }) };

const ACCOUNT = scopeId("fa");
const ZONE = scopeId("fz");
const SCOPES = { accounts: ACCOUNT, zones: ZONE } as const;
type Kind = keyof typeof SCOPES;

// Every code docs/api.md's table documents, with its status; 5xx codes are
// documented but must never be seen here.
const DOCUMENTED = documentedCodes();
const AUTH_CODES = new Set([1000, 1001, 1002, 1003, 1004, 1005, 1402, 9103, 10000]);
const BODY_CODES = new Set([1400, ...range(1405, 1417), ...range(1430, 1437)]);

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

let server: TestServer;
let token: string;
const legacy = legacyKey("fuzz@customer-five.com", [ACCOUNT], [ZONE]);
/** CSRs the fuzzers managed to create: checked by OpenSSL and Python at the end. */
const created: CsrRecord[] = [];
/** Existing ids per scope, so paths sometimes name a real CSR. */
const known: Record<Kind, string[]> = { accounts: [], zones: [] };

const basePath = (kind: Kind): string => `/client/v4/${kind}/${SCOPES[kind]}/custom_csrs`;

/** Whether the server still answers, twice over two seconds (a dying server may answer once more). */
async function alive(): Promise<boolean> {
  for (let i = 0; i < 2; i++) {
    await new Promise((done) => setTimeout(done, 1_000));
    try {
      const reply = await call(server.origin, "GET", "/client/v4/__alive");
      if (reply.status !== 404) return false;
    } catch {
      return false;
    }
  }
  return true;
}

async function counts(): Promise<Record<Kind, number>> {
  const [a, z] = await Promise.all(
    (["accounts", "zones"] as const).map(async (kind) => {
      const reply = await call<CsrRecord[]>(server.origin, "GET", `${basePath(kind)}?per_page=5`, { token });
      expect(reply.status, reply.text).toBe(200);
      return reply.body!.result_info!.total_count;
    }),
  );
  return { accounts: a!, zones: z! };
}

/**
 * Sends one request between two counts of both scopes and checks the reply's
 * envelope and codes. Only a 201 may add one CSR (to `target`), only a 200
 * DELETE may remove one; anything else leaves both scopes as they were.
 */
async function observe(context: string, send: () => Promise<Reply>, target?: Kind): Promise<Reply> {
  const before = await counts();
  const reply = await send();
  const body = expectEnvelope(reply, context);
  for (const error of body.errors) {
    expect(DOCUMENTED.has(error.code), `${context}: undocumented code ${error.code}`).toBe(true);
    expect(reply.status, `${context}: code ${error.code} documented with another status`).toBe(DOCUMENTED.get(error.code));
  }
  const after = await counts();
  const expected = { ...before };
  if (reply.status === 201) {
    expect(target, `${context}: 201 outside the fuzzed scopes`).toBeDefined();
    expected[target!] += 1;
    const record = body.result as CsrRecord;
    created.push(record);
    known[target!].push(record.id);
  } else if (reply.status === 200 && context.startsWith("DELETE") && target) {
    expected[target] -= 1;
  }
  expect(after, `${context}: ${reply.status} changed the stored counts`).toEqual(expected);
  return reply;
}

// ---- arbitraries ----

const char = (from: number, to: number): fc.Arbitrary<string> => fc.integer({ min: from, max: to }).map((c) => String.fromCharCode(c));
const control = fc.oneof(char(0, 0x1f), char(0x7f, 0x9f), fc.constantFrom("\u2028", "\u2029"));
const text = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme-ascii", maxLength: 300 }),
  fc.tuple(fc.string({ maxLength: 5 }), fc.string({ unit: control, minLength: 1, maxLength: 3 })).map(([a, b]) => a + b),
  fc.constantFrom("", " ", "\t \n", "#hash", "\u202e\u202dRTL", "\ufeffBOM", "e\u0301", "💥".repeat(40), "ǅ", "null", "<script>", "\u200b"),
  // Lone surrogates: valid JSON escapes, not Unicode text.
  fc.tuple(fc.string({ maxLength: 5 }), fc.integer({ min: 0xd800, max: 0xdfff })).map(([a, c]) => `${a}${String.fromCharCode(c)}`),
);
const wrongType = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
);
const field = (good: fc.Arbitrary<string>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 6, arbitrary: good }, { weight: 2, arbitrary: text }, { weight: 1, arbitrary: wrongType }, fc.constant(undefined));

const goodSan = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/).map((label) => `${label}.customer-five.com`);
const badSan = fc.constantFrom(
  "*.customer-five.com",
  "*.*.customer-five.com",
  "a*.customer-five.com",
  "192.0.2.1",
  "::1",
  "[2001:db8::1]",
  "a..customer-five.com",
  ".customer-five.com",
  "-a.customer-five.com",
  "a-.customer-five.com",
  "x.test",
  "x.localhost",
  "www.example.com",
  "example.org",
  "com",
  "co.uk",
  "github.io",
  "bücher.de",
  "xn--bcher-kva.de",
  `${"a".repeat(64)}.com`,
  `${"b.".repeat(130)}com`,
  "under_score.customer-five.com",
  "UPPER.Customer-Five.COM",
);
const sanList = fc.oneof(
  fc.array(fc.oneof({ weight: 4, arbitrary: goodSan }, badSan, text, wrongType), { maxLength: 6 }),
  // Duplicates, exact and by case.
  fc.array(goodSan, { minLength: 1, maxLength: 4 }).map((list) => [...list, ...list, ...list.map((s) => s.toUpperCase())]),
  // Around the 150 limit.
  fc.integer({ min: 145, max: 220 }).chain((n) => fc.array(goodSan, { minLength: n, maxLength: n })),
  wrongType,
  fc.constant(undefined),
);
const keyType = fc.oneof(
  { weight: 8, arbitrary: fc.constant("p256v1") },
  fc.constantFrom("rsa2048", "RSA2048", "p384", "ed25519", "", " p256v1"),
  wrongType,
  fc.constant(undefined),
);

/** A create body: mostly-valid fields with wrong types, unicode, controls and bad SANs mixed in. */
const bodyObject = fc.record(
  {
    common_name: field(goodSan),
    country: field(fc.constantFrom("US", "de", " GB ", "fr", "XX", "USA", "u")),
    state: field(fc.constantFrom("California", "Bayern", "Île-de-France")),
    locality: field(fc.constantFrom("San Francisco", "München", "東京")),
    organization: field(fc.constantFrom("Customer Five", "Kunde Fünf GmbH", "株式会社", "O'Brien & Sons, Ltd.")),
    organizational_unit: fc.option(field(fc.constantFrom("Platform", "R&D")), { nil: undefined }),
    name: fc.option(field(fc.constantFrom("prod", "staging")), { nil: undefined }),
    description: fc.option(field(fc.string({ maxLength: 200 })), { nil: undefined }),
    sans: sanList,
    key_type: keyType,
    extra: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }),
  },
  { requiredKeys: ["sans"] },
);

const nest = (n: number, open: string, close: string, core = "1"): string => open.repeat(n) + core + close.repeat(n);

/** A raw request body. */
const rawBody: fc.Arbitrary<string | Uint8Array> = fc.oneof(
  { weight: 8, arbitrary: bodyObject.map((b) => JSON.stringify(b)) },
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.integer({ min: 1, max: 30_000 }).map((n) => nest(n, "[", "]", "")),
  fc.integer({ min: 1, max: 10_000 }).map((n) => nest(n, '{"a":', "}")),
  fc.integer({ min: 10, max: 20_000 }).map((n) => JSON.stringify(csrBody()).replace('"California"', nest(n, "[", "]", ""))),
  fc.integer({ min: 64 * 1024 - 300, max: 300_000 }).map((n) => JSON.stringify(csrBody({ description: "x".repeat(n) }))),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.uint8Array({ maxLength: 200 }),
  fc.constantFrom(
    "",
    "null",
    "[]",
    "{}",
    "\ufeff{}",
    "{",
    '{"common_name":"x"',
    "1e999",
    '"string"',
    JSON.stringify(csrBody()).replace('"country":"US"', '"country":7,"country":"US"'),
    JSON.stringify(csrBody()).slice(0, -1),
    `${JSON.stringify(csrBody())}garbage`,
    JSON.stringify(csrBody()).replaceAll('"', "'"),
    "\u0000",
    // Prototype keys arrive as plain JSON members; they must neither pollute nor crash.
    `{"__proto__":{"country":"US"},${JSON.stringify(csrBody()).slice(1)}`,
    `{"constructor":{"prototype":{"sans":[]}},${JSON.stringify(csrBody({ country: undefined })).slice(1)}`,
    `{"__proto__":null,"country":"US","sans":{"__proto__":[]}}`,
  ),
);

describe("fuzz", () => {
  beforeAll(async () => {
    server = await startServer({
      root: inject("e2eRoot"),
      name: "fuzz",
      secrets: { GLOBAL_API_KEYS: JSON.stringify([legacy.entry]) },
    });
    token = mintToken(server.secrets.API_TOKEN_SECRET, { accounts: [ACCOUNT], zones: [ZONE] });
    for (const kind of ["accounts", "zones"] as const) {
      const reply = await call<CsrRecord>(server.origin, "POST", basePath(kind), { token, json: csrBody() });
      expect(reply.status, reply.text).toBe(201);
      known[kind].push(reply.body!.result.id);
    }
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("bodies: any create body gets 201 or a documented 4xx, and only a 201 stores anything", async () => {
    await fc.assert(
      fc.asyncProperty(rawBody, fc.constantFrom<Kind>("accounts", "zones"), async (body, kind) => {
        const reply = await observe(
          `POST body ${typeof body === "string" ? body.slice(0, 120) : `bytes(${body.length})`}`,
          () => call(server.origin, "POST", basePath(kind), { token, raw: body, headers: { "content-type": "application/json" } }),
          kind,
        );
        expect([201, 400, 413]).toContain(reply.status);
        if (reply.status === 413) expect(reply.body!.errors.map((e) => e.code)).toEqual([1433]);
        if (reply.status === 400) for (const e of reply.body!.errors) expect(BODY_CODES.has(e.code), `code ${e.code}`).toBe(true);
        if (reply.status === 201) {
          const record = reply.body!.result as CsrRecord;
          expect(new Set(record.sans).size).toBe(record.sans.length);
          expect(record.sans.length).toBeGreaterThan(0);
          expect(record.sans.length).toBeLessThanOrEqual(150);
        }
      }),
      params,
    );
  });

  it("lone surrogates (text that is not Unicode) in any field are refused with a 400, never a 500", async () => {
    const fields = ["common_name", "state", "locality", "organization", "organizational_unit", "name", "description"];
    const failures: string[] = [];
    for (const name of fields) {
      for (const bad of ["\uD800", "x\uDFFFy", "\uDBFF\uDBFF"]) {
        const body = csrBody({ [name]: `${name === "common_name" ? "app" : "Org"} ${bad}` });
        const before = await counts();
        const reply = await call(server.origin, "POST", basePath("zones"), { token, json: body });
        const codes = reply.body?.errors.map((e) => e.code) ?? [];
        const after = await counts();
        const stored = after.zones !== before.zones ? `, stored (${before.zones} -> ${after.zones})` : "";
        if (reply.status !== 400 || !codes.every((c) => BODY_CODES.has(c)) || reply.body?.result !== null || stored) {
          failures.push(`${name}=${JSON.stringify(bad)} -> ${reply.status} ${JSON.stringify(codes)}${stored}`);
        }
        if (reply.status === 201) created.push(reply.body!.result as CsrRecord);
      }
    }
    // One list of every case, so a fix can be checked field by field.
    expect(failures).toEqual([]);
  });

  it("paths and methods: unknown routes, malformed ids and wrong methods are documented 4xx", async () => {
    const kindSegment = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom("accounts", "zones") },
      fc.constantFrom("account", "Zones", "users", "", "%61ccounts", "accounts%2F"),
    );
    const idSegment = fc.oneof(
      { weight: 4, arbitrary: fc.constant("<scope>") },
      fc.constantFrom("", "%", "%ZZ", "%00", "..", ".", "a".repeat(33), "a b", "ü", "%F0%9F%92%A5", "a%2Fb", "-", "_", "*"),
      fc.string({ unit: "grapheme", maxLength: 40 }).map(encodeURIComponent),
      fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/),
    );
    const resource = fc.constantFrom("custom_csrs", "custom_csrs", "custom_csrs", "custom_csr", "custom_certificates", "CUSTOM_CSRS", "");
    const csrId = fc.option(
      fc.oneof(
        fc.constant("<known>"),
        fc.uuid(),
        fc.uuid().map((u) => u.toUpperCase()),
        fc.constantFrom("", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "%", "%ZZ", "x".repeat(37), "7b163417-1d2b-4c84-a38a-2fb7a0cd775"),
        fc.string({ unit: "grapheme", maxLength: 50 }).map(encodeURIComponent),
      ),
      { nil: undefined },
    );
    const tail = fc.constantFrom("", "", "", "/", "/extra", "//");
    const prefix = fc.constantFrom("/client/v4", "/client/v4", "/client/v4", "/api/v4", "/client/v3", "", "/admin/v1");
    const method = fc.constantFrom("GET", "GET", "POST", "POST", "DELETE", "PUT", "PATCH", "OPTIONS");

    await fc.assert(
      fc.asyncProperty(
        fc.record({ prefix, kindSegment, idSegment, resource, csrId, tail, method, kind: fc.constantFrom<Kind>("accounts", "zones") }),
        async (p) => {
          const scopeIdPart = p.idSegment === "<scope>" ? SCOPES[p.kind] : p.idSegment;
          const kindPart = p.idSegment === "<scope>" ? p.kind : p.kindSegment;
          const idPart = p.csrId === "<known>" ? (known[p.kind][0] ?? randomUUID()) : p.csrId;
          const path = `${p.prefix}/${kindPart}/${scopeIdPart}/${p.resource}${idPart === undefined ? "" : `/${idPart}`}${p.tail}`;
          const withBody = p.method === "POST" || p.method === "PUT" || p.method === "PATCH";
          // Only a request naming one of the fuzzed scopes may change it.
          const target = kindPart === p.kind && scopeIdPart === SCOPES[p.kind] ? p.kind : undefined;
          await observe(
            `${p.method} ${path}`,
            () => call(server.origin, p.method, path, { token, ...(withBody ? { json: csrBody() } : {}) }),
            target,
          );
        },
      ),
      params,
    );
  });

  it("query strings: list parameters are validated exactly as documented, never clamped", async () => {
    const name = fc.constantFrom("page", "per_page", "order", "direction", "page", "per_page", "PAGE", "foo", "page[]", "per_page ", "");
    const value = fc.oneof(
      fc.integer({ min: -5, max: 120 }).map(String),
      fc.constantFrom("", "1.0", "1e1", "0x10", "+5", " 5", "5 ", "05", "０", "NaN", "Infinity", "99999999999999999999", "100000000", "100000001"),
      fc.constantFrom("name", "account_tag", "created_at", "asc", "desc", "ASC", "id", "created_at;drop table csrs"),
      fc.string({ unit: "grapheme", maxLength: 20 }),
    );
    const query = fc.oneof(
      { weight: 6, arbitrary: fc.array(fc.tuple(name, value), { maxLength: 5 }).map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")) },
      fc.constantFrom("", "&&", "page", "page=%", "page=%ZZ", "=", "per_page=5&per_page=6", "page=1&page=1", "page=2+1", "order=name&direction=desc"),
    );

    await fc.assert(
      fc.asyncProperty(query, fc.constantFrom<Kind>("accounts", "zones"), async (q, kind) => {
        const reply = await observe(`GET ?${q}`, () => call<CsrRecord[]>(server.origin, "GET", `${basePath(kind)}?${q}`, { token }));
        const expected = listModel(new URLSearchParams(q), kind);
        if (expected === null) {
          expect({ status: reply.status, codes: reply.body!.errors.map((e) => e.code) }, `?${q}`).toEqual({ status: 400, codes: [1435] });
          return;
        }
        expect(reply.status, `?${q}: ${reply.text.slice(0, 200)}`).toBe(200);
        const info = reply.body!.result_info!;
        const rows = reply.body!.result as CsrRecord[];
        expect(info.page).toBe(expected.page);
        expect(info.per_page).toBe(expected.perPage);
        expect(info.count).toBe(rows.length);
        expect(info.total_pages).toBe(Math.ceil(info.total_count / info.per_page));
        const first = (expected.page - 1) * expected.perPage;
        expect(rows.length).toBe(Math.max(0, Math.min(expected.perPage, info.total_count - first)));
      }),
      params,
    );
  });

  it("headers and tokens: every broken credential is refused with an auth code and stores nothing", async () => {
    await fc.assert(
      fc.asyncProperty(credentialCase(), fc.constantFrom<Kind>("accounts", "zones"), noise, async (c, kind, extra) => {
        const headers = { ...extra, ...c.headers };
        const reply = await observe(
          `POST with ${c.label}`,
          () => call(server.origin, "POST", basePath(kind), { json: csrBody(), headers }),
          kind,
        );
        if (c.valid === true) {
          expect(reply.status, `${c.label}: ${reply.text.slice(0, 200)}`).toBe(201);
        } else if (c.valid === false) {
          expect([400, 401, 403], `${c.label}: ${reply.text.slice(0, 200)}`).toContain(reply.status);
          const codes = reply.body!.errors.map((e) => e.code);
          for (const code of codes) expect(c.codes ?? AUTH_CODES, `${c.label}: code ${code}`).toContain(code);
        }
        // The server's request id is its own, whatever the client sent.
        if (extra["x-request-id"]) expect(reply.headers.get("x-request-id")).not.toBe(extra["x-request-id"]);
      }),
      params,
    );
  });

  it("every CSR the fuzzers created verifies in OpenSSL and Python with exactly the stored fields", async () => {
    expect(created.length).toBeGreaterThan(0);
    console.log(`fuzz: ${created.length} CSRs created, all checked by OpenSSL and Python`);
    await expectCsrsVerified(created);
  });
  // Under wrangler dev 4.124 the server could exit when a Worker answers
  // before reading a request body to its end (cloudflare/workers-sdk#15203,
  // #15709), and the service's 64 KiB cap does exactly that. npm start
  // serves with workerd directly: the server must stay up.
  it("a body streamed without Content-Length is capped at 64 KiB: 413 (1433), nothing stored", async () => {
    const before = await counts();
    const chunk = new TextEncoder().encode(" ".repeat(16 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 8) return controller.close();
        sent++;
        controller.enqueue(chunk);
      },
    });
    const response = await fetch(`${server.origin}${basePath("zones")}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: stream,
      duplex: "half",
    } as RequestInit & { duplex: "half" });
    const text = await response.text();
    const reply: Reply = { status: response.status, headers: response.headers, text, body: JSON.parse(text) as Reply["body"] };
    expectEnvelope(reply, "POST streamed 128 KiB");
    expect({ status: reply.status, codes: reply.body!.errors.map((e) => e.code) }).toEqual({ status: 413, codes: [1433] });

    // Under wrangler dev's proxy the server could die here (workers-sdk#15203);
    // workerd served directly must not.
    expect(await alive()).toBe(true);
    expect(await counts()).toEqual(before);
  });
});

/** What docs/api.md says a list query should do: null for a 400 (1435). */
function listModel(q: URLSearchParams, kind: Kind): { page: number; perPage: number } | null {
  for (const name of ["page", "per_page", "order", "direction"]) if (q.getAll(name).length > 1) return null;
  const int = (raw: string, min: number, max: number): number | null => {
    if (!/^\d+$/.test(raw)) return null;
    const n = Number(raw);
    return n >= min && n <= max ? n : null;
  };
  const page = q.has("page") ? int(q.get("page")!, 1, 100_000_000) : 1;
  const perPage = q.has("per_page") ? int(q.get("per_page")!, 5, 50) : kind === "accounts" ? 50 : 20;
  if (page === null || perPage === null) return null;
  if (q.has("order") && !["name", "account_tag", "created_at"].includes(q.get("order")!)) return null;
  if (q.has("direction") && !["asc", "desc"].includes(q.get("direction")!)) return null;
  return { page, perPage };
}

// Header values fetch can send: bytes 0x20–0xFF without DEL (no CR, LF, NUL).
const latin1 = fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x7f).map((c) => String.fromCharCode(c)), maxLength: 60 });

/** Unrelated headers that must not change the outcome. */
const noise = fc.record(
  {
    "content-type": fc.constantFrom("application/json", "text/plain", "application/x-www-form-urlencoded", "", "application/json; charset=latin1"),
    accept: fc.constantFrom("*/*", "text/html", "application/xml"),
    "x-request-id": fc.constantFrom("spoofed-request-id", "00000000-0000-4000-8000-000000000000"),
    "x-forwarded-for": fc.constantFrom("203.0.113.9", "::1"),
    "cf-connecting-ip": fc.constantFrom("198.51.100.7"),
    "x-custom": latin1,
  },
  { requiredKeys: [] },
);

interface CredentialCase {
  label: string;
  headers: Record<string, string>;
  /** true: must succeed; false: must be refused; null: either, but consistently stored. */
  valid: boolean | null;
  codes?: Set<number>;
}

const now = (): number => Math.floor(Date.now() / 1000);

/** Credentials of every broken shape (and a few good ones as controls). */
function credentialCase(): fc.Arbitrary<CredentialCase> {
  const secret = (): string => server.secrets.API_TOKEN_SECRET;
  const claims = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
    jti: randomUUID(),
    iat: now(),
    exp: now() + 3600,
    policies: policiesFor({ accounts: [ACCOUNT], zones: [ZONE] }),
    ...over,
  });
  const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
  const good = (): string => signHs256(secret(), { alg: "HS256", typ: "JWT" }, claims());
  const codes = (...list: number[]): Set<number> => new Set(list);

  const claimMutations: Array<[string, () => Record<string, unknown>, Set<number>]> = [
    ["no exp", () => { const c = claims(); delete c.exp; return c; }, codes(1005)],
    ["expired", () => claims({ exp: now() - 3600 }), codes(1003)],
    ["exp as string", () => claims({ exp: String(now() + 3600) }), codes(1004)],
    ["nbf in the future", () => claims({ nbf: now() + 3600 }), codes(1003)],
    ["iat in the future", () => claims({ iat: now() + 3600 }), codes(1003)],
    ["no policies", () => { const c = claims(); delete c.policies; return c; }, codes(1005)],
    ["policies an object", () => claims({ policies: { effect: "allow" } }), codes(1004)],
    ["policies a string", () => claims({ policies: "*" }), codes(1004)],
    ["policy not an object", () => claims({ policies: [7] }), codes(1004)],
    ["effect missing", () => claims({ policies: [{ resources: { [`com.cloudflare.api.account.zone.${ZONE}`]: "*" }, permission_groups: [{ name: "SSL and Certificates Write" }] }] }), codes(1004)],
    ["resources an array", () => claims({ policies: [{ effect: "allow", resources: [ZONE], permission_groups: [{ name: "SSL and Certificates Write" }] }] }), codes(1004)],
    ["group without name", () => claims({ policies: [{ effect: "allow", resources: { [`com.cloudflare.api.account.zone.${ZONE}`]: "*" }, permission_groups: [{}] }] }), codes(1004)],
    ["jti a number", () => claims({ jti: 7 }), codes(1004)],
    ["other scopes only", () => claims({ policies: policiesFor({ accounts: ["someone-else"], zones: ["another-zone"] }) }), codes(10000)],
    ["read-only", () => claims({ policies: policiesFor({ accounts: [ACCOUNT], zones: [ZONE], readOnly: true }) }), codes(10000)],
    ["unknown group", () => claims({ policies: [{ effect: "allow", resources: { [`com.cloudflare.api.account.zone.${ZONE}`]: "*", [`com.cloudflare.api.account.${ACCOUNT}`]: "*" }, permission_groups: [{ name: "Zone Read" }] }] }), codes(10000)],
    ["resource value not *", () => claims({ policies: [{ effect: "allow", resources: { [`com.cloudflare.api.account.zone.${ZONE}`]: "read", [`com.cloudflare.api.account.${ACCOUNT}`]: {} }, permission_groups: [{ name: "SSL and Certificates Write" }] }] }), codes(10000)],
    ["denied", () => claims({ policies: [...policiesFor({ accounts: [ACCOUNT], zones: [ZONE] }), { effect: "deny", resources: { [`com.cloudflare.api.account.zone.${ZONE}`]: "*", [`com.cloudflare.api.account.${ACCOUNT}`]: "*" }, permission_groups: [{ name: "SSL and Certificates Write" }] }] }), codes(10000)],
  ];
  const headerMutations: Array<[string, unknown]> = [
    ["alg none", { alg: "none", typ: "JWT" }],
    ["alg HS512", { alg: "HS512", typ: "JWT" }],
    ["alg RS256", { alg: "RS256" }],
    ["alg ES256 without kid", { alg: "ES256" }],
    ["HS256 with kid", { alg: "HS256", kid: "k1" }],
    ["typ JWS", { alg: "HS256", typ: "JWS" }],
    ["typ a number", { alg: "HS256", typ: 1 }],
    ["alg lower-case", { alg: "hs256" }],
    ["header an array", ["HS256"]],
    ["header a string", "HS256"],
  ];

  return fc.oneof(
    fc.constant(null).map((): CredentialCase => ({ label: "a valid token", headers: bearer(good()), valid: true })),
    fc.constant(null).map((): CredentialCase => ({ label: "a valid global API key", headers: { "x-auth-email": legacy.email, "x-auth-key": legacy.key }, valid: true })),
    fc.constant(null).map((): CredentialCase => ({ label: "no credentials", headers: {}, valid: false, codes: codes(1402) })),
    fc.constantFrom(...claimMutations).map(([label, make, c]): CredentialCase => ({ label, headers: bearer(signHs256(secret(), { alg: "HS256", typ: "JWT" }, make())), valid: false, codes: c })),
    fc.constantFrom(...headerMutations).map(([label, header]): CredentialCase => ({ label, headers: bearer(signHs256(secret(), header, claims())), valid: false, codes: codes(1002) })),
    fc.constant(null).map((): CredentialCase => ({ label: "another secret", headers: bearer(signHs256("not-the-secret", { alg: "HS256", typ: "JWT" }, claims())), valid: false, codes: codes(1003) })),
    fc.nat({ max: 30 }).map((i): CredentialCase => {
      // Change one signature character in the middle: the bytes must differ.
      const [h, p, s] = good().split(".") as [string, string, string];
      const at = 5 + (i % (s.length - 10));
      const swapped = s[at] === "A" ? "B" : "A";
      return { label: "tampered signature", headers: bearer(`${h}.${p}.${s.slice(0, at)}${swapped}${s.slice(at + 1)}`), valid: false, codes: codes(1003) };
    }),
    fc.constant(null).map((): CredentialCase => {
      const [h, , s] = good().split(".") as [string, string, string];
      const other = Buffer.from(JSON.stringify(claims({ policies: policiesFor({ accounts: ["x"], zones: ["y"] }) }))).toString("base64url");
      return { label: "payload swapped under a valid signature", headers: bearer(`${h}.${other}.${s}`), valid: false, codes: codes(1003) };
    }),
    fc.array(fc.oneof(fc.base64String({ maxLength: 40 }), fc.string({ maxLength: 20 }), fc.stringMatching(/^[A-Za-z0-9_-]{0,60}$/)), { minLength: 1, maxLength: 5 })
      .map((parts): CredentialCase => ({ label: `garbage token ${parts.join(".").slice(0, 40)}`, headers: bearer(parts.join(".").replace(/\s/g, "") || "x"), valid: false, codes: codes(1000, 1001, 1002, 1003) })),
    fc.constantFrom("Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "Bearer a b", "BearerX abc", "Bearer\tx\ty", "", "Bearer ..", "Bearer a.b.c")
            // An empty value may not survive the trip (1402 then, as with no header).
      .map((value): CredentialCase => ({ label: `authorization ${JSON.stringify(value)}`, headers: { authorization: value }, valid: false, codes: codes(1000, 1001, 1002, ...(value.trim() ? [] : [1402])) })),
    latin1.map((value): CredentialCase => ({ label: `authorization latin1 ${JSON.stringify(value)}`, headers: { authorization: value }, valid: false, codes: codes(1000, 1001, 1002, 1003, ...(value.trim() ? [] : [1402])) })),
    fc.integer({ min: 1_000, max: 3_500 }).map((n): CredentialCase => ({ label: `huge token ${n}`, headers: bearer(`${"a".repeat(n)}.${"b".repeat(n)}.c`), valid: false, codes: codes(1001, 1002) })),
    fc.record({ email: fc.option(fc.oneof(fc.constant(legacy.email), latin1), { nil: undefined }), key: fc.option(fc.oneof(latin1, fc.constant(`${legacy.key}x`)), { nil: undefined }) })
      .filter((p) => p.email !== undefined || p.key !== undefined)
      .map((p): CredentialCase => {
        const headers: Record<string, string> = {};
        if (p.email !== undefined) headers["x-auth-email"] = p.email;
        if (p.key !== undefined) headers["x-auth-key"] = p.key;
        // fetch trims header values; a header that ends up empty is still sent.
        return { label: `legacy ${JSON.stringify(headers)}`, headers, valid: false, codes: codes(9103, 1402) };
      }),
    fc.constant(null).map((): CredentialCase => ({
      // Authorization wins over X-Auth-* (docs/api.md): a bad bearer with a good key is still refused.
      label: "bad bearer with a good global key",
      headers: { authorization: "Bearer x.y.z", "x-auth-email": legacy.email, "x-auth-key": legacy.key },
      valid: false,
      codes: codes(1001, 1002, 1003),
    })),
    fc.constant(null).map((): CredentialCase => ({ label: "lower-case bearer scheme", headers: { authorization: `bearer ${good()}` }, valid: null })),
  );
}
