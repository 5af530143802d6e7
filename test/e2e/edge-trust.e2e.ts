// The edge agent trusts only the service it pinned (issue 19, item 4): a
// server that is not the service (a wrong --url, DNS, a proxy) cannot hand an
// edge keys of its own, even sealed to the edge's real key; the token never
// crosses the network in the clear; replies are bounded; and an older
// listing or bundle replayed is refused. Every refusal leaves the edge's
// files as they were.
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { type Server, createServer } from "node:http";
import { join } from "node:path";
import { CompactEncrypt, CompactSign, calculateJwkThumbprint, importJWK } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { admin, call, csrBody } from "./api";
import { OPENSSL } from "./checkers";
import { mintToken, scopeId } from "./credentials";
import { type TestServer, freePort, startServer } from "./server";
import { type Ran, edgeAgent, runAsync } from "./tls-edge";

const ZONE = scopeId("trust");
const EDGE = "trust-1";
let server: TestServer;
let work: string;
let dir: string;
let out: string;
let token: string;
let serviceKey: string;
let edgeJwk: Record<string, string>;
let certificateId: string;
let csrId: string;

const files = () => (existsSync(out) ? readdirSync(out).filter((f) => !f.startsWith(".")).sort() : []);
const snapshot = () => files().map((f) => [f, readFileSync(join(out, f), "utf8"), statSync(join(out, f)).mtimeMs]);

function sync(url = server.origin, extra: string[] = ["--service-key", serviceKey], into = dir): Promise<Ran> {
  return edgeAgent(process.execPath, ["sync", "--dir", into, "--url", url, "--token", token, "--zone", ZONE, "--out", out, ...extra]);
}

/** An HTTP server on loopback answering every request with `answer`. */
async function fakeServer(answer: (path: string) => { status: number; body: string }): Promise<{ url: string; close: () => Promise<void> }> {
  const port = await freePort();
  const fake: Server = createServer((req, res) => {
    const { status, body } = answer(req.url ?? "");
    res.writeHead(status, { "content-type": "application/json" }).end(body);
  });
  await new Promise<void>((done) => fake.listen(port, "127.0.0.1", done));
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((done) => fake.close(() => done())) };
}

/** Issues the CSR from a throwaway CA with `serial`; returns leaf + CA. */
async function issue(csrPem: string, serial: string): Promise<string> {
  writeFileSync(join(work, "req.pem"), csrPem);
  const ran = await runAsync(OPENSSL, [
    "x509", "-req", "-in", join(work, "req.pem"), "-CA", join(work, "ca.pem"), "-CAkey", join(work, "ca.key"), "-set_serial", serial,
    "-days", "20", "-sha256", "-copy_extensions", "copy", "-out", join(work, "leaf.pem"),
  ]);
  expect(ran.code, ran.stderr).toBe(0);
  return readFileSync(join(work, "leaf.pem"), "utf8") + readFileSync(join(work, "ca.pem"), "utf8");
}

