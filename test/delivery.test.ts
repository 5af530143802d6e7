// Key delivery to registered edges, end to end inside workerd: a CSR's key,
// a CA-signed certificate with a policy, an edge registered with a real key
// pair, its delivery token, and the bundle opened with the edge's private key.
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import { runInDurableObject } from "cloudflare:test";
import { type JWK, compactDecrypt, compactVerify, importJWK } from "jose";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { EDGE_REGISTRY_NAME } from "../src/edges/edge-registry";
import { TenantStore } from "../src/tenant/tenant-store";
import { loadKeyring } from "../src/pki/keyring";
import { KEY_ALGORITHMS } from "../src/pki/keys";
import { openStorage } from "../src/storage/storage";
import { TENANT_MIGRATIONS } from "../src/tenant/schema";
import { CertificateSeals } from "../src/tenant/certificate-seal";
import { fromPemBlocks } from "../src/pki/pem";
import type { AuditLogRecord } from "../src/tenant/audit-records";
import type { CertificateRecord } from "../src/tenant/certificate-records";
import type { DeliveryBundle } from "../src/tenant/key-delivery";
import { type TestEdge, admin, delivery, edgeId, edgeToken, registerEdge } from "./edges";
import { adminHeaders, call, csrBody, expectError, scope, tenantStub } from "./shared";
import { type TestCa, createCa, issueLeaf } from "./test-ca";
import { claimsFor, mintToken } from "./tokens";

type Zone = Awaited<ReturnType<typeof scope>>;
type KeyType = "rsa2048" | "p256v1";

let ca: TestCa;
beforeAll(async () => {
  ca = await createCa("p256v1", "Delivery Test CA");
});

function certificates(z: Zone, token = z.token) {
  const base = `/client/v4/zones/${z.id}/custom_certificates`;
  return {
    upload: (body: unknown) => call<CertificateRecord>("POST", base, { token, body }),
    edit: (id: string, body: unknown) => call<CertificateRecord>("PATCH", `${base}/${id}`, { token, body }),
    get: (id: string) => call<CertificateRecord>("GET", `${base}/${id}`, { token }),
  };
}

/** A CSR of `keyType` in the zone and a certificate for it, uploaded with `extra` (policy, geo_restrictions). */
async function certificateIn(z: Zone, keyType: KeyType, extra: Record<string, unknown> = {}) {
  const host = `${keyType}-${crypto.randomUUID().slice(0, 8)}.customer-one.com`;
  const csr = (await z.create(csrBody({ key_type: keyType, common_name: host, sans: [host] }))).body.result;
  const pem = (await issueLeaf(ca, csr.csr)) + ca.pem;
  const uploaded = await certificates(z).upload({ certificate: pem, custom_csr_id: csr.id, ...extra });
  expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(200);
  return { csr, pem, record: uploaded.body.result, messages: uploaded.body.messages };
}

/** Opens a bundle with the edge's key; returns the PKCS#8 and the protected header. */
async function open(bundle: DeliveryBundle, edge: TestEdge) {
  const { plaintext, protectedHeader } = await compactDecrypt(bundle.sealed_key, edge.privateKey);
  return { pkcs8: new Uint8Array(plaintext), header: protectedHeader };
}

/** Whether a PKCS#8 private key is the one whose public half the certificate carries. */
async function keyMatchesCertificate(pkcs8: Uint8Array, certificatePem: string, keyType: KeyType): Promise<boolean> {
  const leaf = AsnConvert.parse(fromPemBlocks("CERTIFICATE", certificatePem)![0]!, Certificate);
  const spki = AsnConvert.serialize(leaf.tbsCertificate.subjectPublicKeyInfo);
  const algorithm = KEY_ALGORITHMS[keyType];
  const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, algorithm.import, false, ["sign"]);
  const publicKey = await crypto.subtle.importKey("spki", spki, algorithm.import, false, ["verify"]);
  const challenge = crypto.getRandomValues(new Uint8Array(32));
  return crypto.subtle.verify(algorithm.sign, publicKey, await crypto.subtle.sign(algorithm.sign, privateKey, challenge), challenge);
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
/**
 * Offsets of 24-byte windows inside a PKCS#8's private members (see the
 * custody test), multiples of 3 so their base64 lines up with the base64 of
 * the whole key.
 */
const privateWindows = (pkcs8: Uint8Array) => (pkcs8.length < 200 ? [36, 42] : [402, 699, Math.floor((pkcs8.length - 30) / 3) * 3]);
const hex = (bytes: Uint8Array) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

