import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, csrBody, expectError, scope, tenantStub } from "./shared";

type Case = [name: string, body: unknown, status: number, code: number, pointer?: string];

const omit = (field: string) => {
  const body = csrBody();
  delete body[field];
  return body;
};

const cases: Case[] = [
  ["array body", [csrBody()], 400, 1400],
  ["string body", "hello", 400, 1400],
  ["null body", null, 400, 1400],
  ["missing country", omit("country"), 400, 1405, "/country"],
  ["blank country", csrBody({ country: "  " }), 400, 1405, "/country"],
  ["missing state", omit("state"), 400, 1406, "/state"],
  ["missing locality", omit("locality"), 400, 1407, "/locality"],
  ["missing organization", omit("organization"), 400, 1408, "/organization"],
  ["missing common name", omit("common_name"), 400, 1409, "/common_name"],
  ["null common name", csrBody({ common_name: null }), 400, 1409, "/common_name"],
  ["missing state outranks a bad country type", { ...omit("state"), country: "US", organization: 7 }, 400, 1406, "/state"],
  ["common name of 65 characters", csrBody({ common_name: `${"a".repeat(61)}.com` }), 400, 1410, "/common_name"],
  ["no sans", omit("sans"), 400, 1411, "/sans"],
  ["empty sans", csrBody({ sans: [] }), 400, 1411, "/sans"],
  ["SAN with a space", csrBody({ sans: ["ok.customer-one.com", "bad name.com"] }), 400, 1412, "/sans/1"],
  ["SAN that is an IPv4 address", csrBody({ sans: ["10.1.2.3"] }), 400, 1412, "/sans/0"],
  ["SAN that is an IPv6 address", csrBody({ sans: ["2001:db8::1"] }), 400, 1412, "/sans/0"],
  ["SAN beginning with -", csrBody({ sans: ["-a.customer-one.com"] }), 400, 1412, "/sans/0"],
  ["SAN of 256 characters", csrBody({ sans: [`${"a.".repeat(126)}com`.padStart(256, "b")] }), 400, 1412, "/sans/0"],
  ["non-ASCII SAN", csrBody({ sans: ["bücher.de"] }), 400, 1413, "/sans/0"],
  ["reserved TLD", csrBody({ sans: ["shop.test"] }), 400, 1414, "/sans/0"],
  ["localhost", csrBody({ sans: ["localhost"] }), 400, 1414, "/sans/0"],
  ["public suffix", csrBody({ sans: ["co.uk"] }), 400, 1415, "/sans/0"],
  ["private public suffix", csrBody({ sans: ["github.io"] }), 400, 1415, "/sans/0"],
  ["example.com", csrBody({ sans: ["www.example.com"] }), 400, 1416, "/sans/0"],
  ["example.org", csrBody({ sans: ["example.org"] }), 400, 1416, "/sans/0"],
  ["unknown key type", csrBody({ key_type: "rsa4096" }), 400, 1417, "/key_type"],
  ["key type of the wrong type", csrBody({ key_type: 2048 }), 400, 1417, "/key_type"],
  ["country as a number", csrBody({ country: 1 }), 400, 1430, "/country"],
  ["state as an object", csrBody({ state: { a: 1 } }), 400, 1430, "/state"],
  ["sans as a string", csrBody({ sans: "a.customer-one.com" }), 400, 1430, "/sans"],
  ["a SAN as a number", csrBody({ sans: [42] }), 400, 1430, "/sans/0"],
  ["description as a number", csrBody({ description: 1 }), 400, 1430, "/description"],
  ["three-letter country", csrBody({ country: "USA" }), 400, 1431, "/country"],
  ["unassigned country", csrBody({ country: "XX" }), 400, 1431, "/country"],
  ["151 SANs", csrBody({ sans: Array.from({ length: 151 }, (_, i) => `h${i}.customer-one.com`) }), 400, 1432, "/sans"],
  ["organization of 65 characters", csrBody({ organization: "o".repeat(65) }), 400, 1436, "/organization"],
  ["description of 1025 characters", csrBody({ description: "d".repeat(1025) }), 400, 1436, "/description"],
  ["control character in locality", csrBody({ locality: "San\nFrancisco" }), 400, 1437, "/locality"],
  ["lone high surrogate in organization", csrBody({ organization: "Acme \ud800" }), 400, 1437, "/organization"],
  ["lone low surrogate in description", csrBody({ description: "x\udfffy" }), 400, 1437, "/description"],
  ["organization of only a zero-width space", csrBody({ organization: "\u200b" }), 400, 1408, "/organization"],
];

