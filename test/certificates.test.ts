import { runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { CertificateRecord } from "../src/tenant/certificate-records";
import { call, csrBody, expectError, scope, tenantStub } from "./shared";
import { type TestCa, createCa, issueLeaf } from "./test-ca";
import { mintToken } from "./tokens";

type Scope = Awaited<ReturnType<typeof scope>>;
const DAY = 86_400_000;

function certificates(s: Scope, token = s.token) {
  const base = `/client/v4/zones/${s.id}/custom_certificates`;
  return {
    base,
    upload: (body: unknown) => call<CertificateRecord>("POST", base, { token, body }),
    list: (query = "") => call<CertificateRecord[]>("GET", `${base}${query}`, { token }),
    get: (id: string) => call<CertificateRecord>("GET", `${base}/${id}`, { token }),
    remove: (id: string) => call<{ id: string }>("DELETE", `${base}/${id}`, { token }),
  };
}

describe("custom certificates against a custom CSR", () => {
  let rsaRoot: TestCa;
  let ecRoot: TestCa;
  let intermediate: TestCa;

  beforeAll(async () => {
    rsaRoot = await createCa("rsa2048", "Test Root Co");
    ecRoot = await createCa("p256v1", "Test EC Root Co");
    intermediate = await createCa("p256v1", "Test Issuing Co", rsaRoot);
  });

  it("goes from CSR to installed certificate, and 1420 holds the CSR until the certificate is gone", async () => {
    const s = await scope("zones");
    const certs = certificates(s);
    const csr = (await s.create(csrBody({ sans: ["app.customer-one.com", "www.customer-one.com"] }))).body.result;
    const leaf = await issueLeaf(intermediate, csr.csr);

    const uploaded = await certs.upload({ certificate: leaf + intermediate.pem, custom_csr_id: csr.id, bundle_method: "force" });
    expect(uploaded.status).toBe(200);
    const cert = uploaded.body.result;
    expect(cert).toMatchObject({
      zone_id: s.id,
      custom_csr_id: csr.id,
      hosts: ["app.customer-one.com", "www.customer-one.com"],
      issuer: "Test Issuing Co",
      signature: "ECDSAWithSHA256",
      status: "active",
      bundle_method: "force",
      priority: 0,
    });
    expect(Date.parse(cert.expires_on) - Date.now()).toBeGreaterThan(80 * DAY);
    expect(JSON.stringify(uploaded.body)).not.toMatch(/PRIVATE KEY/);

    expect((await certs.get(cert.id)).body.result).toEqual(cert);
    const listed = await certs.list();
    expect(listed.body.result).toEqual([cert]);
    expect(listed.body.result_info).toEqual({ count: 1, page: 1, per_page: 20, total_count: 1, total_pages: 1 });

    const refused = await s.remove(csr.id);
    expectError(refused, 409, 1420);
    expect(refused.body.errors[0]!.message).toBe(
      "The custom CSR is associated with an active certificate pack. You will need to delete all associated active certificate packs before you can delete the custom CSR.",
    );

    expect((await certs.remove(cert.id)).body.result).toEqual({ id: cert.id });
    expectError(await certs.get(cert.id), 404, 1449);
    expect((await s.remove(csr.id)).status).toBe(200);
    const left = await runInDurableObject(tenantStub(s.kind, s.id), (_, state) =>
      state.storage.sql.exec("SELECT (SELECT count(*) FROM certificates) + (SELECT count(*) FROM csrs) + (SELECT count(*) FROM wrapped_keys) AS n").one().n,
    );
    expect(left).toBe(0);
  });

  it("accepts a leaf alone, signed by an RSA root, for an ECDSA CSR", async () => {
    const s = await scope("zones");
    const csr = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const reply = await certificates(s).upload({ certificate: await issueLeaf(rsaRoot, csr.csr), custom_csr_id: csr.id });
    expect(reply.status).toBe(200);
    expect(reply.body.result).toMatchObject({ signature: "SHA256WithRSA", issuer: "Test Root Co", bundle_method: "ubiquitous" });
  });

  it("refuses what does not parse, does not match, is out of date, or does not chain", async () => {
    const s = await scope("zones");
    const certs = certificates(s);
    const csr = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const other = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const leaf = await issueLeaf(ecRoot, csr.csr);
    const now = Date.now();
    const body = (certificate: unknown) => ({ certificate, custom_csr_id: csr.id });
    const broken = leaf.replace(/\n[A-Za-z0-9+/]{64}\n/, "\n!!!!\n");
    const truncated = `-----BEGIN CERTIFICATE-----\n${leaf.split("\n").slice(1, 4).join("\n")}\n-----END CERTIFICATE-----\n`;
    const cases: Array<[unknown, number]> = [
      ["not a certificate", 1440],
      [42, 1440],
      [undefined, 1440],
      [broken, 1440],
      [truncated, 1440],
      [csr.csr, 1440],
      [`${leaf}-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n`, 1440],
      [await issueLeaf(ecRoot, other.csr), 1441],
      [await issueLeaf(ecRoot, csr.csr, { notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) }), 1442],
      [await issueLeaf(ecRoot, csr.csr, { notBefore: new Date(now + DAY), notAfter: new Date(now + 30 * DAY) }), 1443],
      [leaf + rsaRoot.pem, 1444],
      [(await issueLeaf(intermediate, csr.csr)) + rsaRoot.pem + intermediate.pem, 1444],
      [(await issueLeaf(intermediate, csr.csr)) + (await createCa("p256v1", "Test Issuing Co", ecRoot)).pem, 1444],
    ];
    for (const [certificate, code] of cases) {
      const reply = await certs.upload(body(certificate));
      expectError(reply, 400, code);
      expect(JSON.stringify(reply.body)).not.toContain("PRIVATE KEY");
    }
    expectError(await certs.upload({ certificate: leaf }), 400, 1445);
    expectError(await certs.upload({ certificate: leaf, custom_csr_id: csr.id, private_key: "-----BEGIN PRIVATE KEY-----" }), 400, 1446);
    expectError(await certs.upload({ certificate: leaf, custom_csr_id: csr.id, bundle_method: "best" }), 400, 1447);
    expectError(await certs.upload({ certificate: leaf, custom_csr_id: "nope" }), 400, 1418);
    expectError(await certs.upload({ certificate: leaf, custom_csr_id: crypto.randomUUID() }), 404, 1419);
    expectError(await certs.upload([leaf]), 400, 1400);
    expectError(await certs.get("nope"), 400, 1448);
    expectError(await certs.remove(crypto.randomUUID()), 404, 1449);
    expect((await certs.list()).body.result_info?.total_count).toBe(0);
  });

  it("authorizes like CSRs: Read lists and gets, Write uploads and deletes; zones only", async () => {
    const s = await scope("zones");
    const csr = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const readOnly = certificates(s, await mintToken({ zones: [s.id], readOnly: true }));
    const leaf = await issueLeaf(ecRoot, csr.csr);
    expectError(await readOnly.upload({ certificate: leaf, custom_csr_id: csr.id }), 403, 10000);
    const uploaded = await certificates(s).upload({ certificate: leaf, custom_csr_id: csr.id });
    expect((await readOnly.get(uploaded.body.result.id)).status).toBe(200);
    expect((await readOnly.list()).status).toBe(200);
    expectError(await readOnly.remove(uploaded.body.result.id), 403, 10000);
    expectError(await call("GET", `/client/v4/accounts/${s.id}/custom_certificates`, { token: s.token }), 404, 7000);
  });
});

