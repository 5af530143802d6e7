import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { calculateJwkThumbprint } from "jose";
import { EDGE_REGISTRY_NAME, type EdgeRecord, EdgeRegistry } from "../src/edges/edge-registry";
import { EDGE_SCHEMA_VERSION } from "../src/edges/schema";
import { admin, edgeId, edgeKeyPair, registerEdge } from "./edges";
import { call, expectError } from "./shared";
import { mintToken } from "./tokens";

const registry = () => env.EDGES.get(env.EDGES.idFromName(EDGE_REGISTRY_NAME));
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

describe("edge registry: PUT, GET, DELETE /admin/v1/edges/{edge_id}, GET /admin/v1/edges", () => {
  it("registers (201), replaces (200), reads, lists and revokes an edge", async () => {
    const id = edgeId("fra");
    const first = await edgeKeyPair("X25519");
    const created = await admin.put(id, { public_key: first.jwk, labels: { country: "de", region: "weur" } });
    expect(created.status).toBe(201);
    const { service_key, ...record } = created.body.result as EdgeRecord & { service_key: Record<string, string> };
    expect(record).toEqual({
      id,
      public_key: { kty: "OKP", crv: "X25519", x: first.jwk.x },
      thumbprint: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      labels: { country: "DE", region: "WEUR", highest_security: false },
      created_on: expect.stringMatching(RFC3339_UTC),
      modified_on: record.created_on,
    });
    // The service's own signing key, which the edge pins (edge sync --service-key): public, Ed25519.
    expect(service_key).toEqual({ kty: "OKP", crv: "Ed25519", x: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/), kid: expect.any(String), alg: "EdDSA", use: "sig" });
    expect(service_key.kid).toBe(await calculateJwkThumbprint({ kty: "OKP", crv: "Ed25519", x: service_key.x! }));
    expect((await admin.get(id)).body.result).toEqual({ ...record, service_key });

    const second = await edgeKeyPair("P-256");
    const replaced = await admin.put(id, { public_key: second.jwk, labels: { country: "FR", region: "EU", highest_security: true } });
    expect(replaced.status).toBe(200);
    expect(replaced.body.result).toMatchObject({
      id,
      public_key: { kty: "EC", crv: "P-256", x: second.jwk.x, y: second.jwk.y },
      labels: { country: "FR", region: "EU", highest_security: true },
      created_on: record.created_on,
    });
    expect(replaced.body.result.thumbprint).not.toBe(record.thumbprint);
    expect(Date.parse(replaced.body.result.modified_on)).toBeGreaterThanOrEqual(Date.parse(record.modified_on));

    const other = await registerEdge({ country: "US", region: "ENAM" });
    const listed = (await admin.list()).body.result;
    const ids = listed.map((e) => e.id);
    expect(ids).toEqual([...ids].sort());
    const { service_key: again, ...replacedRecord } = replaced.body.result as EdgeRecord & { service_key: unknown };
    expect(again).toEqual(service_key);
    expect(listed).toContainEqual(replacedRecord);
    expect(ids).toContain(other.id);

    expect(await admin.remove(id)).toMatchObject({ status: 200, body: { result: { id } } });
    expectError(await admin.get(id), 404, 1473);
    expectError(await admin.remove(id), 404, 1473);
    expect((await admin.list()).body.result.map((e) => e.id)).not.toContain(id);
  });

  it("is for the operator only: ADMIN_SECRET, never an API token", async () => {
    const id = edgeId();
    const { jwk } = await edgeKeyPair("X25519");
    const body = { public_key: jwk, labels: { country: "US", region: "WNAM" } };
    expectError(await call("PUT", `/admin/v1/edges/${id}`, { body }), 400, 1402);
    expectError(await call("GET", "/admin/v1/edges", { headers: { authorization: "Bearer wrong" } }), 403, 10000);
    const token = await mintToken({ zones: ["*"], accounts: ["*"] });
    expectError(await call("PUT", `/admin/v1/edges/${id}`, { token, body }), 403, 10000);
    expectError(await call("DELETE", `/admin/v1/edges/${id}`, { token }), 403, 10000);
    expectError(await call("POST", `/admin/v1/edges/${id}`, { token, body }), 405, 7001);
  });

  it("1470 for a malformed edge id, 1471 for a bad key (a private key is never stored or echoed), 1472 for bad labels", async () => {
    const { jwk, privateKey } = await edgeKeyPair("P-256");
    const privateJwk = (await crypto.subtle.exportKey("jwk", privateKey)) as JsonWebKey;
    const labels = { country: "US", region: "ENAM" };
    for (const bad of ["a%20b", "x".repeat(65), "a%2Fb", "%FF", "a:b", "%2E%2E%2E"]) {
      expectError(await admin.put(bad, { public_key: jwk, labels }), 400, 1470);
      expectError(await admin.get(bad), 400, 1470);
    }
    expect((await admin.put("A.b_c-9", { public_key: jwk, labels })).status).toBeLessThan(300);
    expect((await admin.remove("A.b_c-9")).status).toBe(200);

    const id = edgeId();
    const refused = await admin.put(id, { public_key: privateJwk, labels });
    expectError(refused, 400, 1471);
    expect(refused.body.errors[0]!.source).toEqual({ pointer: "/public_key" });
    expect(JSON.stringify(refused.body)).not.toContain(privateJwk.d!);
    expectError(await admin.put(id, { public_key: { ...jwk, crv: "P-384" }, labels }), 400, 1471);
    expectError(await admin.put(id, { labels }), 400, 1471);

    const cases: Array<[unknown, string]> = [
      [undefined, "/labels"],
      ["US", "/labels"],
      [{ region: "ENAM" }, "/labels/country"],
      [{ country: "XX", region: "ENAM" }, "/labels/country"],
      [{ country: "US" }, "/labels/region"],
      [{ country: "US", region: "NA" }, "/labels/region"],
      [{ country: "US", region: "ENAM", highest_security: "yes" }, "/labels/highest_security"],
      [{ country: "US", region: "ENAM", colo: "EWR" }, "/labels"],
    ];
    for (const [bad, pointer] of cases) {
      const reply = await admin.put(id, { public_key: jwk, labels: bad });
      expectError(reply, 400, 1472);
      expect(reply.body.errors[0]!.source).toEqual({ pointer });
    }
    expectError(await admin.put(id, [jwk]), 400, 1400);
    expectError(await call("PUT", `/admin/v1/edges/${id}`, { rawBody: "{", headers: { "content-type": "application/json", authorization: `Bearer ${env.ADMIN_SECRET}` } }), 400, 1400);
    expectError(await admin.get(id), 404, 1473);

    // Nothing of the refused private key reached storage; stored keys are public members only.
    await runInDurableObject(registry(), (_, state) => {
      expect(state.storage.sql.exec("SELECT version FROM schema_version").one().version).toBe(EDGE_SCHEMA_VERSION);
      for (const row of state.storage.sql.exec("SELECT * FROM edges").toArray()) {
        expect(String(row.public_key)).not.toContain(privateJwk.d!);
        expect(Object.keys(JSON.parse(String(row.public_key))).sort()).toEqual(
          JSON.parse(String(row.public_key)).kty === "EC" ? ["crv", "kty", "x", "y"] : ["crv", "kty", "x"],
        );
      }
    });
  });
});

