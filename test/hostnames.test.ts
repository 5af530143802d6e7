// Custom hostnames (Cloudflare for SaaS's API, the SDK's customHostnames):
// a custom CSR's certificate on a hostname, the hostname's uniqueness across
// zones, its body checks in Cloudflare's codes, lists with the SDK's filters,
// the quota and the fallback origin.
import { env, exports } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { CustomHostnameRecord } from "../src/hostnames/hostname-records";
import { type Reply, adminHeaders, call, csrBody, expectError, scope } from "./shared";
import { type TestCa, createCa, issueLeaf } from "./test-ca";
import { delivery, edgeToken, registerEdge } from "./edges";
import { compactDecrypt } from "jose";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import { fromPemBlocks } from "../src/pki/pem";

type Zone = Awaited<ReturnType<typeof scope>>;

let ca: TestCa;
beforeAll(async () => {
  ca = await createCa("p256v1", "Hostname Test CA");
});

const hostnames = (z: Zone) => {
  const base = `/client/v4/zones/${z.id}/custom_hostnames`;
  return {
    create: (body: unknown): Promise<Reply<CustomHostnameRecord>> => call("POST", base, { token: z.token, body }),
    list: (query = ""): Promise<Reply<CustomHostnameRecord[]>> => call("GET", `${base}${query}`, { token: z.token }),
    get: (id: string): Promise<Reply<CustomHostnameRecord>> => call("GET", `${base}/${id}`, { token: z.token }),
    edit: (id: string, body: unknown): Promise<Reply<CustomHostnameRecord>> => call("PATCH", `${base}/${id}`, { token: z.token, body }),
    remove: (id: string) => call<unknown>("DELETE", `${base}/${id}`, { token: z.token }),
  };
};

const unique = () => crypto.randomUUID().slice(0, 8);

/** A custom CSR for `host` in the zone, and a certificate the test CA signed for it. */
async function csrCertificate(z: Zone, host: string, names?: string[]) {
  const csr = (await z.create(csrBody({ key_type: "p256v1", common_name: host.replace(/^\*\./, "w."), sans: names ?? [host] }))).body.result;
  expect(csr.id).toBeTruthy();
  const pem = (await issueLeaf(ca, csr.csr)) + ca.pem;
  return { csr, pem };
}