describe("what an upload says of itself (issue 19, item 8)", () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await createCa("p256v1", "Item Eight CA");
  });

  const auditOf = async (s: Scope) =>
    (await call<Array<{ action: { type: string; result: boolean }; resource: { type: string; id?: string }; metadata: Record<string, unknown> }>>(
      "GET",
      `/client/v4/zones/${s.id}/audit_logs?direction=asc`,
      { token: s.token },
    )).body.result;

  it("a malformed subjectAltName extension is 1440, a dNSName with a control character or '/' is 1439; nothing is stored", async () => {
    const s = await scope("zones");
    const certs = certificates(s);
    const csr = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const garbage = new Uint8Array([0x30, 0x05, 0x82, 0x09, 0x61]).buffer; // a SEQUENCE whose dNSName runs past its end
    expectError(await certs.upload({ certificate: (await issueLeaf(ca, csr.csr, {}, { sanValue: garbage })) + ca.pem, custom_csr_id: csr.id }), 400, 1440);
    for (const host of ["bad\u0001host.customer-one.com", "a/b.customer-one.com", "sp ace.customer-one.com", "x.customer-one.com\n"]) {
      const reply = await certs.upload({ certificate: (await issueLeaf(ca, csr.csr, {}, { dnsNames: ["ok.customer-one.com", host] })) + ca.pem, custom_csr_id: csr.id });
      expectError(reply, 400, 1439);
      expect(reply.body.errors[0]!.message).not.toMatch(/[\u0000-\u001f]/);
    }
    expect((await certs.list()).body.result).toEqual([]);
  });

  it("a lone leaf is stored with message 1462 (no signature on it was checked), and the audit entry says so", async () => {
    const s = await scope("zones");
    const certs = certificates(s);
    const lone = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const uploaded = await certs.upload({ certificate: await issueLeaf(ca, lone.csr), custom_csr_id: lone.id });
    expect(uploaded.status).toBe(200);
    expect(uploaded.body.messages.map((m) => m.code)).toEqual([1462]);
    const chained = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const withChain = await certs.upload({ certificate: (await issueLeaf(ca, chained.csr)) + ca.pem, custom_csr_id: chained.id });
    expect(withChain.body.messages).toEqual([]);
    const creates = (await auditOf(s)).filter((e) => e.resource.type === "custom_certificate" && e.action.type === "create");
    expect(creates.map((e) => e.metadata.chain_checked)).toEqual([false, true]);
  });

  it("the same certificate uploaded again is refused with Cloudflare's 1220, naming the one that holds it; so is an edit to it", async () => {
    const s = await scope("zones");
    const certs = certificates(s);
    const csr = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const pem = (await issueLeaf(ca, csr.csr)) + ca.pem;
    const first = await certs.upload({ certificate: pem, custom_csr_id: csr.id });
    expect(first.status).toBe(200);
    for (let i = 0; i < 20; i++) {
      const again = await certs.upload({ certificate: pem, custom_csr_id: csr.id });
      expectError(again, 400, 1220);
      expect(again.body.errors[0]!.message).toContain(first.body.result.id);
    }
    expect((await certs.list()).body.result_info?.total_count).toBe(1);
    // Another certificate of the same key may not be edited into a copy of the first.
    const second = await certs.upload({ certificate: (await issueLeaf(ca, csr.csr)) + ca.pem, custom_csr_id: csr.id });
    expect(second.status).toBe(200);
    expectError(await call("PATCH", `${certs.base}/${second.body.result.id}`, { token: s.token, body: { certificate: pem } }), 400, 1220);
    // Editing a certificate to its own leaf is no duplicate.
    expect((await call("PATCH", `${certs.base}/${first.body.result.id}`, { token: s.token, body: { certificate: pem } })).status).toBe(200);
  });
});