describe("key delivery to a registered edge", () => {
  for (const [keyType, curve] of [["p256v1", "X25519"], ["rsa2048", "P-256"]] as const) {
    it(`delivers a ${keyType} key sealed to a ${curve} edge, bound to its context, matching the certificate`, async () => {
      const z = await scope("zones");
      const edge = await registerEdge({ country: "DE", region: "WEUR" }, curve);
      const { record, pem } = await certificateIn(z, keyType, { policy: "(region: EU) and (not country: FR)" });
      expect(record.policy_restrictions).toBe("(region: EU) and (not country: FR)");
      const d = delivery(z.id, await edgeToken(edge.id, [z.id]));

      const listed = await d.list();
      expect(listed.status).toBe(200);
      expect(listed.body.result).toEqual([{ id: record.id, hosts: record.hosts, expires_on: record.expires_on, modified_on: record.modified_on }]);

      const reply = await d.get(record.id);
      expect(reply.status).toBe(200);
      const bundle = reply.body.result;
      expect(bundle).toMatchObject({
        id: record.id,
        zone_id: z.id,
        edge_id: edge.id,
        hosts: record.hosts,
        expires_on: record.expires_on,
        modified_on: record.modified_on,
        certificate: pem,
      });
      expect(bundle.sealed_key.split(".")).toHaveLength(5);
      const { pkcs8, header } = await open(bundle, edge);
      expect(header).toMatchObject({
        alg: "ECDH-ES",
        enc: "A256GCM",
        cty: "pkcs8",
        kid: edge.record.thumbprint,
        zone_id: z.id,
        certificate_id: record.id,
        edge_id: edge.id,
        modified_on: record.modified_on,
      });
      expect(await keyMatchesCertificate(pkcs8, bundle.certificate, keyType)).toBe(true);
      // The plaintext key is in no reply: not as DER, base64 or hex.
      const text = JSON.stringify(reply.body) + JSON.stringify(listed.body);
      expect(text).not.toMatch(/PRIVATE KEY/);
      expect(text).not.toContain(b64(pkcs8).slice(0, 40));
      expect(text).not.toContain(hex(pkcs8.slice(0, 40)));
    });
  }

  it("every delivery, and every delivery the zone refused, is an audit entry naming the edge; lists and refusals before the zone are not", async () => {
    const z = await scope("zones");
    const { csr, record } = await certificateIn(z, "p256v1", { policy: "country: US" });
    const edge = await registerEdge({ country: "US", region: "WNAM" });
    const paris = await registerEdge({ country: "FR", region: "WEUR" });
    const ok = delivery(z.id, await edgeToken(edge.id, [z.id]));
    await ok.list();
    expect((await call("GET", `/client/v4/zones/${z.id}/key_delivery/certificates/${record.id}`, { token: await edgeToken(edge.id, [z.id]), headers: { "cf-connecting-ip": "192.0.2.10" } })).status).toBe(200);
    expectError(await delivery(z.id, await edgeToken(paris.id, [z.id])).get(record.id), 403, 1475);
    // Unknown edges are refused by the Worker, before the zone: nothing to record there.
    expectError(await delivery(z.id, await edgeToken(edgeId("ghost"), [z.id])).get(record.id), 403, 1474);
    const trail = (await call<AuditLogRecord[]>("GET", `/client/v4/zones/${z.id}/audit_logs?action.type=deliver&direction=asc`, { token: z.token })).body.result;
    expect(trail.map((e) => ({ action: e.action, actor: e.actor, resource: e.resource, metadata: e.metadata }))).toEqual([
      {
        action: { type: "deliver", result: true },
        actor: { type: "edge", id: edge.id, ip: "192.0.2.10" },
        resource: { type: "private_key", id: csr.id },
        metadata: { certificate_id: record.id, edge_id: edge.id, edge_key: edge.record.thumbprint, modified_on: record.modified_on },
      },
      {
        action: { type: "deliver", result: false, info: "the certificate's placement excludes the edge (1475)" },
        actor: { type: "edge", id: paris.id },
        resource: { type: "private_key", id: csr.id },
        metadata: { certificate_id: record.id, edge_id: paris.id, edge_key: paris.record.thumbprint, modified_on: record.modified_on },
      },
    ]);
  });

  it("a bundle sealed to edge A does not open with edge B's key, and is never sealed to B for A", async () => {
    const z = await scope("zones");
    const { record } = await certificateIn(z, "p256v1");
    const a = await registerEdge({ country: "US", region: "ENAM" });
    const b = await registerEdge({ country: "US", region: "ENAM" });
    const forA = (await delivery(z.id, await edgeToken(a.id, [z.id])).get(record.id)).body.result;
    await expect(compactDecrypt(forA.sealed_key, b.privateKey)).rejects.toThrow();
    const forB = (await delivery(z.id, await edgeToken(b.id, [z.id])).get(record.id)).body.result;
    expect((await open(forB, b)).header.edge_id).toBe(b.id);
    await expect(compactDecrypt(forB.sealed_key, a.privateKey)).rejects.toThrow();
  });

  it("refuses tokens without delivery on the zone (10000), edges unknown or revoked (1474), and excluded edges (1475)", async () => {
    const z = await scope("zones");
    const { record } = await certificateIn(z, "p256v1", { policy: "country: US" });
    const edge = await registerEdge({ country: "US", region: "WNAM" });
    const paths = (token: string) => delivery(z.id, token);

    // Write, Read and global-key credentials do not deliver; nor does delivery on another zone, or without edge_id.
    const tokens = [
      z.token,
      await mintToken({ zones: [z.id], readOnly: true }),
      await mintToken({ zones: ["elsewhere"], edge: edge.id }),
      await mintToken({ accounts: [z.id], edge: edge.id }),
      await mintToken({ zones: [z.id], groups: ["SSL and Certificates Key Delivery"] }),
    ];
    for (const token of tokens) {
      expectError(await paths(token).list(), 403, 10000);
      expectError(await paths(token).get(record.id), 403, 10000);
    }
    const legacy = { "x-auth-email": "ops@customer-one.com", "x-auth-key": "not-checked-before-scope" };
    expectError(await call("GET", `/client/v4/zones/legacyzone/key_delivery/certificates`, { headers: legacy }), 401, 9103);
    // An edge_id that is not an edge id, or not a string, makes the token's claims unusable.
    expectError(await paths(await mintToken({ zones: [z.id], edge: "../etc" })).list(), 401, 1004);
    const numeric = { ...claimsFor({ zones: [z.id], edge: "x" }), edge_id: 7 };
    expectError(await paths(await mintToken({ claims: numeric })).list(), 401, 1004);

    // Registered and allowed: delivered. An unregistered edge with a valid token: 1474.
    const allowed = paths(await edgeToken(edge.id, [z.id]));
    expect((await allowed.get(record.id)).status).toBe(200);
    const stranger = paths(await edgeToken(edgeId("unregistered"), [z.id]));
    expectError(await stranger.list(), 403, 1474);
    expectError(await stranger.get(record.id), 403, 1474);

    // Outside the policy: not listed, and refused.
    const paris = await registerEdge({ country: "FR", region: "WEUR" });
    const excluded = paths(await edgeToken(paris.id, [z.id]));
    expect((await excluded.list()).body.result).toEqual([]);
    expectError(await excluded.get(record.id), 403, 1475);

    // Revoked: the very next request is refused, with the same token.
    expect((await admin.remove(edge.id)).status).toBe(200);
    expectError(await allowed.list(), 403, 1474);
    expectError(await allowed.get(record.id), 403, 1474);

    // A delivery token reads and writes nothing else.
    const edgeOnly = await edgeToken(paris.id, [z.id]);
    expectError(await call("GET", `/client/v4/zones/${z.id}/custom_certificates`, { token: edgeOnly }), 403, 10000);
    expectError(await call("GET", `/client/v4/zones/${z.id}/custom_csrs`, { token: edgeOnly }), 403, 10000);
    expectError(await call("POST", `/client/v4/zones/${z.id}/custom_csrs`, { token: edgeOnly, body: csrBody() }), 403, 10000);
  });

  it("1448 for a malformed id, 1449 for an unknown certificate, 1476 (410) once expired; routes are zones-only", async () => {
    const z = await scope("zones");
    const { record } = await certificateIn(z, "p256v1");
    const edge = await registerEdge({ country: "JP", region: "APAC" });
    const token = await edgeToken(edge.id, [z.id]);
    const d = delivery(z.id, token);
    expectError(await d.get("not-a-uuid"), 400, 1448);
    expectError(await d.get(crypto.randomUUID()), 404, 1449);
    expect((await d.list()).body.result.map((c) => c.id)).toEqual([record.id]);

    // Expired, as time would make it: the row changed and sealed again with the deployment's KEK.
    const keyring = await loadKeyring(env.KEY_ENCRYPTION_KEYS);
    await runInDurableObject(tenantStub("zones", z.id), (_, state) => {
      state.storage.sql.exec("UPDATE certificates SET expires_on = ? WHERE id = ?", new Date(Date.now() - 1000).toISOString(), record.id);
      const storage = openStorage(state, TENANT_MIGRATIONS);
      new CertificateSeals(storage).seal(record.id, keyring, `zones:${z.id}`);
    });
    expect((await d.list()).body.result).toEqual([]);
    expectError(await d.get(record.id), 410, 1476);

    // Also under /api/v4, as every route is.
    expect((await call<unknown[]>("GET", `/api/v4/zones/${z.id}/key_delivery/certificates`, { token })).body.result).toEqual([]);
    expectError(await call("GET", `/api/v4/zones/${z.id}/key_delivery/certificates/${record.id}`, { token }), 410, 1476);
    expectError(await call("GET", `/client/v4/accounts/${z.id}/key_delivery/certificates`, { token }), 404, 7000);
    expectError(await call("POST", `/client/v4/zones/${z.id}/key_delivery/certificates`, { token, body: {} }), 405, 7001);
    expectError(await call("DELETE", `/client/v4/zones/${z.id}/key_delivery/certificates/${record.id}`, { token }), 405, 7001);
  });

  it("a certificate row changed in storage (another CSR's key, a wider placement, a later expiry) delivers nothing (1477)", async () => {
    const z = await scope("zones");
    const { record } = await certificateIn(z, "p256v1", { policy: "country: DE" });
    const other = await certificateIn(z, "p256v1");
    const edge = await registerEdge({ country: "FR", region: "WEUR" });
    const d = delivery(z.id, await edgeToken(edge.id, [z.id]));
    expectError(await d.get(record.id), 403, 1475);
    const changes: Array<[string, string, unknown]> = [
      ["policy", "UPDATE certificates SET policy = NULL WHERE id = ?", null],
      ["custom_csr_id", "UPDATE certificates SET custom_csr_id = ? WHERE id = ?", other.csr.id],
      ["expires_on", "UPDATE certificates SET expires_on = '2099-01-01T00:00:00.000Z' WHERE id = ?", null],
    ];
    for (const [name, statement, value] of changes) {
      const before = await runInDurableObject(tenantStub("zones", z.id), (_, state) => {
        const row = state.storage.sql.exec("SELECT * FROM certificates WHERE id = ?", record.id).one();
        if (value === null) state.storage.sql.exec(statement, record.id);
        else state.storage.sql.exec(statement, value, record.id);
        return row;
      });
      expectError(await d.get(record.id), 500, 1477);
      expect((await d.list()).body.result.map((c) => c.id), name).not.toContain(record.id);
      await runInDurableObject(tenantStub("zones", z.id), (_, state) => {
        state.storage.sql.exec("UPDATE certificates SET policy = ?, custom_csr_id = ?, expires_on = ? WHERE id = ?", before.policy, before.custom_csr_id, before.expires_on, record.id);
      });
      expectError(await d.get(record.id), 403, 1475);
    }
  });

  it("an edit does not seal a row changed in storage (review H3): 1477, the row stays refused", async () => {
    const z = await scope("zones");
    const { record } = await certificateIn(z, "p256v1", { policy: "country: DE" });
    const edge = await registerEdge({ country: "FR", region: "WEUR" });
    const d = delivery(z.id, await edgeToken(edge.id, [z.id]));
    await runInDurableObject(tenantStub("zones", z.id), (_, state) => state.storage.sql.exec("UPDATE certificates SET policy = NULL WHERE id = ?", record.id));
    expectError(await call("PATCH", `/client/v4/zones/${z.id}/custom_certificates/${record.id}`, { token: z.token, body: { bundle_method: "force" } }), 500, 1477);
    expectError(await d.get(record.id), 500, 1477);
    const row = await runInDurableObject(tenantStub("zones", z.id), (_, state) => state.storage.sql.exec("SELECT bundle_method, policy FROM certificates WHERE id = ?", record.id).one());
    expect(row).toEqual({ bundle_method: "ubiquitous", policy: null });
  });

  it("a row without a MAC is refused until the operator's rewrap seals it, names it, and records it (review H2)", async () => {
    const z = await scope("zones");
    const { record } = await certificateIn(z, "p256v1", { policy: "country: DE" });
    const edge = await registerEdge({ country: "FR", region: "WEUR" });
    const d = delivery(z.id, await edgeToken(edge.id, [z.id]));
    // Someone who can write the data directory widens the placement and strips the MAC (and any marker there may be).
    await runInDurableObject(tenantStub("zones", z.id), (_, state) => {
      state.storage.sql.exec("UPDATE certificates SET policy = NULL, mac = NULL, mac_kek = NULL WHERE id = ?", record.id);
      state.storage.sql.exec("DELETE FROM meta WHERE key = 'placements_sealed'");
    });
    // Nothing a request does seals it: reads, writes, and an object started afresh.
    expectError(await d.get(record.id), 500, 1477);
    await z.create(csrBody({ key_type: "p256v1" }));
    await runInDurableObject(tenantStub("zones", z.id), async (_, state) => {
      const fresh = new TenantStore(state, env);
      expect(await fresh.deliverCertificate({ scope: { kind: "zones", id: z.id }, actor: { type: "edge", id: edge.id } }, { id: edge.id, public_key: edge.record.public_key, thumbprint: edge.record.thumbprint, labels: edge.record.labels }, record.id)).toMatchObject({ ok: false, reason: "record_integrity_failed" });
    });
    expectError(await d.get(record.id), 500, 1477);
    // The operator's rewrap seals it, says which, and the trail records it.
    const rewrap = await call<{ certificates_sealed: string[] }>("POST", `/admin/v1/zones/${z.id}/rewrap`, { headers: adminHeaders });
    expect(rewrap.body.result.certificates_sealed).toEqual([record.id]);
    const trail = (await call<AuditLogRecord[]>("GET", `/client/v4/zones/${z.id}/audit_logs?action.type=seal`, { token: z.token })).body.result;
    expect(trail).toHaveLength(1);
    expect(trail[0]!.metadata).toEqual({ certificate_ids: [record.id] });
    expect((await d.get(record.id)).status).toBe(200);
  });

  it("every reply is signed by the service key the edge pins: the JWS payload names the zone, the edge and the result", async () => {
    const z = await scope("zones");
    const { record } = await certificateIn(z, "p256v1");
    const edge = await registerEdge({ country: "DE", region: "WEUR" });
    const serviceKey = (await call<{ service_key: JWK & { kid: string } }>("GET", `/admin/v1/edges/${edge.id}`, { headers: adminHeaders })).body.result.service_key;
    const key = await importJWK(serviceKey, "EdDSA");
    const d = delivery(z.id, await edgeToken(edge.id, [z.id]));
    for (const [what, reply] of [["list", await d.list()], ["bundle", await d.get(record.id)]] as const) {
      const signed = (reply.body as unknown as { signed: string }).signed;
      const { payload, protectedHeader } = await compactVerify(signed, key, { algorithms: ["EdDSA"] });
      expect(protectedHeader).toEqual({ alg: "EdDSA", kid: serviceKey.kid, typ: "custom-csr-delivery+jws" });
      const body = JSON.parse(new TextDecoder().decode(payload));
      expect(body).toEqual({ typ: `custom-csr-delivery/${what}`, zone_id: z.id, edge_id: edge.id, iat: expect.any(Number), result: reply.body.result });
      expect(Math.abs(body.iat - Date.now() / 1000)).toBeLessThan(60);
    }
  });

  it("a delivery token for an account's zones (nested form, --account-zones) covers the zones recorded under it", async () => {
    const z = await scope("zones");
    const account = `acct${crypto.randomUUID().slice(0, 8)}`;
    const { record } = await certificateIn(z, "p256v1");
    const edge = await registerEdge({ country: "GB", region: "WEUR" });
    const iat = Math.floor(Date.now() / 1000);
    const nested = await mintToken({
      claims: {
        jti: crypto.randomUUID(), iat, exp: iat + 600, edge_id: edge.id,
        policies: [{
          effect: "allow",
          resources: { [`com.cloudflare.api.account.${account}`]: { "com.cloudflare.api.account.zone.*": "*" } },
          permission_groups: [{ name: "SSL and Certificates Key Delivery" }],
        }],
      },
    });
    const other = await scope("zones");
    expect((await call("PUT", `/admin/v1/zones/${z.id}/account`, { headers: adminHeaders, body: { account_id: account } })).status).toBe(200);
    const bundle = (await delivery(z.id, nested).get(record.id)).body.result;
    expect((await open(bundle, edge)).header.zone_id).toBe(z.id);
    // A zone not recorded under the account is not covered.
    expectError(await delivery(other.id, nested).list(), 403, 10000);
  });

  it("without a policy, every registered edge with a token for the zone receives the key", async () => {
    const z = await scope("zones");
    const { record } = await certificateIn(z, "p256v1");
    for (const labels of [{ country: "BR", region: "SAM" }, { country: "ZA", region: "AFR", highest_security: true }]) {
      const edge = await registerEdge(labels);
      const bundle = (await delivery(z.id, await edgeToken(edge.id, [z.id])).get(record.id)).body.result;
      expect((await open(bundle, edge)).header.certificate_id).toBe(record.id);
    }
  });
});

