import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OID } from "../src/pki/csr-builder";
import { parseCsr, verifyCsrSignature } from "./csr-parse";
import { adminCall, call, csrBody, expectError, scope, scopeId, tenantStub } from "./shared";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

describe("POST custom_csrs", () => {
  it("creates an rsa2048 CSR by default, with every field of the seeds, that verifies", async () => {
    const s = await scope("accounts");
    const reply = await s.create(csrBody({ organizational_unit: "Platform", name: "Customer one", description: "first" }));
    expect(reply.status).toBe(201);
    expect(reply.body.success).toBe(true);
    expect(reply.body.errors).toEqual([]);
    expect(reply.body.messages).toEqual([]);
    const r = reply.body.result;
    expect(Object.keys(r)).toEqual([
      "id", "created_at", "key_type", "account_tag", "common_name", "country", "csr", "description",
      "locality", "name", "organization", "organizational_unit", "sans", "state",
    ]);
    expect(r.id).toMatch(UUID);
    expect(r.created_at).toMatch(RFC3339_UTC);
    expect(Math.abs(Date.parse(r.created_at) - Date.now())).toBeLessThan(60_000);
    expect(r).toMatchObject({
      key_type: "rsa2048",
      account_tag: s.id,
      common_name: "app.customer-one.com",
      country: "US",
      state: "California",
      locality: "San Francisco",
      organization: "Customer One, Inc.",
      organizational_unit: "Platform",
      name: "Customer one",
      description: "first",
      sans: ["app.customer-one.com", "www.customer-one.com"],
    });

    const csr = parseCsr(r.csr);
    expect(csr.signatureOid).toBe("1.2.840.113549.1.1.11");
    expect(csr.subject.map((a) => [a.oid, a.value])).toEqual([
      [OID.country, "US"],
      [OID.state, "California"],
      [OID.locality, "San Francisco"],
      [OID.organization, "Customer One, Inc."],
      [OID.organizational_unit, "Platform"],
      [OID.common_name, "app.customer-one.com"],
    ]);
    expect(csr.sans).toEqual(r.sans);
    expect(await verifyCsrSignature(csr)).toBe(true);
    expect(JSON.stringify(reply.body)).not.toMatch(/PRIVATE KEY|private_key|wrapped/i);
  });

  it("creates a p256v1 CSR in a zone, with no account_tag", async () => {
    const s = await scope("zones");
    const reply = await s.create(csrBody({ key_type: "p256v1" }));
    expect(reply.status).toBe(201);
    expect(reply.body.result.key_type).toBe("p256v1");
    expect(reply.body.result).not.toHaveProperty("account_tag");
    const csr = parseCsr(reply.body.result.csr);
    expect(csr.signatureOid).toBe("1.2.840.10045.4.3.2");
    expect(await verifyCsrSignature(csr)).toBe(true);
  });

  it("keeps SAN order, drops exact duplicates, and notes a common name missing from the SANs", async () => {
    const s = await scope();
    const reply = await s.create(
      csrBody({ common_name: "other.customer-one.com", sans: ["b.customer-one.com", "a.customer-one.com", "b.customer-one.com"] }),
    );
    expect(reply.status).toBe(201);
    expect(reply.body.result.sans).toEqual(["b.customer-one.com", "a.customer-one.com"]);
    expect(parseCsr(reply.body.result.csr).sans).toEqual(["b.customer-one.com", "a.customer-one.com"]);
    expect(reply.body.messages.map((m) => m.code)).toEqual([1460]);
  });

  it("answers under /api/v4 as well as /client/v4", async () => {
    const s = await scope();
    const created = await call<{ id: string }>("POST", `/api/v4/zones/${s.id}/custom_csrs`, { token: s.token, body: csrBody({ key_type: "p256v1" }) });
    expect(created.status).toBe(201);
    const got = await call("GET", `/api/v4/zones/${s.id}/custom_csrs/${created.body.result.id}`, { token: s.token });
    expect(got.status).toBe(200);
  });
});

