// The agent trusts only the service it pinned: pinning rules, signatures
// refused, replays refused, the token kept off the network in the clear,
// replies bounded, and bundles that claim more than they are. Every refusal
// leaves OUT as it was.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { calculateJwkThumbprint } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apiBase, loopback } from "../src/http.ts";
import { type Edge, failure, makeEdge, success } from "./harness.ts";
import { issueLeaf } from "./certificates.ts";

let edge: Edge;
beforeEach(async () => {
  edge = await makeEdge();
});
afterEach(() => edge.close());

const pinned = () => readFileSync(join(edge.dir, "service-key.jwk"), "utf8");
const otherKey = () => JSON.stringify(generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }));
const LISTING = "/client/v4/zones/zone-1/key_delivery/certificates";

describe("pinning the service key", () => {
  it("refuses to sync with no key pinned and none given", async () => {
    edge.service.add("a.example.com");
    expect(failure(await edge.sync({ serviceKey: undefined }))).toMatch(
      /^no service key is pinned in .*\/edge: pass --service-key with the service_key of GET \/admin\/v1\/edges\/\{edge_id\}/,
    );
    expect(edge.service.requests).toEqual([]);
  });

  it("pins the first key given (as JSON or a file, in canonical form), needs no flag afterwards, and refuses any other", async () => {
    edge.service.add("a.example.com");
    const file = join(edge.root, "service.jwk");
    const jwk = JSON.parse(edge.service.serviceKey) as Record<string, string>;
    writeFileSync(file, JSON.stringify({ x: jwk.x, crv: "Ed25519", kty: "OKP", use: "sig" }, null, 2));
    success(await edge.sync({ serviceKey: file }));
    expect(pinned()).toBe(`{"kty":"OKP","crv":"Ed25519","x":"${jwk.x}"}\n`);
    success(await edge.sync({ serviceKey: undefined }));
    success(await edge.sync({ serviceKey: edge.service.serviceKey }));
    expect(failure(await edge.sync({ serviceKey: otherKey() }))).toMatch(/^--service-key is not the key pinned in .*service-key\.jwk: refused/);
  });

  it("refuses a --service-key that is not an Ed25519 public JWK", async () => {
    const ed = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
    const p256 = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" });
    for (const given of [JSON.stringify(ed), JSON.stringify(p256), "{not json"]) {
      expect(failure(await edge.sync({ serviceKey: given }))).toBe(
        "--service-key is not the service's Ed25519 public JWK (service_key of GET /admin/v1/edges/{edge_id})",
      );
    }
    expect(failure(await edge.sync({ serviceKey: join(edge.root, "missing.jwk") }))).toMatch(/^--service-key ".*missing\.jwk" is neither a JWK nor a readable file$/);
  });
});