describe("create validation (seeds' table; ours where the seeds are silent)", () => {
  it.each(cases)("%s → %i %i", async (_name, body, status, code, pointer) => {
    const s = await scope();
    const reply = await s.create(body);
    expectError(reply, status, code);
    if (pointer) expect(reply.body.errors[0]!.source).toEqual({ pointer });
  });

  it("1400 for a body that is not JSON, not UTF-8, or absent", async () => {
    const s = await scope();
    for (const rawBody of ["{", "{\"a\":", "\u0000", new Uint8Array([0x7b, 0xff, 0x7d])]) {
      expectError(await call("POST", s.base, { token: s.token, rawBody }), 400, 1400);
    }
    expectError(await call("POST", s.base, { token: s.token }), 400, 1400);
  });

  it("413 with 1433 for a body over 64 KiB, declared or streamed", async () => {
    const s = await scope();
    const big = JSON.stringify(csrBody({ description: "x".repeat(70 * 1024) }));
    expectError(await call("POST", s.base, { token: s.token, rawBody: big }), 413, 1433);
    const stream = new Blob([big]).stream();
    expectError(await call("POST", s.base, { token: s.token, rawBody: stream }), 413, 1433);
  });

  it("1400 for JSON nested far deeper than any real body", async () => {
    const s = await scope();
    const deep = `${"[".repeat(30_000)}${"]".repeat(30_000)}`;
    const reply = await call("POST", s.base, { token: s.token, rawBody: deep });
    expectError(reply, 400, 1400);
  });

  it("accepts 150 SANs, a lower-case country, trims values, and ignores unknown fields", async () => {
    const s = await scope();
    const sans = Array.from({ length: 150 }, (_, i) => `h${i}.customer-one.com`);
    const reply = await s.create(csrBody({ key_type: "p256v1", sans, country: "gb", state: "  Kent ", unknown: true, organization: "Emoji 😀 Co" }));
    expect(reply.status).toBe(201);
    expect(reply.body.result.sans).toHaveLength(150);
    expect(reply.body.result.country).toBe("GB");
    expect(reply.body.result.state).toBe("Kent");
    expect(reply.body.result.organization).toBe("Emoji 😀 Co");
  });

  it("writes nothing for a refused request: not even a schema in a scope that had none", async () => {
    const s = await scope();
    for (const [, body] of cases) await s.create(body);
    const tables = await runInDurableObject(tenantStub(s.kind, s.id), (_, state) => state.storage.sql.exec("SELECT name FROM sqlite_master").toArray());
    expect(tables).toEqual([]);
    // In a scope with data, a refused request adds no row either.
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    for (const [, body] of cases) await s.create(body);
    const stored = await runInDurableObject(tenantStub(s.kind, s.id), (_, state) => ({
      rows: state.storage.sql.exec("SELECT count(*) AS n FROM csrs").one().n,
      keys: state.storage.sql.exec("SELECT count(*) AS n FROM wrapped_keys").one().n,
      entries: state.storage.sql.exec("SELECT count(*) AS n FROM audit_log").one().n,
    }));
    expect(stored).toEqual({ rows: 1, keys: 1, entries: 1 });
  });
});