describe("policy and geo_restrictions on custom certificates", () => {
  it("are stored and returned as Cloudflare does (policy in, policy_restrictions out), and decide delivery", async () => {
    const z = await scope("zones");
    const secure = await registerEdge({ country: "SG", region: "APAC", highest_security: true });
    const plain = await registerEdge({ country: "SG", region: "APAC" });
    const geo = await certificateIn(z, "p256v1", { geo_restrictions: { label: "highest_security" } });
    expect(geo.record.geo_restrictions).toEqual({ label: "highest_security" });
    expect(geo.record).not.toHaveProperty("policy_restrictions");
    expect(geo.messages).toEqual([]);
    expect((await certificates(z).get(geo.record.id)).body.result).toEqual(geo.record);
    expect((await delivery(z.id, await edgeToken(secure.id, [z.id])).get(geo.record.id)).status).toBe(200);
    expectError(await delivery(z.id, await edgeToken(plain.id, [z.id])).get(geo.record.id), 403, 1475);

    // policy_restrictions is accepted in place of policy (the SDK's note).
    const aliased = await certificateIn(z, "p256v1", { policy_restrictions: "country: SG" });
    expect(aliased.record.policy_restrictions).toBe("country: SG");
    expect(aliased.record).not.toHaveProperty("geo_restrictions");
    expect(Object.keys(aliased.record)).toEqual([
      "id", "zone_id", "bundle_method", "custom_csr_id", "expires_on", "hosts", "issuer", "modified_on",
      "policy_restrictions", "priority", "signature", "status", "uploaded_on",
    ]);
  });

  it("a policy no registered edge satisfies is stored, with message 1461", async () => {
    const z = await scope("zones");
    // No test registers an edge in Antarctica.
    const nowhere = await certificateIn(z, "p256v1", { policy: "country: AQ" });
    expect(nowhere.messages).toEqual([{ code: 1461, message: expect.stringContaining("No registered edge satisfies") }]);
    await registerEdge({ country: "NZ", region: "OC" });
    const somewhere = await certificateIn(z, "p256v1", { policy: "country: NZ or country: AQ" });
    expect(somewhere.messages).toEqual([]);
  });

  it("each malformed policy or restriction is its own 400, naming the field; nothing is stored", async () => {
    const z = await scope("zones");
    const csr = (await z.create(csrBody({ key_type: "p256v1" }))).body.result;
    const certificate = await issueLeaf(ca, csr.csr);
    const upload = (extra: Record<string, unknown>) => certificates(z).upload({ certificate, custom_csr_id: csr.id, ...extra });
    const cases: Array<[Record<string, unknown>, number, string]> = [
      [{ policy: "country: US & region: EU" }, 1450, "/policy"],
      [{ policy: "(country: US" }, 1451, "/policy"],
      [{ policy: "country US" }, 1452, "/policy"],
      [{ policy: "country: US region: EU" }, 1453, "/policy"],
      [{ policy: "city: Paris" }, 1454, "/policy"],
      [{ policy: "country: XX" }, 1455, "/policy"],
      [{ policy_restrictions: "region: NA" }, 1456, "/policy_restrictions"],
      [{ policy: `country: US${" or country: US".repeat(80)}` }, 1457, "/policy"],
      [{ policy: 42 }, 1430, "/policy"],
      [{ geo_restrictions: { label: "asia" } }, 1458, "/geo_restrictions/label"],
      [{ geo_restrictions: "us" }, 1458, "/geo_restrictions"],
      [{ policy: "country: US", geo_restrictions: { label: "us" } }, 1459, "/geo_restrictions"],
    ];
    for (const [extra, code, pointer] of cases) {
      const reply = await upload(extra);
      expectError(reply, 400, code);
      expect(reply.body.errors[0]!.source).toEqual({ pointer });
    }
    const unbalanced = await upload({ policy: "(country: US" });
    expect(unbalanced.body.errors[0]!.message).toBe("Invalid policy: unbalanced parentheses: '(' at position 1 is never closed.");
    expect((await call("GET", `/client/v4/zones/${z.id}/custom_certificates`, { token: z.token })).body.result_info?.total_count).toBe(0);
    // Blank policy and an empty restriction mean no restriction.
    const open = await upload({ policy: "  ", geo_restrictions: {} });
    expect(open.status).toBe(200);
    expect(open.body.result).not.toHaveProperty("policy_restrictions");
    expect(open.body.result).not.toHaveProperty("geo_restrictions");
  });
});