beforeAll(async () => {
  server = await startServer({ root: inject("e2eRoot"), name: "edge-trust" });
  work = join(server.dir, "trust");
  dir = join(work, "edge");
  out = join(work, "out");
  mkdirSync(work, { recursive: true });
  const ca = await runAsync(OPENSSL, [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(work, "ca.key"),
    "-out", join(work, "ca.pem"), "-subj", "/CN=trust e2e throwaway CA", "-days", "30",
  ]);
  expect(ca.code, ca.stderr).toBe(0);
  const init = await edgeAgent(process.execPath, ["init", "--dir", dir]);
  expect(init.code, init.stderr).toBe(0);
  edgeJwk = JSON.parse(init.stdout.trim().split("\n").at(-1)!);
  const registered = await admin<{ service_key: Record<string, string> }>(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/edges/${EDGE}`, {
    public_key: edgeJwk,
    labels: { country: "DE", region: "WEUR" },
  });
  expect(registered.status, registered.text).toBe(201);
  serviceKey = JSON.stringify(registered.body!.result.service_key);
  token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE], edge: EDGE });
  const writer = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] });
  const host = "shop.trust-customer.com";
  const csr = await call<{ id: string; csr: string }>(server.origin, "POST", `/client/v4/zones/${ZONE}/custom_csrs`, {
    token: writer,
    json: csrBody({ common_name: host, sans: [host] }),
  });
  csrId = csr.body!.result.id;
  const uploaded = await call<{ id: string }>(server.origin, "POST", `/client/v4/zones/${ZONE}/custom_certificates`, {
    token: writer,
    json: { certificate: await issue(csr.body!.result.csr, "0x10"), custom_csr_id: csrId },
  });
  expect(uploaded.status, uploaded.text).toBe(200);
  certificateId = uploaded.body!.result.id;
});

afterAll(() => server?.stop());

describe("the edge agent trusts only the service it pinned", () => {
  it("with no service key pinned and none given, it refuses and says how to pin one", async () => {
    const ran = await sync(server.origin, []);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/no service key is pinned in .*: pass --service-key with the service_key of GET \/admin\/v1\/edges\/\{edge_id\}/);
    expect(files()).toEqual([]);
  });

  it("pins the key on the first sync that gives it, syncs, and later syncs need no flag", async () => {
    const first = await sync();
    expect(first.code, first.stderr).toBe(0);
    expect(files()).toEqual([`${certificateId}.crt`, `${certificateId}.key`]);
    expect(JSON.parse(readFileSync(join(dir, "service-key.jwk"), "utf8"))).toEqual({ kty: "OKP", crv: "Ed25519", x: JSON.parse(serviceKey).x });
    const again = await sync(server.origin, []);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/1 certificates?, 0 written, 1 unchanged/);
  });

  it("refuses a service key other than the pinned one", async () => {
    const other = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" });
    const ran = await sync(server.origin, ["--service-key", JSON.stringify(other)]);
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/--service-key is not the key pinned in/);
  });

  it("a server that is not the service, sealing its own key and certificate to this edge's key, gets nothing written", async () => {
    const before = snapshot();
    // The impostor's own certificate and key, sealed to the edge's real public key: a valid JWE.
    const impostorKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
    writeFileSync(join(work, "impostor.key"), impostorKey.privateKey.export({ format: "pem", type: "pkcs8" }), { mode: 0o600 });
    const made = await runAsync(OPENSSL, ["req", "-x509", "-key", join(work, "impostor.key"), "-subj", "/CN=shop.trust-customer.com", "-days", "5"]);
    expect(made.code, made.stderr).toBe(0);
    const thumbprint = await calculateJwkThumbprint(edgeJwk as never, "sha256");
    const modified_on = new Date(Date.now() + 60_000).toISOString();
    const sealed = await new CompactEncrypt(new Uint8Array(impostorKey.privateKey.export({ format: "der", type: "pkcs8" })))
      .setProtectedHeader({ alg: "ECDH-ES", enc: "A256GCM", cty: "pkcs8", kid: thumbprint, zone_id: ZONE, certificate_id: certificateId, edge_id: EDGE, modified_on })
      .encrypt(await importJWK(edgeJwk as never, "ECDH-ES"));
    const listing = [{ id: certificateId, hosts: ["shop.trust-customer.com"], expires_on: "2030-01-01T00:00:00.000Z", modified_on }];
    const bundle = { id: certificateId, zone_id: ZONE, edge_id: EDGE, hosts: listing[0]!.hosts, expires_on: listing[0]!.expires_on, modified_on, certificate: made.stdout, sealed_key: sealed };
    // Signed with the impostor's own Ed25519 key, as a server that is not ours would have to.
    const impostorSigner = generateKeyPairSync("ed25519").privateKey;
    const sign = (typ: string, result: unknown) =>
      new CompactSign(Buffer.from(JSON.stringify({ typ, zone_id: ZONE, edge_id: EDGE, iat: Math.floor(Date.now() / 1000), result })))
        .setProtectedHeader({ alg: "EdDSA", typ: "custom-csr-delivery+jws" })
        .sign(impostorSigner);
    const signedListing = await sign("custom-csr-delivery/list", listing);
    const signedBundle = await sign("custom-csr-delivery/bundle", bundle);
    for (const [name, signed, message] of [
      ["signed by another key", true, /the list's signature does not verify with the pinned service key/],
      ["unsigned", false, /the list is not signed/],
    ] as const) {
      const impostor = await fakeServer((path) => {
        const isBundle = path.endsWith(certificateId);
        const body = { success: true, errors: [], messages: [], result: isBundle ? bundle : listing, ...(signed ? { signed: isBundle ? signedBundle : signedListing } : {}) };
        return { status: 200, body: JSON.stringify(body) };
      });
      try {
        const ran = await sync(impostor.url);
        expect(ran.code, name).toBe(1);
        expect(ran.stderr, name).toMatch(message);
      } finally {
        await impostor.close();
      }
      expect(snapshot(), name).toEqual(before);
    }
    expect(readFileSync(join(out, `${certificateId}.key`), "utf8")).not.toBe(impostorKey.privateKey.export({ format: "pem", type: "pkcs8" }));
  });

  it("never sends the token over plain http:// to another host", async () => {
    const ran = await sync("http://csr.trust-customer.invalid");
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/plain http:\/\/ to another host: the token would cross the network in the clear; use https:\/\//);
  });

  it("refuses a reply larger than its bound without reading it all", async () => {
    const before = snapshot();
    const huge = await fakeServer(() => ({ status: 200, body: JSON.stringify({ success: true, result: [], signed: "x".repeat(17 * 1024 * 1024) }) }));
    try {
      const ran = await sync(huge.url);
      expect(ran.code).toBe(1);
      expect(ran.stderr).toMatch(/is larger than 16777216 bytes: refused/);
    } finally {
      await huge.close();
    }
    expect(snapshot()).toEqual(before);
  });

  it("an older listing or bundle replayed is refused: modified_on never goes backwards", async () => {
    // The service's signed replies as they are now, recorded to be replayed after a renewal.
    const recorded = new Map<string, string>();
    for (const path of ["", `/${certificateId}`]) {
      const reply = await fetch(`${server.origin}/client/v4/zones/${ZONE}/key_delivery/certificates${path}`, { headers: { authorization: `Bearer ${token}` } });
      recorded.set(path, await reply.text());
    }
    const writer = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] });
    const csr = await call<{ csr: string }>(server.origin, "GET", `/client/v4/zones/${ZONE}/custom_csrs/${csrId}`, { token: writer });
    const renewed = await call(server.origin, "PATCH", `/client/v4/zones/${ZONE}/custom_certificates/${certificateId}`, {
      token: writer,
      json: { certificate: await issue(csr.body!.result.csr, "0x20") },
    });
    expect(renewed.status, renewed.text).toBe(200);
    await new Promise((r) => setTimeout(r, 1100)); // the next listing is signed a second later
    const current = await sync();
    expect(current.code, current.stderr).toBe(0);
    expect(current.stdout).toMatch(/1 written/);
    const before = snapshot();

    // The whole old exchange replayed: its listing is older than the one accepted.
    const replay = await fakeServer((path) => ({ status: 200, body: recorded.get(path.endsWith(certificateId) ? `/${certificateId}` : "")! }));
    try {
      const ran = await sync(replay.url);
      expect(ran.code).toBe(1);
      expect(ran.stderr).toMatch(/the listing is older than the last one accepted .*: refused as a replay/);
    } finally {
      await replay.close();
    }
    expect(snapshot()).toEqual(before);

    // The current listing with the old bundle (the agent fetches it once its files changed on disk):
    // the bundle's version is not the listing's.
    const port = await freePort();
    const mixed = createServer(async (req, res) => {
      const path = req.url ?? "";
      const text = path.endsWith(certificateId)
        ? recorded.get(`/${certificateId}`)!
        : await (await fetch(`${server.origin}${path}`, { headers: { authorization: String(req.headers.authorization) } })).text();
      res.writeHead(200, { "content-type": "application/json" }).end(text);
    });
    await new Promise<void>((done) => mixed.listen(port, "127.0.0.1", done));
    try {
      writeFileSync(join(out, `${certificateId}.crt`), "changed on disk\n");
      const ran = await sync(`http://127.0.0.1:${port}`);
      expect(ran.code).toBe(1);
      expect(ran.stderr).toMatch(/the bundle is of modified_on .*, the listing of .*: refused/);
      expect(readFileSync(join(out, `${certificateId}.crt`), "utf8")).toBe("changed on disk\n");
    } finally {
      await new Promise((done) => mixed.close(done));
    }
  });
});