describe("edge registry: hostile input (fast-check)", () => {
  it("any body is a registration or a documented 400 (1400, 1471, 1472), and a refused one stores nothing", async () => {
    const { jwk } = await edgeKeyPair("X25519");
    const json = fc.jsonValue({ maxDepth: 3 });
    const body = fc.oneof(
      json,
      fc.record({ public_key: fc.oneof(json, fc.constant(jwk), fc.dictionary(fc.constantFrom("kty", "crv", "x", "y", "d", "use", "alg", "kid"), json)), labels: json }),
      fc.record({ public_key: fc.constant(jwk), labels: fc.dictionary(fc.constantFrom("country", "region", "highest_security", "colo"), fc.oneof(json, fc.constantFrom("DE", "weur", "EU", true))) }),
    );
    const id = edgeId("fuzz");
    const codes = new Set<number>();
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const reply = await admin.put(id, b);
        if (reply.status === 201 || reply.status === 200) {
          expect(await admin.remove(id)).toMatchObject({ status: 200 });
          codes.add(reply.status);
          return;
        }
        expect(reply.status).toBe(400);
        const code = reply.body.errors[0]!.code;
        expect([1400, 1471, 1472]).toContain(code);
        codes.add(code);
        expectError(await admin.get(id), 404, 1473);
      }),
      { numRuns: 150 },
    );
    expect([...codes].sort()).toEqual(expect.arrayContaining([1400, 1471, 1472]));
  }, 120_000);
});