describe("custom hostnames with a custom CSR's certificate", () => {
  it("creates (201), reads, lists, edits (202) and deletes (bare {id}) one; the certificate is active at once", async () => {
    const z = await scope("zones");
    const host = `app-${unique()}.customer-one.com`;
    const { csr, pem } = await csrCertificate(z, host);
    const made = await hostnames(z).create({ hostname: host, custom_metadata: { plan: "gold" }, ssl: { custom_csr_id: csr.id, custom_certificate: pem } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const record = made.body.result;
    expect(record).toMatchObject({
      hostname: host,
      status: "active",
      custom_metadata: { plan: "gold" },
      verification_errors: [],
      ssl: { status: "active", custom_csr_id: csr.id, hosts: [host], bundle_method: "ubiquitous", wildcard: false, settings: {}, issuer: "Hostname Test CA" },
    });
    expect(record.ssl!.serial_number).toMatch(/^\d+$/);
    expect(record.ssl!.custom_certificate).toContain("BEGIN CERTIFICATE");
    expect(Object.keys(record)).toEqual(["id", "hostname", "created_at", "status", "verification_errors", "custom_metadata", "ssl"]);
    expect((await hostnames(z).get(record.id)).body.result).toEqual(record);
    expect((await hostnames(z).list()).body.result).toEqual([record]);

    const edited = await hostnames(z).edit(record.id, { custom_metadata: { plan: "silver" }, custom_origin_server: "origin.customer-one.com" });
    expect(edited.status).toBe(202);
    expect(edited.body.result).toMatchObject({ custom_metadata: { plan: "silver" }, custom_origin_server: "origin.customer-one.com" });

    // The CSR cannot go while the hostname uses it (1420).
    expectError(await z.remove(csr.id), 409, 1420);
    const removed = await hostnames(z).remove(record.id);
    expect({ status: removed.status, body: removed.body }).toEqual({ status: 200, body: { id: record.id } });
    expectError(await hostnames(z).get(record.id), 404, 1436);
    expect((await z.remove(csr.id)).status).toBe(200);
  });

  it("a hostname exists once across the deployment: another zone's create is 409 (1406), not retried by the SDK; free again after a delete", async () => {
    const a = await scope("zones");
    const b = await scope("zones");
    const host = `shop-${unique()}.customer-two.com`;
    const first = await csrCertificate(a, host);
    const second = await csrCertificate(b, host);
    const made = await hostnames(a).create({ hostname: host, ssl: { custom_csr_id: first.csr.id, custom_certificate: first.pem } });
    expect(made.status).toBe(201);
    const taken = await hostnames(b).create({ hostname: host.toUpperCase(), ssl: { custom_csr_id: second.csr.id, custom_certificate: second.pem } });
    expectError(taken, 409, 1406);
    expect(taken.headers.get("x-should-retry")).toBe("false");
    expectError(await hostnames(a).create({ hostname: host }), 409, 1406);
    await hostnames(a).remove(made.body.result.id);
    expect((await hostnames(b).create({ hostname: host, ssl: { custom_csr_id: second.csr.id, custom_certificate: second.pem } })).status).toBe(201);
  });

  it("a certificate must name the hostname (1446), be for the CSR's key (1429), parse (1426); a wildcard certificate covers one label", async () => {
    const z = await scope("zones");
    const host = `api-${unique()}.customer-one.com`;
    const { csr, pem } = await csrCertificate(z, host);
    expectError(await hostnames(z).create({ hostname: `other-${unique()}.customer-one.com`, ssl: { custom_csr_id: csr.id, custom_certificate: pem } }), 400, 1446);
    const other = await csrCertificate(z, `x-${unique()}.customer-one.com`);
    expectError(await hostnames(z).create({ hostname: host, ssl: { custom_csr_id: csr.id, custom_certificate: other.pem } }), 400, 1429);
    expectError(await hostnames(z).create({ hostname: host, ssl: { custom_csr_id: csr.id, custom_certificate: "not a certificate" } }), 400, 1426);
    expectError(await hostnames(z).create({ hostname: host, ssl: { custom_csr_id: crypto.randomUUID(), custom_certificate: pem } }), 404, 1431);
    const wild = await csrCertificate(z, `*.w${unique()}.customer-one.com`);
    const under = wild.csr.sans[0]!.replace("*", "shop");
    expect((await hostnames(z).create({ hostname: under, ssl: { custom_csr_id: wild.csr.id, custom_certificate: wild.pem } })).status).toBe(201);
    expectError(await hostnames(z).create({ hostname: `a.${under}`, ssl: { custom_csr_id: wild.csr.id, custom_certificate: wild.pem } }), 400, 1446);
    expect((await hostnames(z).list()).body.result).toHaveLength(1);
  });
});

describe("custom hostname bodies: Cloudflare's codes, nothing written", () => {
  it("refuses each malformed body with its documented code", async () => {
    const z = await scope("zones");
    const h = hostnames(z);
    const cases: Array<[unknown, number, number]> = [
      ["[]", 400, 1400],
      [{}, 400, 1407],
      [{ hostname: "192.0.2.1" }, 400, 1407],
      [{ hostname: "bad host.customer-one.com" }, 400, 1407],
      [{ hostname: "bücher.customer-one.com" }, 400, 1408],
      [{ hostname: "app.localhost" }, 400, 1409],
      [{ hostname: "co.uk" }, 400, 1410],
      [{ hostname: "www.example.com" }, 400, 1411],
      [{ hostname: "ok.customer-one.com", custom_metadata: { a: 1 } }, 400, 1401],
      [{ hostname: "ok.customer-one.com", custom_metadata: { a: "x".repeat(5000) } }, 400, 1401],
      [{ hostname: "ok.customer-one.com", custom_origin_server: "*.origin.customer-one.com" }, 400, 1420],
      [{ hostname: "ok.customer-one.com", custom_origin_server: "origin.example.org" }, 400, 1419],
      [{ hostname: "ok.customer-one.com", ssl: "dv" }, 400, 1434],
      [{ hostname: "ok.customer-one.com", ssl: { method: "email", type: "dv" } }, 400, 1432],
      [{ hostname: "ok.customer-one.com", ssl: { method: "cname", type: "dv" } }, 400, 1432],
      [{ hostname: "ok.customer-one.com", ssl: { method: "txt", type: "ov" } }, 400, 1433],
      [{ hostname: "ok.customer-one.com", ssl: { method: "txt" } }, 400, 1440],
      [{ hostname: "ok.customer-one.com", ssl: { method: "txt", type: "dv", bundle_method: "best" } }, 400, 1449],
      [{ hostname: "ok.customer-one.com", ssl: { method: "txt", type: "dv", settings: { http2: "yes" } } }, 400, 1422],
      [{ hostname: "ok.customer-one.com", ssl: { method: "txt", type: "dv", settings: { min_tls_version: "1.3", ciphers: ["ECDHE-RSA-AES128-GCM-SHA256"] } } }, 400, 1443],
      [{ hostname: "ok.customer-one.com", ssl: { custom_key: "-----BEGIN PRIVATE KEY-----" } }, 400, 1450],
      [{ hostname: "ok.customer-one.com", ssl: { custom_certificate: "-----BEGIN CERTIFICATE-----" } }, 400, 1451],
      [{ hostname: "ok.customer-one.com", ssl: { custom_csr_id: "nope", custom_certificate: "x" } }, 400, 1430],
      [{ hostname: "ok.customer-one.com", ssl: { custom_csr_id: crypto.randomUUID() } }, 400, 1427],
      [{ hostname: "*.ok.customer-one.com", ssl: { method: "http", type: "dv" } }, 400, 1452],
      [{ hostname: "ok.customer-one.com", ssl: { method: "http", type: "dv", wildcard: true } }, 400, 1452],
    ];
    for (const [body, status, code] of cases) {
      const reply = typeof body === "string" ? await call("POST", `/client/v4/zones/${z.id}/custom_hostnames`, { token: z.token, rawBody: body, headers: { "content-type": "application/json" } }) : await h.create(body);
      expectError(reply, status, code);
    }
    expect((await h.list()).body.result).toEqual([]);
    const made = await h.create({ hostname: `keep-${unique()}.customer-one.com` });
    expect(made.status).toBe(201);
    expectError(await h.edit(made.body.result.id, { hostname: "other.customer-one.com" }), 409, 1439);
    expectError(await h.get("not-an-id"), 400, 1435);
    expectError(await h.get(crypto.randomUUID()), 404, 1436);
    // Accounts have no custom hostnames.
    const account = await scope("accounts");
    expectError(await call("GET", `/client/v4/accounts/${account.id}/custom_hostnames`, { token: account.token }), 404, 7000);
  });
});

describe("custom hostname lists: the SDK's filters and paging", () => {
  it("filters by hostname (exact, contain, startsWith), id alone (1438), ssl, status, wildcard; pages past the end are empty", async () => {
    const z = await scope("zones");
    const h = hostnames(z);
    const tag = unique();
    const names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"].map((n) => `${n}-${tag}.customer-one.com`);
    const ids: string[] = [];
    for (const name of names) ids.push((await h.create({ hostname: name })).body.result.id);
    const { csr, pem } = await csrCertificate(z, `eta-${tag}.customer-one.com`);
    const active = (await h.create({ hostname: `eta-${tag}.customer-one.com`, ssl: { custom_csr_id: csr.id, custom_certificate: pem } })).body.result;
    expect((await h.list(`?hostname.exact=${names[1]}`)).body.result.map((r) => r.hostname)).toEqual([names[1]]);
    expect((await h.list(`?hostname=${names[1]}`)).body.result.map((r) => r.hostname)).toEqual([names[1]]);
    expect((await h.list(`?hostname.contain=eta-${tag}`)).body.result.map((r) => r.hostname)).toEqual([names[1], names[5], active.hostname]);
    expect((await h.list(`?hostname.startsWith=ze`)).body.result.map((r) => r.hostname)).toEqual([names[5]]);
    expect((await h.list(`?id=${ids[2]}`)).body.result.map((r) => r.id)).toEqual([ids[2]]);
    expectError(await h.list(`?id=${ids[2]}&hostname.exact=${names[2]}`), 400, 1438);
    expect((await h.list("?ssl=1")).body.result.map((r) => r.id)).toEqual([active.id]);
    expect((await h.list("?ssl_status=active")).body.result.map((r) => r.id)).toEqual([active.id]);
    expect((await h.list("?hostname_status=pending")).body.result).toHaveLength(6);
    expect((await h.list("?wildcard=false&per_page=5")).body.result).toHaveLength(5);
    const page2 = await h.list("?per_page=5&page=2");
    expect(page2.body.result).toHaveLength(2);
    expect(page2.body.result_info).toEqual({ count: 2, page: 2, per_page: 5, total_count: 7, total_pages: 2 });
    expect((await h.list("?per_page=5&page=3")).body.result).toEqual([]);
    expect((await h.list("?direction=desc&per_page=5")).body.result[0]!.id).toBe(active.id);
    expectError(await h.list("?per_page=4"), 400, 1437);
    expectError(await h.list("?ssl_status=shiny"), 400, 1437);
    expectError(await h.list("?wildcard=maybe"), 400, 1437);
  });
});

describe("quota and fallback origin", () => {
  it("the quota counts every hostname; past the allocation a create succeeds with a message, at the hard cap it is 403 (1405)", async () => {
    const z = await scope("zones");
    const h = hostnames(z);
    const quota = () => call<{ allocated: number; used: number; exceeded: boolean; hard_cap: number }>("GET", `/client/v4/zones/${z.id}/custom_hostnames/quota`, { token: z.token });
    expect((await quota()).body.result).toEqual({ allocated: 10000, exceeded: false, hard_cap: 20000, used: 0 });
    expect((await call("PUT", `/admin/v1/zones/${z.id}/custom_hostnames/quota`, { headers: adminHeaders, body: { allocated: 1, hard_cap: 2 } })).status).toBe(200);
    const first = await h.create({ hostname: `q1-${unique()}.customer-one.com` });
    expect(first.body.messages).toEqual([]);
    const second = await h.create({ hostname: `q2-${unique()}.customer-one.com` });
    expect(second.status).toBe(201);
    expect(second.body.messages.map((m) => m.code)).toEqual([1463]);
    expect((await quota()).body.result).toEqual({ allocated: 1, exceeded: true, hard_cap: 2, used: 2 });
    const third = `q3-${unique()}.customer-one.com`;
    expectError(await h.create({ hostname: third }), 403, 1405);
    // The refused name is not left claimed: another zone may take it.
    const other = await scope("zones");
    expect((await hostnames(other).create({ hostname: third })).status).toBe(201);
    expect((await call("PUT", `/admin/v1/zones/${z.id}/custom_hostnames/quota`, { headers: adminHeaders, body: { allocated: 0, hard_cap: 0 } })).status).toBe(200);
    expectError(await h.create({ hostname: `q4-${unique()}.customer-one.com` }), 403, 1404);
    expectError(await call("PUT", `/admin/v1/zones/${z.id}/custom_hostnames/quota`, { headers: adminHeaders, body: { allocated: 3, hard_cap: 2 } }), 400, 1430);
  });

  it("the fallback origin is set, read and deleted as the SDK expects (enveloped, also on delete)", async () => {
    const z = await scope("zones");
    const base = `/client/v4/zones/${z.id}/custom_hostnames/fallback_origin`;
    expect((await call("GET", base, { token: z.token })).body.result).toEqual({});
    const set = await call<{ origin: string; status: string }>("PUT", base, { token: z.token, body: { origin: "Fallback.Customer-One.com" } });
    expect(set.body.result).toMatchObject({ origin: "fallback.customer-one.com", status: "active", errors: [] });
    expect((await call("GET", base, { token: z.token })).body.result).toMatchObject({ origin: "fallback.customer-one.com" });
    expectError(await call("PUT", base, { token: z.token, body: { origin: "*.bad.customer-one.com" } }), 400, 1420);
    const removed = await call<{ status: string }>("DELETE", base, { token: z.token });
    expect(removed.body.result).toMatchObject({ origin: "fallback.customer-one.com", status: "pending_deletion" });
    expect((await call("GET", base, { token: z.token })).body.result).toEqual({});
  });
});

describe("http-01 answers", () => {
  it("answer 404 for anything but a pending challenge of the hostname in Host, without credentials", async () => {
    const reply = await call("GET", "/.well-known/acme-challenge/abcdefghijklmnopqrstuvwxyz012345", { headers: { host: "nobody.customer-one.com" } });
    expectError(reply, 404, 7000);
    expectError(await call("GET", "/.well-known/acme-challenge/short", { headers: { host: "nobody.customer-one.com" } }), 404, 7000);
    // A challenge published for one hostname answers for it only, and not once withdrawn.
    const host = `chal-${unique()}.customer-one.com`;
    const token = "T".repeat(43);
    const { hostnameShardName } = await import("../src/hostnames/shard");
    const registry = env.HOSTNAMES.get(env.HOSTNAMES.idFromName(hostnameShardName(host)));
    const claim = { zone_id: "zone-x", custom_hostname_id: crypto.randomUUID() };
    expect((await registry.claim(host, claim)).ok).toBe(true);
    expect(await registry.putChallenge(host, claim, token, `${token}.thumbprint`, new Date(Date.now() + 60_000).toISOString())).toEqual({ ok: true, value: { published: true } });
    const answer = await exports.default.fetch(new Request(`https://api.test/.well-known/acme-challenge/${token}`, { headers: { host } }));
    expect({ status: answer.status, type: answer.headers.get("content-type"), body: await answer.text() }).toEqual({ status: 200, type: "text/plain; charset=utf-8", body: `${token}.thumbprint` });
    expectError(await call("GET", `/.well-known/acme-challenge/${token}`, { headers: { host: `other-${host}` } }), 404, 7000);
    await registry.dropChallenges(claim);
    expectError(await call("GET", `/.well-known/acme-challenge/${token}`, { headers: { host } }), 404, 7000);
    // An expired answer is never served, and is purged when the shard next publishes one.
    const stale = "S".repeat(43);
    await registry.putChallenge(host, claim, stale, `${stale}.thumbprint`, new Date(Date.now() - 1_000).toISOString());
    expectError(await call("GET", `/.well-known/acme-challenge/${stale}`, { headers: { host } }), 404, 7000);
    await registry.putChallenge(host, claim, token, `${token}.thumbprint`, new Date(Date.now() + 60_000).toISOString());
    const { runInDurableObject } = await import("cloudflare:test");
    await runInDurableObject(registry, async (_, state) => {
      expect(state.storage.sql.exec("SELECT token FROM challenges WHERE hostname = ?", host).toArray().map((r) => r.token)).toEqual([token]);
    });
  });
});

describe("custom hostnames reach the edges", () => {
  it("a hostname with a custom CSR's certificate is listed by name to every registered edge, its key sealed to the edge; deleting it withdraws it", async () => {
    const z = await scope("zones");
    const host = `edge-${unique()}.customer-one.com`;
    const { csr, pem } = await csrCertificate(z, host);
    const made = (await hostnames(z).create({ hostname: host, ssl: { custom_csr_id: csr.id, custom_certificate: pem } })).body.result;
    const edge = await registerEdge({ country: "DE", region: "WEUR" });
    const d = delivery(z.id, await edgeToken(edge.id, [z.id]));
    const listed = (await d.list()).body.result;
    expect(listed).toEqual([{ id: made.id, hostname: host, hosts: [host], expires_on: made.ssl!.expires_on, modified_on: expect.any(String) }]);
    const bundle = (await d.get(made.id)).body.result;
    expect(bundle).toMatchObject({ id: made.id, hostname: host, certificate: made.ssl!.custom_certificate });
    const { plaintext, protectedHeader } = await compactDecrypt(bundle.sealed_key, edge.privateKey);
    expect(protectedHeader).toMatchObject({ certificate_id: made.id, zone_id: z.id, edge_id: edge.id });
    // The delivered key is the CSR's: it signs what the certificate's key verifies.
    const privateKey = await crypto.subtle.importKey("pkcs8", plaintext, { name: "ECDSA", namedCurve: "P-256" }, false, ["sign"]);
    const leaf = AsnConvert.parse(fromPemBlocks("CERTIFICATE", bundle.certificate)![0]!, Certificate);
    const publicKey = await crypto.subtle.importKey("spki", AsnConvert.serialize(leaf.tbsCertificate.subjectPublicKeyInfo), { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
    const challenge = crypto.getRandomValues(new Uint8Array(32));
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, challenge);
    expect(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, publicKey, signature, challenge)).toBe(true);
    // A hostname without a certificate is not listed.
    await hostnames(z).create({ hostname: `bare-${unique()}.customer-one.com` });
    expect((await d.list()).body.result.map((c) => c.id)).toEqual([made.id]);
    await hostnames(z).remove(made.id);
    expect((await d.list()).body.result).toEqual([]);
    expectError(await d.get(made.id), 404, 1449);
  });
});