describe("placement input (fast-check)", () => {
  it("any policy or geo_restrictions value is stored or refused with a documented 400; never a 5xx", async () => {
    const z = await scope("zones");
    const csr = (await z.create(csrBody({ key_type: "p256v1" }))).body.result;
    const certificate = await issueLeaf(ca, csr.csr);
    const words = ["country", "region", ":", "(", ")", "and", "or", "not", "US", "EU", "weur", "XX", "&", " "];
    const policy = fc.oneof(fc.string({ maxLength: 40 }), fc.array(fc.constantFrom(...words), { maxLength: 12 }).map((w) => w.join(" ")), fc.jsonValue({ maxDepth: 1 }));
    const geo = fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 }), fc.record({ label: fc.oneof(fc.constantFrom("us", "eu", "highest_security", "US"), fc.jsonValue({ maxDepth: 1 })) }));
    const documented = new Set([1430, 1450, 1451, 1452, 1453, 1454, 1455, 1456, 1457, 1458, 1459]);
    await fc.assert(
      fc.asyncProperty(fc.option(policy, { nil: undefined }), geo, async (p, g) => {
        const body: Record<string, unknown> = { certificate, custom_csr_id: csr.id };
        if (p !== undefined) body.policy = p;
        if (g !== undefined) body.geo_restrictions = g;
        const reply = await certificates(z).upload(body);
        if (reply.status === 200) {
          // The same certificate may be uploaded once (1220): make room for the next run.
          expect((await call("DELETE", `/client/v4/zones/${z.id}/custom_certificates/${reply.body.result.id}`, { token: z.token })).status).toBe(200);
          return;
        }
        expect(reply.status).toBe(400);
        expect(documented).toContain(reply.body.errors[0]!.code);
      }),
      { numRuns: 120 },
    );
  }, 120_000);
});