describe("registry rows are sealed (issue 19, item 9)", () => {
  it("an edge row changed in storage is refused for delivery (1477), listed as failing, and sealed again only by a new registration", async () => {
    const edge = await registerEdge({ country: "DE", region: "WEUR" });
    const attacker = await edgeKeyPair("X25519");
    await runInDurableObject(registry(), (_, state) => {
      // Someone with write access to the data directory puts their own public key in.
      state.storage.sql.exec("UPDATE edges SET public_key = ? WHERE id = ?", JSON.stringify({ kty: "OKP", crv: "X25519", x: attacker.jwk.x }), edge.id);
    });
    const token = await mintToken({ zones: ["any-zone"], edge: edge.id });
    expectError(await call("GET", "/client/v4/zones/any-zone/key_delivery/certificates", { token }), 500, 1477);
    expectError(await admin.get(edge.id), 500, 1477);
    expect((await admin.list()).body.result).toContainEqual({ id: edge.id, integrity: "failed" });
    // Labels changed in storage do not pass either.
    const other = await registerEdge({ country: "FR", region: "WEUR" });
    await runInDurableObject(registry(), (_, state) => state.storage.sql.exec("UPDATE edges SET country = 'DE' WHERE id = ?", other.id));
    expectError(await admin.get(other.id), 500, 1477);
    // The operator registers it again: sealed, served.
    expect((await admin.put(edge.id, { public_key: edge.jwk, labels: { country: "DE", region: "WEUR" } })).status).toBe(200);
    expect((await call("GET", "/client/v4/zones/any-zone/key_delivery/certificates", { token })).status).toBe(200);
  });

  it("a row without a MAC is refused, after a restart too, until the operator's rewrap seals it and names it (review H2)", async () => {
    const edge = await registerEdge({ country: "NL", region: "WEUR" });
    await runInDurableObject(registry(), (_, state) => {
      state.storage.sql.exec("UPDATE edges SET country = 'US', region = 'ENAM', mac = NULL, mac_kek = NULL WHERE id = ?", edge.id);
      state.storage.sql.exec("DELETE FROM meta WHERE key = 'edges_sealed'");
    });
    expectError(await admin.get(edge.id), 500, 1477);
    await runInDurableObject(registry(), async (_, state) => {
      const fresh = new EdgeRegistry(state, env);
      expect(await fresh.deliveryEdge(edge.id)).toMatchObject({ ok: false, reason: "record_integrity_failed", record: "edge", id: edge.id });
      const rewrap = await fresh.rewrap();
      expect(rewrap.ok && rewrap.value.unsealed).toEqual([edge.id]);
    });
    expect((await admin.get(edge.id)).body.result).toMatchObject({ labels: { country: "US", region: "ENAM" } });
  });
});

describe("the service key edges pin is the key pair's own (review H5, M1)", () => {
  // The registry as a restarted server would read it: a new object over the same storage.
  const restarted = (state: DurableObjectState) => new EdgeRegistry(state, env);

  it("a public key replaced in storage under the same kid is refused (1477), never shown or pinned", async () => {
    expect((await call("GET", "/admin/v1/service_key", { headers: { authorization: `Bearer ${env.ADMIN_SECRET}` } })).status).toBe(200);
    const attacker = (await crypto.subtle.exportKey("jwk", ((await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair).publicKey)) as JsonWebKey;
    await runInDurableObject(registry(), async (_, state) => {
      const row = state.storage.sql.exec<{ public_jwk: string; kid: string }>("SELECT public_jwk, kid FROM service_keys").one();
      const served = JSON.parse(row.public_jwk) as { x: string };
      const swapped = JSON.stringify({ ...JSON.parse(row.public_jwk), x: attacker.x });
      state.storage.sql.exec("UPDATE service_keys SET public_jwk = ?", swapped);
      expect(await restarted(state).serviceKey()).toMatchObject({ ok: false, reason: "record_integrity_failed", record: "service_key", id: row.kid });
      expect(await restarted(state).sign("{}")).toMatchObject({ ok: false, reason: "record_integrity_failed" });
      // Put back: the key pair is whole again.
      state.storage.sql.exec("UPDATE service_keys SET public_jwk = ?", row.public_jwk);
      const back = await restarted(state).serviceKey();
      expect(back.ok && back.value.x).toBe(served.x);
    });
  });

  it("a damaged wrap is 1506 and a missing KEK 1501 naming it, not a bare failure; the rewrap reports it", async () => {
    await runInDurableObject(registry(), async (_, state) => {
      const row = state.storage.sql.exec<{ wrapped: ArrayBuffer }>("SELECT wrapped FROM service_keys").one();
      const damaged = new Uint8Array(row.wrapped.slice(0));
      damaged[5] = damaged[5]! ^ 0xff;
      state.storage.sql.exec("UPDATE service_keys SET wrapped = ?", damaged);
      expect(await restarted(state).serviceKey()).toMatchObject({ ok: false, reason: "key_unwrap_failed" });
      state.storage.sql.exec("UPDATE service_keys SET wrapped = ?", row.wrapped);
      const other = new EdgeRegistry(state, { ...env, KEY_ENCRYPTION_KEYS: `k9:${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}` });
      const rewrap = await other.rewrap();
      // The registry's own keyring gate refuses first when the data's KEK is missing; when it opens, the report names the failure.
      if (rewrap.ok) expect(rewrap.value.service_key_failure).toBe("key_encryption_key_missing");
      else expect(rewrap.reason).toMatch(/^key_encryption/);
    });
  });
});