describe("GET and DELETE custom_csrs/{id}", () => {
  it("gets what was created, byte for byte", async () => {
    const s = await scope();
    const created = await s.create(csrBody({ key_type: "p256v1" }));
    const got = await s.get(created.body.result.id);
    expect(got.status).toBe(200);
    expect(got.body.result).toEqual(created.body.result);
    // Ids are case-insensitive UUIDs.
    expect((await s.get(created.body.result.id.toUpperCase())).body.result).toEqual(created.body.result);
  });

  it("1418 for a malformed id, 1419 for an unknown one", async () => {
    const s = await scope();
    expectError(await s.get("not-a-uuid"), 400, 1418);
    expectError(await s.get(`${crypto.randomUUID()}0`), 400, 1418);
    expectError(await s.remove("%E0%A4%A"), 400, 1418);
    expectError(await s.get(crypto.randomUUID()), 404, 1419);
    expectError(await s.remove(crypto.randomUUID()), 404, 1419);
  });

  it("deletes the row and the wrapped key together", async () => {
    const s = await scope();
    const { id } = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const stub = tenantStub(s.kind, s.id);
    const before = await runInDurableObject(stub, (_, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM wrapped_keys WHERE seq = (SELECT seq FROM csrs WHERE id = ?)", id).one().n,
    );
    expect(before).toBe(1);
    const deleted = await s.remove(id);
    expect(deleted.status).toBe(200);
    expect(deleted.body.result).toEqual({ id });
    const after = await runInDurableObject(stub, (_, state) => ({
      keys: state.storage.sql.exec("SELECT count(*) AS n FROM wrapped_keys").one().n,
      rows: state.storage.sql.exec("SELECT count(*) AS n FROM csrs").one().n,
      counter: state.storage.sql.exec("SELECT value FROM counters WHERE name = 'csrs'").one().value,
    }));
    expect(after).toEqual({ keys: 0, rows: 0, counter: 0 });
    expectError(await s.get(id), 404, 1419);
    expectError(await s.remove(id), 404, 1419);
  });
});

describe("tenancy and key custody", () => {
  it("never shows one scope's CSRs to another, even with the same id", async () => {
    const id = scopeId();
    const zone = await scope("zones", id);
    const account = await scope("accounts", id);
    const other = await scope("zones");
    const { id: csrId } = (await zone.create(csrBody({ key_type: "p256v1" }))).body.result;
    for (const s of [account, other]) {
      expectError(await s.get(csrId), 404, 1419);
      expect((await s.list()).body.result).toEqual([]);
      expectError(await s.remove(csrId), 404, 1419);
    }
    expect((await zone.get(csrId)).status).toBe(200);
  });

  it("stores no plaintext key, and a wrap moved to another row or scope does not unwrap", async () => {
    const a = await scope();
    const b = await scope();
    const first = (await a.create(csrBody({ key_type: "p256v1" }))).body.result.id;
    const second = (await a.create(csrBody({ key_type: "p256v1" }))).body.result.id;
    const inB = (await b.create(csrBody({ key_type: "p256v1" }))).body.result.id;
    const stubA = tenantStub(a.kind, a.id);
    const stubB = tenantStub(b.kind, b.id);

    for (const [stub, s, id] of [[stubA, a, first], [stubA, a, second], [stubB, b, inB]] as const) {
      const check = await runInDurableObject(stub, (store) => store.verifyCsrKey(adminCall(s.kind, s.id), id));
      expect(check).toMatchObject({ ok: true, value: { id, ok: true } });
    }

    // Every stored column is metadata or ciphertext: no PKCS#8 DER (30 81/82 .. 02 01 00) and no PEM key.
    const [csrRows, rows] = await runInDurableObject(stubA, (_, state) =>
      ["csrs", "wrapped_keys"].map((table) => state.storage.sql.exec(`SELECT * FROM ${table}`).toArray()),
    );
    for (const row of [...csrRows!, ...rows!]) {
      for (const value of Object.values(row)) expect(String(value)).not.toMatch(/PRIVATE KEY/);
    }
    expect(rows).toHaveLength(2);
    for (const row of rows!) {
      const wrapped = new Uint8Array(row.wrapped as ArrayBuffer);
      expect(wrapped[0] === 0x30 && wrapped[2] === 0x02 && wrapped[3] === 0x01 && wrapped[4] === 0x00).toBe(false);
      expect(new Uint8Array(row.iv as ArrayBuffer)).toHaveLength(12);
    }

    // Swap the two wraps within scope A: both now fail their self-check.
    await runInDurableObject(stubA, (_, state) => {
      const one = state.storage.sql.exec("SELECT iv, wrapped FROM wrapped_keys WHERE seq = (SELECT seq FROM csrs WHERE id = ?)", first).one();
      const two = state.storage.sql.exec("SELECT iv, wrapped FROM wrapped_keys WHERE seq = (SELECT seq FROM csrs WHERE id = ?)", second).one();
      state.storage.sql.exec("UPDATE wrapped_keys SET iv = ?, wrapped = ? WHERE seq = (SELECT seq FROM csrs WHERE id = ?)", two.iv, two.wrapped, first);
      state.storage.sql.exec("UPDATE wrapped_keys SET iv = ?, wrapped = ? WHERE seq = (SELECT seq FROM csrs WHERE id = ?)", one.iv, one.wrapped, second);
    });
    for (const id of [first, second]) {
      const check = await runInDurableObject(stubA, (store) => store.verifyCsrKey(adminCall(a.kind, a.id), id));
      expect(check).toMatchObject({ ok: true, value: { id, ok: false } });
    }

    // Copy B's wrap into B under A's CSR id: the additional data no longer matches.
    const wrapB = await runInDurableObject(stubB, (_, state) =>
      state.storage.sql.exec("SELECT iv, wrapped FROM wrapped_keys WHERE seq = (SELECT seq FROM csrs WHERE id = ?)", inB).one(),
    );
    await runInDurableObject(stubA, (_, state) => {
      state.storage.sql.exec("UPDATE wrapped_keys SET iv = ?, wrapped = ? WHERE seq = (SELECT seq FROM csrs WHERE id = ?)", wrapB.iv, wrapB.wrapped, first);
    });
    const moved = await runInDurableObject(stubA, (store) => store.verifyCsrKey(adminCall(a.kind, a.id), first));
    expect(moved).toMatchObject({ ok: true, value: { ok: false } });
  });
});

describe("routing and envelopes", () => {
  it("404 for unknown routes and 405 for a wrong method, as envelopes", async () => {
    const s = await scope();
    expectError(await call("GET", "/client/v4/nothing-here", { token: s.token }), 404, 7000);
    expectError(await call("GET", `/client/v4/zones/${s.id}/dns_records`, { token: s.token }), 404, 7000);
    expectError(await call("PUT", `${s.base}`, { token: s.token, body: {} }), 405, 7001);
    expectError(await call("PATCH", `${s.base}/${crypto.randomUUID()}`, { token: s.token, body: {} }), 405, 7001);
  });

  it("1401 for an empty scope id, 1434 for an over-long or malformed one, before credentials", async () => {
    expectError(await call("GET", "/client/v4/zones//custom_csrs"), 400, 1401);
    expectError(await call("GET", `/client/v4/zones/${"a".repeat(33)}/custom_csrs`), 400, 1434);
    expectError(await call("GET", "/client/v4/accounts/a%20b/custom_csrs"), 400, 1434);
    expectError(await call("GET", "/client/v4/accounts/%ZZ/custom_csrs"), 400, 1434);
  });

  it("sends security headers and a request id on every response", async () => {
    const s = await scope();
    for (const reply of [await s.list(), await call("GET", "/nowhere")]) {
      expect(reply.headers.get("x-request-id")).toMatch(UUID);
      expect(reply.headers.get("x-content-type-options")).toBe("nosniff");
      expect(reply.headers.get("cache-control")).toBe("no-store");
    }
  });
});