describe("PATCH custom_certificates/{id}: renewal and new placement", () => {
  it("renews with a new certificate for the same key; modified_on moves and the next delivery carries it", async () => {
    const z = await scope("zones");
    const edge = await registerEdge({ country: "CA", region: "ENAM" });
    const { csr, record } = await certificateIn(z, "p256v1");
    const d = delivery(z.id, await edgeToken(edge.id, [z.id]));
    const before = (await d.get(record.id)).body.result;

    const renewed = (await issueLeaf(ca, csr.csr, { notAfter: new Date(Date.now() + 180 * 86_400_000) })) + ca.pem;
    const edited = await certificates(z).edit(record.id, { certificate: renewed });
    expect(edited.status).toBe(200);
    expect(edited.body.result.id).toBe(record.id);
    expect(Date.parse(edited.body.result.modified_on)).toBeGreaterThan(Date.parse(record.modified_on));
    expect(Date.parse(edited.body.result.expires_on)).toBeGreaterThan(Date.parse(record.expires_on));
    expect(edited.body.result.uploaded_on).toBe(record.uploaded_on);

    expect((await d.list()).body.result[0]!.modified_on).toBe(edited.body.result.modified_on);
    const after = (await d.get(record.id)).body.result;
    expect(after.certificate).toBe(renewed);
    expect(after.certificate).not.toBe(before.certificate);
    const opened = await open(after, edge);
    expect(opened.header.modified_on).toBe(edited.body.result.modified_on);
    expect(await keyMatchesCertificate(opened.pkcs8, after.certificate, "p256v1")).toBe(true);

    // Quick successive edits still move modified_on forward.
    const again = await certificates(z).edit(record.id, { bundle_method: "force" });
    const thrice = await certificates(z).edit(record.id, { bundle_method: "optimal" });
    expect(Date.parse(again.body.result.modified_on)).toBeGreaterThan(Date.parse(edited.body.result.modified_on));
    expect(Date.parse(thrice.body.result.modified_on)).toBeGreaterThan(Date.parse(again.body.result.modified_on));
    expect(thrice.body.result.bundle_method).toBe("optimal");
    // Nothing to change: the record as it is.
    expect((await certificates(z).edit(record.id, { type: "sni_custom" })).body.result).toEqual(thrice.body.result);
  });

  it("changes the placement: setting one of policy and geo_restrictions clears the other; null clears", async () => {
    const z = await scope("zones");
    const edge = await registerEdge({ country: "IN", region: "APAC" });
    const { record } = await certificateIn(z, "p256v1", { policy: "country: IN" });
    const d = delivery(z.id, await edgeToken(edge.id, [z.id]));
    expect((await d.list()).body.result).toHaveLength(1);

    const us = await certificates(z).edit(record.id, { geo_restrictions: { label: "us" } });
    expect(us.body.result.geo_restrictions).toEqual({ label: "us" });
    expect(us.body.result).not.toHaveProperty("policy_restrictions");
    expect(us.body.messages.map((m) => m.code)).not.toContain(1460);
    expect((await d.list()).body.result).toEqual([]);
    expectError(await d.get(record.id), 403, 1475);

    const back = await certificates(z).edit(record.id, { policy: "country: IN or country: US" });
    expect(back.body.result.policy_restrictions).toBe("country: IN or country: US");
    expect(back.body.result).not.toHaveProperty("geo_restrictions");
    expect((await d.get(record.id)).status).toBe(200);

    // Clearing the policy leaves no restriction (and a restriction that is not set stays unset).
    const cleared = await certificates(z).edit(record.id, { policy: null });
    expect(cleared.body.result).not.toHaveProperty("policy_restrictions");
    expect(cleared.body.result).not.toHaveProperty("geo_restrictions");
    const geo = await certificates(z).edit(record.id, { geo_restrictions: { label: "eu" } });
    const policyCleared = await certificates(z).edit(record.id, { policy: "" });
    expect(policyCleared.body.result.geo_restrictions).toEqual(geo.body.result.geo_restrictions);
    expectError(await certificates(z).edit(record.id, { policy: "country: IN", geo_restrictions: { label: "us" } }), 400, 1459);
  });

  it("refuses as upload does: another key (1441), a private key (1446), bad input; 1448, 1449; Write only", async () => {
    const z = await scope("zones");
    const { csr, record } = await certificateIn(z, "p256v1");
    const other = (await z.create(csrBody({ key_type: "p256v1" }))).body.result;
    const edit = (body: unknown) => certificates(z).edit(record.id, body);
    expectError(await edit({ certificate: await issueLeaf(ca, other.csr) }), 400, 1441);
    expectError(await edit({ custom_csr_id: other.id }), 400, 1441);
    expectError(await edit({ certificate: "garbage" }), 400, 1440);
    expectError(await edit({ certificate: await issueLeaf(ca, csr.csr, { notBefore: new Date(Date.now() - 9e9), notAfter: new Date(Date.now() - 1e3) }) }), 400, 1442);
    expectError(await edit({ private_key: "-----BEGIN PRIVATE KEY-----" }), 400, 1446);
    expectError(await edit({ bundle_method: "best" }), 400, 1447);
    expectError(await edit({ policy: "country:" }), 400, 1452);
    expectError(await edit(["x"]), 400, 1400);
    expectError(await certificates(z).edit("nope", {}), 400, 1448);
    expectError(await certificates(z).edit(crypto.randomUUID(), { bundle_method: "force" }), 404, 1449);
    const readOnly = certificates(z, await mintToken({ zones: [z.id], readOnly: true }));
    expectError(await readOnly.edit(record.id, { bundle_method: "force" }), 403, 10000);
    // Same custom_csr_id is fine; nothing was changed by the refusals.
    expect((await edit({ custom_csr_id: csr.id.toUpperCase() })).body.result).toEqual((await certificates(z).get(record.id)).body.result);
    expect((await certificates(z).get(record.id)).body.result.modified_on).toBe(record.modified_on);

    // The audit trail: the two refusals for another key, then the edit that changed something.
    expect((await edit({ policy: "country: JP" })).status).toBe(200);
    const trail = (await call<AuditLogRecord[]>("GET", `/client/v4/zones/${z.id}/audit_logs?action.type=update&direction=asc`, { token: z.token })).body.result;
    expect(trail.map((e) => [e.action.result, e.action.info ?? null, e.resource])).toEqual([
      [false, "the certificate is for another key (1441)", { id: record.id, type: "custom_certificate" }],
      [false, "the certificate is for another key (1441)", { id: record.id, type: "custom_certificate" }],
      [true, null, { id: record.id, type: "custom_certificate" }],
    ]);
    expect(trail[2]!.metadata).toEqual({ custom_csr_id: csr.id, policy: "country: JP", geo_restriction: null });
  });
});