describe("signatures", () => {
  it("refuses a listing or bundle unsigned, signed by another key, of another type, zone, edge or purpose, or from the future", async () => {
    const a = edge.service.add("a.example.com");
    success(await edge.sync());
    edge.service.renew(a.id);
    const before = edge.files();
    const s = edge.service;
    const stranger = generateKeyPairSync("ed25519").privateKey;
    const now = () => Math.floor(Date.now() / 1000);
    const listed = async () => JSON.parse((await s.answer(LISTING)).body).result as unknown;
    const bundle = async () => s.bundle(s.certificates.get(a.id)!);
    const reply = (result: unknown, signed?: string) => ({ status: 200, body: JSON.stringify({ success: true, errors: [], result, ...(signed ? { signed } : {}) }) });
    const payload = (typ: string, result: unknown, extra = {}) => ({ typ, zone_id: s.zone, edge_id: s.edge, iat: now(), result, ...extra });
    const cases: Array<[string, "list" | "bundle", (result: unknown) => Promise<string | undefined>, RegExp]> = [
      ["unsigned listing", "list", async () => undefined, /^the list is not signed: not a reply of the service this edge pinned/],
      ["listing by another key", "list", (r) => s.sign(payload("custom-csr-delivery/list", r), stranger), /^the list's signature does not verify with the pinned service key: refused, nothing written$/],
      ["listing of another JWS type", "list", (r) => s.sign(payload("custom-csr-delivery/list", r), s.signer, "JWT"), /^the list's signature is of another type: refused$/],
      ["listing for another zone", "list", (r) => s.sign(payload("custom-csr-delivery/list", r, { zone_id: "zone-2" })), /^the signed list is for another zone, edge or purpose: refused$/],
      ["listing for another edge", "list", (r) => s.sign(payload("custom-csr-delivery/list", r, { edge_id: "edge-2" })), /^the signed list is for another zone, edge or purpose: refused$/],
      ["a bundle signed as the listing", "list", (r) => s.sign(payload("custom-csr-delivery/bundle", r)), /^the signed list is for another zone, edge or purpose: refused$/],
      ["listing from the future", "list", (r) => s.sign(payload("custom-csr-delivery/list", r, { iat: now() + 3600 })), /^the signed list has no usable iat$/],
      ["unsigned bundle", "bundle", async () => undefined, /^the bundle is not signed/],
      ["bundle by another key", "bundle", (r) => s.sign(payload("custom-csr-delivery/bundle", r), stranger), /^the bundle's signature does not verify with the pinned service key/],
      ["the listing signed as a bundle", "bundle", (r) => s.sign(payload("custom-csr-delivery/list", r)), /^the signed bundle is for another zone, edge or purpose: refused$/],
    ];
    for (const [name, what, sign, refusal] of cases) {
      s.override = async (path) => {
        if ((path === LISTING) !== (what === "list")) return undefined;
        const result = what === "list" ? await listed() : await bundle();
        return reply(result, await sign(result));
      };
      expect(failure(await edge.sync()), name).toMatch(refusal);
      expect(edge.files(), name).toEqual(before);
    }
  });

  it("acts on the signed payload only, never on the unsigned copy beside it", async () => {
    edge.service.add("a.example.com");
    const s = edge.service;
    s.override = async (path) => {
      if (path !== LISTING) return undefined;
      const genuine = JSON.parse((await s.answer(path)).body) as { signed: string };
      return { status: 200, body: JSON.stringify({ success: true, errors: [], result: [], signed: genuine.signed }) };
    };
    expect(success(await edge.sync())).toMatchObject({ certificates: 1, written: 1 });
  });
});

describe("replays", () => {
  it("refuses a listing older than the last one accepted", async () => {
    edge.service.add("a.example.com");
    const s = edge.service;
    const then = Math.floor(Date.now() / 1000) - 60;
    s.iat = () => then;
    const recorded = await s.answer(LISTING);
    s.iat = () => then + 1;
    success(await edge.sync());
    const before = edge.files();
    s.override = (path) => (path === LISTING ? recorded : undefined);
    expect(failure(await edge.sync())).toBe(`the listing is older than the last one accepted (iat ${then} < ${then + 1}): refused as a replay`);
    expect(edge.files()).toEqual(before);
  });

  it("refuses a bundle of another version than the listing's, or signed long before it", async () => {
    const a = edge.service.add("a.example.com");
    const s = edge.service;
    const old = await s.answer(`${LISTING}/${a.id}`);
    success(await edge.sync());
    const renewed = s.renew(a.id);
    const before = edge.files();
    s.override = (path) => (path === `${LISTING}/${a.id}` ? old : undefined);
    expect(failure(await edge.sync())).toBe(`certificate ${a.id}: the bundle is of modified_on ${a.modified_on}, the listing of ${renewed.modified_on}: refused`);
    expect(edge.files()).toEqual(before);

    s.override = async (path) => {
      if (path !== `${LISTING}/${a.id}`) return undefined;
      return s.envelope("bundle", await s.bundle(renewed), { iat: Math.floor(Date.now() / 1000) - 3600 });
    };
    // Past --max-age it is stale; within a --max-age long enough, it is still older than the listing allows.
    expect(failure(await edge.sync())).toMatch(/^the signed bundle was signed 360\d s ago, more than --max-age 300 s: refused as stale/);
    expect(failure(await edge.sync({ maxAge: 7200 }))).toBe(`certificate ${a.id}: the bundle was signed long before the listing: refused as a replay`);
    expect(edge.files()).toEqual(before);
  });
});

describe("the network", () => {
  it("sends the token over https://, or http:// to this host only", () => {
    expect(apiBase("https://csr.example")).toBe("https://csr.example/client/v4");
    expect(apiBase("https://csr.example/api/v4/")).toBe("https://csr.example/api/v4");
    expect(apiBase("http://127.0.0.2:8787")).toBe("http://127.0.0.2:8787/client/v4");
    expect(apiBase("http://[::1]:8787/client/v4")).toBe("http://[::1]:8787/client/v4");
    expect(() => apiBase("http://csr.example")).toThrow(
      "--url http://csr.example is plain http:// to another host: the token would cross the network in the clear; use https://",
    );
    expect(() => apiBase("http://127.0.0.1.nip.io")).toThrow(/plain http:\/\/ to another host/);
    expect(() => apiBase("ftp://csr.example")).toThrow("--url must be https:// (or http:// to this host), not ftp:");
    expect(() => apiBase("csr.example")).toThrow('--url "csr.example" is not a URL');
    expect([loopback("localhost"), loopback("[::1]"), loopback("127.1.2.3"), loopback("128.0.0.1"), loopback("10.0.0.1")]).toEqual([true, true, true, false, false]);
  });

  it("refuses a reply larger than 16 MiB, declared or streamed, without reading it all", async () => {
    edge.service.add("a.example.com");
    const big = "x".repeat(17 * 1024 * 1024);
    edge.service.override = () => ({ status: 200, body: JSON.stringify({ success: true, result: [], signed: big }) });
    expect(failure(await edge.sync())).toMatch(/^the reply from http:\/\/127\.0\.0\.1:\d+ is larger than 16777216 bytes: refused$/);
    // Without a content-length (chunked), the bound is counted as it arrives.
    edge.service.override = () => ({ status: 200, body: big, headers: { "transfer-encoding": "chunked" } });
    expect(failure(await edge.sync({}, { limits: { maxBytes: 1024, timeoutMs: 10_000 } }))).toMatch(/is larger than 1024 bytes: refused$/);
    expect(edge.files()).toEqual([]);
  });

  it("says which service it cannot reach", async () => {
    const url = edge.service.url;
    await edge.service.close();
    expect(failure(await edge.sync({ base: apiBase(url) }))).toMatch(new RegExp(`^cannot reach ${url.replace(/\./g, "\\.")}: .*ECONNREFUSED`));
  });
});

describe("bundles", () => {
  it("refuses a key sealed to another edge, a header that does not name this context, and a key that is not the certificate's", async () => {
    const a = edge.service.add("a.example.com");
    const s = edge.service;
    const served = s.certificates.get(a.id)!;
    const otherEdge = generateKeyPairSync("x25519").publicKey.export({ format: "jwk" });
    const path = `${LISTING}/${a.id}`;
    const cases: Array<[string, () => Promise<Record<string, unknown>>, RegExp]> = [
      ["sealed to another edge", () => s.bundle(served, otherEdge), /the sealed key does not open with this edge's key \(sealed to another edge, or altered\)$/],
      ["another certificate's id", async () => ({ ...(await s.bundle(served)), id: "00000000-0000-4000-8000-000000000000" }), /the bundle is for another certificate, zone or edge$/],
      ["no sealed key", async () => ({ ...(await s.bundle(served)), sealed_key: undefined }), /the bundle is incomplete$/],
      ["a sealed key of another certificate", async () => {
        const b = s.add("b.example.com");
        s.certificates.delete(b.id);
        const sealed = (await s.bundle({ ...b, id: a.id, modified_on: a.modified_on })).sealed_key;
        return { ...(await s.bundle(served)), sealed_key: sealed };
      }, /the delivered key is not the certificate's$/],
      ["a certificate that does not parse", async () => ({ ...(await s.bundle(served)), certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" }), /the certificate chain does not parse$/],
      ["a chain of another key", async () => ({ ...(await s.bundle(served)), certificate: issueLeaf(s.ca, "a.example.com").pem }), /the delivered key is not the certificate's$/],
    ];
    for (const [name, make, refusal] of cases) {
      s.override = async (p) => (p === path ? s.envelope("bundle", await make()) : undefined);
      const error = failure(await edge.sync());
      expect(error, name).toMatch(new RegExp(`^certificate ${a.id}: `));
      expect(error, name).toMatch(refusal);
      expect(edge.files(), name).toEqual([]);
    }
  });

  it("checks the JWE header's context against this zone, certificate, edge, key and version", async () => {
    const a = edge.service.add("a.example.com");
    const s = edge.service;
    const path = `${LISTING}/${a.id}`;
    const served = s.certificates.get(a.id)!;
    // A key sealed to this edge's key under another context: the header is authenticated (AES-GCM), so it tells.
    const kid = await calculateJwkThumbprint(generateKeyPairSync("x25519").publicKey.export({ format: "jwk" }), "sha256");
    const changes: Array<[string, string, string]> = [
      ["zone_id", "zone-2", "zone-1"],
      ["certificate_id", "00000000-0000-4000-8000-000000000000", a.id],
      ["edge_id", "edge-2", "edge-1"],
      ["kid", kid, await calculateJwkThumbprint(s.edgeJwk, "sha256")],
      ["modified_on", "2031-01-01T00:00:00.000Z", served.modified_on],
      ["cty", "pkcs1", "pkcs8"],
    ];
    for (const [name, value, expected] of changes) {
      s.override = async (p) => (p === path ? s.envelope("bundle", await s.bundle(served, s.edgeJwk, { [name]: value })) : undefined);
      expect(failure(await edge.sync()), name).toBe(`certificate ${a.id}: the sealed key's header has ${name} "${value}", expected "${expected}"`);
      expect(edge.files()).toEqual([]);
    }
  });
});