describe("custody: a delivered key is in no response but sealed, no log line, no storage row in the clear", () => {
  it("holds for both key types, across upload, edit, listing, delivery and refusals", async () => {
    const lines: string[] = [];
    const capture = (...args: unknown[]) => lines.push(args.map(String).join(" "));
    const spies = [vi.spyOn(console, "log").mockImplementation(capture), vi.spyOn(console, "error").mockImplementation(capture), vi.spyOn(console, "warn").mockImplementation(capture)];
    const replies: string[] = [];
    const keys: Uint8Array[] = [];
    const z = await scope("zones");
    try {
      const edge = await registerEdge({ country: "AU", region: "OC" }, "P-256");
      const outsider = await registerEdge({ country: "NZ", region: "OC" });
      for (const keyType of ["p256v1", "rsa2048"] as const) {
        const { csr, record } = await certificateIn(z, keyType, { policy: "country: AU" });
        const d = delivery(z.id, await edgeToken(edge.id, [z.id]));
        replies.push(JSON.stringify((await d.list()).body));
        const bundle = await d.get(record.id);
        replies.push(JSON.stringify(bundle.body));
        keys.push((await open(bundle.body.result, edge)).pkcs8);
        replies.push(JSON.stringify((await delivery(z.id, await edgeToken(outsider.id, [z.id])).get(record.id)).body));
        const renewed = await certificates(z).edit(record.id, { certificate: await issueLeaf(ca, csr.csr) });
        replies.push(JSON.stringify(renewed.body));
        const again = await d.get(record.id);
        replies.push(JSON.stringify(again.body));
        keys.push((await open(again.body.result, edge)).pkcs8);
      }
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    expect(lines.length).toBeGreaterThan(0);
    expect(keys[0]).toEqual(keys[1]);
    const everything = [...replies, ...lines].join("\n");
    expect(everything).not.toMatch(/PRIVATE KEY|"d":/);
    for (const key of keys) {
      // Windows of the private material only (the public half is in the certificate, rightly):
      // a P-256 PKCS#8 holds d at bytes 36-67; an RSA one, d, p, q, dp, dq, qi after n and e.
      for (const at of privateWindows(key)) {
        expect(everything).not.toContain(b64(key.slice(at, at + 24)).slice(0, 30));
        expect(everything).not.toContain(hex(key.slice(at, at + 24)));
      }
    }

    // Every column of every table of the zone's object and of the registry: no key bytes, as text or blob.
    const dump = (state: DurableObjectState) => {
      const tables = state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'").toArray();
      return tables.flatMap((t) => state.storage.sql.exec(`SELECT * FROM "${String(t.name)}"`).toArray()).flatMap((row) => Object.values(row));
    };
    const values = [
      ...(await runInDurableObject(tenantStub("zones", z.id), (_, state) => dump(state))),
      ...(await runInDurableObject(env.EDGES.get(env.EDGES.idFromName(EDGE_REGISTRY_NAME)), (_, state) => dump(state))),
    ];
    expect(values.length).toBeGreaterThan(20);
    const stored = values.map((v) => (v instanceof ArrayBuffer ? hex(new Uint8Array(v)) : hex(new TextEncoder().encode(String(v))))).join("|");
    const storedText = values.map((v) => (v instanceof ArrayBuffer ? "" : String(v))).join("|");
    expect(storedText).not.toMatch(/PRIVATE KEY/);
    for (const key of keys) {
      for (const at of privateWindows(key)) {
        expect(stored).not.toContain(hex(key.slice(at, at + 16)));
        expect(storedText).not.toContain(b64(key.slice(at, at + 24)).slice(0, 30));
      }
    }
  });
});
