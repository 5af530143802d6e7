// Keys that serve TLS: a CSR of each key type, signed by a throwaway CA
// (OpenSSL), uploaded with a policy through the official SDK; an edge made
// with `edge init` and registered by the operator; `edge sync` into the
// directory a real nginx serves from; and `openssl s_client` verifying the
// handshake and the leaf. Then a renewal through the SDK's edit, a sync that
// reloads nginx, and the new serial served (timed, reported, never asserted).
// Refusals and custody are checked on the real server, the real agent and
// the server's SQLite files.
import { spawn } from "node:child_process";
import { createPrivateKey } from "node:crypto";
import { readFileSync, readdirSync, statSync, existsSync, writeFileSync, mkdirSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { join } from "node:path";
import Cloudflare from "cloudflare";
import { compactDecrypt } from "jose";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { admin, call } from "./api";
import { OPENSSL } from "./checkers";
import { mintToken, scopeId } from "./credentials";
import { sdkClient } from "./sdk-client";
import { REPO_ROOT, type TestServer, freePort, startServer } from "./server";
import { type Nginx, type Ran, edgeAgent, edgeAgentBin, handshake, otherNode, runAsync, startNginx } from "./tls-edge";

const ZONE = scopeId("edge");
const POLICY = "(region: EU) and (not country: FR)";
const KEY_TYPES = ["p256v1", "rsa2048"] as const;
type KeyType = (typeof KEY_TYPES)[number];

let server: TestServer;
let client: Cloudflare;
let work: string;
let caFile: string;
let node20: { path: string; version: string } | null;
let nginx: Nginx | null = null;
/** The service's signing key, as the operator reads it (GET /admin/v1/service_key) and every edge pins it. */
let serviceKey: string;
/** Every reply body and agent output of the run, searched for key material at the end. */
const seen: string[] = [];

interface Site {
  keyType: KeyType;
  host: string;
  csrId: string;
  certificateId: string;
  leaf: string;
}
const sites: Site[] = [];

interface Edge {
  id: string;
  dir: string;
  token: string;
}

function recorded(ran: Ran): Ran {
  seen.push(ran.stdout, ran.stderr);
  return ran;
}

/** `edge sync` for an edge into `out`, with Node `node` (the suite's own by default), pinning the service key. */
function sync(edge: Edge, out: string, extra: string[] = [], node = process.execPath, url = server.origin): Promise<Ran> {
  return edgeAgent(node, ["sync", "--dir", edge.dir, "--url", url, "--token", edge.token, "--zone", ZONE, "--out", out, "--service-key", serviceKey, ...extra]).then(
    recorded,
  );
}

/** `edge init` into a fresh directory; returns the public JWK it printed last. */
async function init(name: string, node = process.execPath): Promise<{ dir: string; jwk: Record<string, string> }> {
  const dir = join(work, "edges", name);
  const ran = recorded(await edgeAgent(node, ["init", "--dir", dir]));
  expect(ran.code, ran.stderr).toBe(0);
  const lines = ran.stdout.trim().split("\n");
  const jwk = JSON.parse(lines[lines.length - 1]!) as Record<string, string>;
  expect(jwk).not.toHaveProperty("d");
  expect(statSync(join(dir, "edge-key.pem")).mode & 0o777).toBe(0o600);
  expect(ran.stdout + ran.stderr).not.toMatch(/PRIVATE KEY/);
  return { dir, jwk };
}

async function register(id: string, jwk: Record<string, string>, labels: Record<string, unknown>): Promise<void> {
  const reply = await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/edges/${id}`, { public_key: jwk, labels });
  expect(reply.status, reply.text).toBe(201);
}

/** Issues a certificate for the CSR from the throwaway CA, with the given serial; returns the leaf PEM. */
async function issue(csrPem: string, name: string, serial: string, days: number): Promise<string> {
  const csrPath = join(work, `${name}.csr.pem`);
  const certPath = join(work, `${name}.crt.pem`);
  writeFileSync(csrPath, csrPem);
  const ran = await runAsync(OPENSSL, [
    "x509", "-req", "-in", csrPath, "-CA", caFile, "-CAkey", join(work, "ca.key"), "-set_serial", serial,
    "-days", String(days), "-sha256", "-copy_extensions", "copy", "-out", certPath,
  ]);
  expect(ran.code, ran.stderr).toBe(0);
  return readFileSync(certPath, "utf8");
}

const files = (out: string) => (existsSync(out) ? readdirSync(out).filter((f) => !f.startsWith(".")).sort() : []);
const snapshot = (out: string) => files(out).map((f) => [f, readFileSync(join(out, f), "utf8"), statSync(join(out, f)).mtimeMs]);

/**
 * An HTTP proxy to the server that lets a test rewrite delivery bundles on
 * their way to the agent: the reply's result and the result inside its
 * signed payload alike (the signature, which the proxy cannot make, stays as
 * it was), or, with `unsign`, the reply without its signature.
 */
async function tamperingProxy(
  rewrite: (bundle: Record<string, unknown>) => Record<string, unknown>,
  { unsign = false } = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const port = await freePort();
  const proxy: Server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    const upstream = await fetch(`${server.origin}${req.url}`, { headers: { authorization: req.headers.authorization ?? "" } });
    let text = await upstream.text();
    if (/\/key_delivery\/certificates\/[^/]+$/.test(req.url ?? "") && upstream.ok) {
      const body = JSON.parse(text) as { result: Record<string, unknown>; signed?: string };
      const [header, payload, signature] = String(body.signed).split(".");
      const signedPayload = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8")) as { result: Record<string, unknown> };
      const forged = Buffer.from(JSON.stringify({ ...signedPayload, result: rewrite(signedPayload.result) })).toString("base64url");
      const { signed: _, ...unsigned } = body;
      text = JSON.stringify(unsign ? { ...unsigned, result: rewrite(body.result) } : { ...body, result: rewrite(body.result), signed: `${header}.${forged}.${signature}` });
    }
    res.writeHead(upstream.status, { "content-type": "application/json" }).end(text);
  });
  await new Promise<void>((done) => proxy.listen(port, "127.0.0.1", done));
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((done) => proxy.close(() => done())) };
}

describe("keys that serve TLS: sealed delivery to a registered edge, served by nginx", () => {
  const out = () => join(work, "nginx", "certs");
  let edgeA: Edge;

  beforeAll(async () => {
    server = await startServer({ root: inject("e2eRoot"), name: "edge-nginx" });
    client = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] }) });
    work = join(server.dir, "edge");
    mkdirSync(work, { recursive: true });
    caFile = join(work, "ca.pem");
    const ca = await runAsync(OPENSSL, [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(work, "ca.key"),
      "-out", caFile, "-subj", "/O=Edge Test CA/CN=edge e2e throwaway CA", "-days", "30",
    ]);
    expect(ca.code, ca.stderr).toBe(0);
    node20 = await otherNode();
    const key = await admin<{ service_key: Record<string, string> }>(server.origin, server.secrets.ADMIN_SECRET, "GET", "/service_key");
    expect(key.status, key.text).toBe(200);
    serviceKey = JSON.stringify(key.body!.result.service_key);
  });

  afterAll(async () => {
    await nginx?.stop();
    await server?.stop();
  });

  it("delivers nothing until the operator registers the edge (1474)", async () => {
    const { dir, jwk } = await init("edge-a", node20?.path);
    // The operator's token tool, signing with the server's secret from the environment.
    const minted = await runAsync(process.execPath, [join(REPO_ROOT, "scripts", "token.mjs"), "--edge", "fra-a1", "--zone", ZONE], {
      env: { ...process.env, API_TOKEN_SECRET: server.secrets.API_TOKEN_SECRET },
    });
    expect(minted.code, minted.stderr).toBe(0);
    edgeA = { id: "fra-a1", dir, token: minted.stdout.trim() };
    const ran = await sync(edgeA, out());
    expect(ran.code).toBe(1);
    expect(ran.stderr).toMatch(/listing failed: 403 1474/);
    expect(files(out())).toEqual([]);
    await register(edgeA.id, jwk, { country: "DE", region: "WEUR" });
  });

  it("syncs a p256v1 and an rsa2048 key into nginx: the handshakes verify and serve the uploaded leaves", async () => {
    for (const [i, keyType] of KEY_TYPES.entries()) {
      const host = `${keyType}.edge.customer-eight.com`;
      const csr = await client.customCsrs.create({
        zone_id: ZONE, common_name: host, country: "DE", state: "Hessen", locality: "Frankfurt",
        organization: "Customer Eight", sans: [host], key_type: keyType,
      });
      const leaf = await issue(csr.csr!, `${keyType}-1`, `0x${(0x1000 + i).toString(16)}`, 20);
      const cert = await client.customCertificates.create({
        zone_id: ZONE, certificate: leaf + readFileSync(caFile, "utf8"), custom_csr_id: csr.id, policy: POLICY,
      });
      expect(cert.policy_restrictions).toBe(POLICY);
      sites.push({ keyType, host, csrId: csr.id, certificateId: cert.id, leaf });
    }

    // The first sync with Debian's Node 20 when there is one: the agent needs nothing newer.
    const first = await sync(edgeA, out(), [], node20?.path);
    expect(first.code, first.stderr).toBe(0);
    const lines = first.stdout.trim().split("\n");
    for (const site of sites) expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^${site.certificateId} written hosts=${site.host} `)));
    expect(lines.at(-1)).toMatch(new RegExp(`^edge sync: zone ${ZONE}, edge fra-a1: 2 certificates, 2 written, 0 unchanged, 0 removed \\(\\d+ ms\\)$`));
    expect(files(out())).toEqual(sites.flatMap((s) => [`${s.certificateId}.crt`, `${s.certificateId}.key`]).sort());
    for (const site of sites) {
      expect(statSync(join(out(), `${site.certificateId}.key`)).mode & 0o777).toBe(0o600);
      const crt = readFileSync(join(out(), `${site.certificateId}.crt`), "utf8");
      expect(crt.startsWith(site.leaf.trim().split("\n")[0]!)).toBe(true);
      expect(crt.replace(/\s/g, "")).toContain(site.leaf.replace(/\s/g, ""));
    }

    nginx = await startNginx(inject("e2eRoot"), join(work, "nginx"), sites.map((s) => ({
      host: s.host, crt: join(out(), `${s.certificateId}.crt`), key: join(out(), `${s.certificateId}.key`),
    })));
    for (const site of sites) {
      const seenBy = await handshake(nginx.port, site.host, caFile);
      expect(seenBy.verified, seenBy.text).toBe(true);
      expect(seenBy.leaf?.replace(/\s/g, "")).toBe(site.leaf.replace(/\s/g, ""));
    }
    // A certificate for the wrong name does not pass -verify_hostname: the check has teeth.
    const wrongName = await handshake(nginx.port, "elsewhere.customer-eight.com", caFile);
    expect(wrongName.verified).toBe(false);

    // Nothing changed: nothing written, no reload.
    const marker = join(work, "reloaded");
    const again = await sync(edgeA, out(), ["--reload", `touch ${marker}`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/2 certificates, 0 written, 2 unchanged, 0 removed \(/);
    expect(existsSync(marker)).toBe(false);
  });

  it("renews through the SDK's edit; the next sync writes it, reloads nginx once, and the new serial is served", async () => {
    const site = sites[0]!;
    const before = await client.customCertificates.get(site.certificateId, { zone_id: ZONE });
    const renewed = await issue(
      (await client.customCsrs.get(site.csrId, { zone_id: ZONE })).csr!,
      `${site.keyType}-2`, "0x2000", 25,
    );
    const edited = await client.customCertificates.edit(site.certificateId, { zone_id: ZONE, certificate: renewed + readFileSync(caFile, "utf8") });
    expect(edited.id).toBe(site.certificateId);
    expect(Date.parse(edited.modified_on!)).toBeGreaterThan(Date.parse(before.modified_on!));
    expect(edited.policy_restrictions).toBe(POLICY);
    const rsaKey = readFileSync(join(out(), `${sites[1]!.certificateId}.key`), "utf8");
    const served = await handshake(nginx!.port, site.host, caFile);
    expect(served.serial).toBe("1000");

    const started = performance.now();
    const ran = await sync(edgeA, out(), ["--reload", nginx!.reloadCommand]);
    const synced = performance.now();
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(new RegExp(`^${site.certificateId} written `, "m"));
    expect(ran.stdout).toMatch(/2 certificates, 1 written, 1 unchanged, 0 removed, reloaded \(/);
    let now = served;
    while (now.serial !== "2000" && performance.now() - started < 30_000) now = await handshake(nginx!.port, site.host, caFile);
    const serving = performance.now();
    expect(now.verified, now.text).toBe(true);
    expect(now.serial).toBe("2000");
    expect(now.leaf?.replace(/\s/g, "")).toBe(renewed.replace(/\s/g, ""));
    expect(readFileSync(join(out(), `${sites[1]!.certificateId}.key`), "utf8")).toBe(rsaKey);
    console.log(
      `edge sync start -> nginx serving the renewed certificate: ${(serving - started).toFixed(0)} ms ` +
        `(edge sync process ${(synced - started).toFixed(0)} ms, its own report: ${/\((\d+) ms\)/.exec(ran.stdout)?.[1]} ms; ` +
        `agent on ${process.version}${node20 ? `, first sync on ${node20.version}` : ""})`,
    );
    site.leaf = renewed;
  });

  it("--watch syncs on its interval, picks up a renewal, reloads nginx, and stops on SIGTERM", async () => {
    const site = sites[1]!;
    const watcher = spawn(process.execPath, [
      await edgeAgentBin(), "sync", "--dir", edgeA.dir, "--url", server.origin, "--token", edgeA.token,
      "--zone", ZONE, "--out", out(), "--reload", nginx!.reloadCommand, "--watch", "1", "--service-key", serviceKey,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    watcher.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    watcher.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((done) => watcher.once("exit", (code) => done(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!/edge sync: .* 0 written, 2 unchanged/.test(stdout) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(stdout, stderr).toMatch(/0 written, 2 unchanged, 0 removed \(/);

      const renewed = await issue((await client.customCsrs.get(site.csrId, { zone_id: ZONE })).csr!, `${site.keyType}-3`, "0x3000", 25);
      await client.customCertificates.edit(site.certificateId, { zone_id: ZONE, certificate: renewed + readFileSync(caFile, "utf8") });
      let now = await handshake(nginx!.port, site.host, caFile);
      while (now.serial !== "3000" && Date.now() < deadline) now = await handshake(nginx!.port, site.host, caFile);
      expect(now.serial, stdout + stderr).toBe("3000");
      expect(now.verified, now.text).toBe(true);
      site.leaf = renewed;
    } finally {
      watcher.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    seen.push(stdout, stderr);
    expect(stdout).toMatch(new RegExp(`^${site.certificateId} written `, "m"));
    expect(stdout).toMatch(/1 written, 1 unchanged, 0 removed, reloaded \(/);
    expect(stderr).toBe("");
  });

  it("a reload that failed is owed: the next sync reloads though no file changed, and the one after does not", async () => {
    const site = sites[0]!;
    const renewed = await issue((await client.customCsrs.get(site.csrId, { zone_id: ZONE })).csr!, `${site.keyType}-4`, "0x4000", 25);
    await client.customCertificates.edit(site.certificateId, { zone_id: ZONE, certificate: renewed + readFileSync(caFile, "utf8") });

    const failed = await sync(edgeA, out(), ["--reload", "exit 3"]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/reload command failed \(exit 3\)/);
    expect(readFileSync(join(out(), `${site.certificateId}.crt`), "utf8")).toContain(renewed.trim().split("\n")[1]!);
    expect((await handshake(nginx!.port, site.host, caFile)).serial).not.toBe("4000");

    const owed = await sync(edgeA, out(), ["--reload", nginx!.reloadCommand]);
    expect(owed.code, owed.stderr).toBe(0);
    expect(owed.stdout).toMatch(/2 certificates, 0 written, 2 unchanged, 0 removed, reloaded \(/);
    let now = await handshake(nginx!.port, site.host, caFile);
    for (const deadline = Date.now() + 20_000; now.serial !== "4000" && Date.now() < deadline; ) now = await handshake(nginx!.port, site.host, caFile);
    expect(now.serial).toBe("4000");
    expect(now.verified, now.text).toBe(true);
    site.leaf = renewed;

    const settled = await sync(edgeA, out(), ["--reload", nginx!.reloadCommand]);
    expect(settled.code, settled.stderr).toBe(0);
    expect(settled.stdout).toMatch(/2 certificates, 0 written, 2 unchanged, 0 removed \(/);
  });

  it("one sync of a zone at a time: a live lock refuses a second, a lock whose process is gone is taken over", async () => {
    const lockFile = join(out(), `.edge-sync-${ZONE}.lock`);
    writeFileSync(lockFile, String(process.pid));
    const refused = await sync(edgeA, out());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`another sync of this zone is running (pid ${process.pid}`);
    const gone = spawn(process.execPath, ["-e", ""]);
    await new Promise((done) => gone.once("exit", done));
    writeFileSync(lockFile, String(gone.pid));
    const ran = await sync(edgeA, out());
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/2 certificates, 0 written, 2 unchanged, 0 removed \(/);
    expect(existsSync(lockFile)).toBe(false);
    expect(readdirSync(out()).filter((f) => f.includes(".lock"))).toEqual([]);
  });

  it("refuses: an edge outside the policy, a token without delivery, a sealed key for another edge or altered, a revoked edge", async () => {
    // Edge B is in France: the policy excludes it. It lists nothing and its fetch is 1475.
    const b = await init("edge-b");
    const edgeB: Edge = { id: "par-b1", dir: b.dir, token: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE], edge: "par-b1" }) };
    await register(edgeB.id, b.jwk, { country: "FR", region: "WEUR" });
    const outB = join(work, "edge-b-out");
    const listedB = await sync(edgeB, outB);
    expect(listedB.code, listedB.stderr).toBe(0);
    expect(listedB.stdout).toMatch(/0 certificates, 0 written/);
    expect(files(outB)).toEqual([]);
    const refusedB = await call(server.origin, "GET", `/client/v4/zones/${ZONE}/key_delivery/certificates/${sites[0]!.certificateId}`, { token: edgeB.token });
    expect([refusedB.status, refusedB.body?.errors[0]?.code]).toEqual([403, 1475]);

    // A's bundle does not open with B's key; with A's it does; one flipped bit and it does not.
    const bundle = await call<{ sealed_key: string }>(server.origin, "GET", `/client/v4/zones/${ZONE}/key_delivery/certificates/${sites[0]!.certificateId}`, { token: edgeA.token });
    seen.push(bundle.text);
    const keyOf = (dir: string) => createPrivateKey(readFileSync(join(dir, "edge-key.pem")));
    const jwe = bundle.body!.result.sealed_key;
    await expect(compactDecrypt(jwe, keyOf(edgeB.dir))).rejects.toThrow();
    expect((await compactDecrypt(jwe, keyOf(edgeA.dir))).protectedHeader.edge_id).toBe(edgeA.id);
    const parts = jwe.split(".");
    const ciphertext = Buffer.from(parts[3]!, "base64url");
    ciphertext[0]! ^= 0x80;
    await expect(compactDecrypt([...parts.slice(0, 3), ciphertext.toString("base64url"), parts[4]].join("."), keyOf(edgeA.dir))).rejects.toThrow();

    // The agent itself refuses altered bundles before touching a file: a tampered ciphertext, a
    // bundle claiming another modified_on than the one sealed in, another edge's sealed key. Each
    // fails the service's signature; without it, the bundle is refused as unsigned.
    const renewedSite = sites[0]!;
    await client.customCertificates.edit(renewedSite.certificateId, { zone_id: ZONE, bundle_method: "force" });
    const forB = (await call<{ sealed_key: string }>(server.origin, "GET", `/client/v4/zones/${ZONE}/key_delivery/certificates/${sites[1]!.certificateId}`, { token: edgeA.token })).body!.result;
    const before = snapshot(out());
    const rewrites: Array<[string, (b: Record<string, unknown>) => Record<string, unknown>]> = [
      ["tampered", (b) => {
        const p = String(b.sealed_key).split(".");
        const c = Buffer.from(p[3]!, "base64url");
        c[c.length - 1]! ^= 0x01;
        return { ...b, sealed_key: [...p.slice(0, 3), c.toString("base64url"), p[4]].join(".") };
      }],
      ["relabelled", (b) => ({ ...b, modified_on: "2030-01-01T00:00:00.000Z" })],
      ["another certificate's key", (b) => ({ ...b, sealed_key: forB.sealed_key })],
    ];
    for (const [name, rewrite] of rewrites) {
      for (const unsign of [false, true]) {
        const proxy = await tamperingProxy(rewrite, { unsign });
        try {
          const ran = await sync(edgeA, out(), ["--reload", nginx!.reloadCommand], process.execPath, proxy.url);
          expect(ran.code, `${name}: ${ran.stdout}`).toBe(1);
          expect(ran.stderr, name).toMatch(unsign ? /the bundle is not signed/ : /the bundle's signature does not verify with the pinned service key/);
        } finally {
          await proxy.close();
        }
        expect(snapshot(out()), name).toEqual(before);
      }
    }

    // A Write token is not a delivery token.
    const writer: Edge = { ...edgeA, token: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] }) };
    const noDelivery = await sync(writer, out());
    expect(noDelivery.code).toBe(1);
    expect(noDelivery.stderr).toMatch(/the token names no edge/);
    const otherZone = await sync({ ...edgeA, token: mintToken(server.secrets.API_TOKEN_SECRET, { zones: ["another-zone"], edge: edgeA.id }) }, out());
    expect(otherZone.code).toBe(1);
    expect(otherZone.stderr).toMatch(/listing failed: 403 10000/);
    const noGroup = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] });
    const direct = await call(server.origin, "GET", `/client/v4/zones/${ZONE}/key_delivery/certificates`, { token: noGroup });
    expect([direct.status, direct.body?.errors[0]?.code]).toEqual([403, 10000]);

    // The sync after the refusals picks up the policy-only edit without rewriting anything.
    const caughtUp = await sync(edgeA, out());
    expect(caughtUp.code, caughtUp.stderr).toBe(0);
    expect(caughtUp.stdout).toMatch(/0 written, 2 unchanged/);
    expect(snapshot(out())).toEqual(before);

    // Deleting a certificate removes its files at the next sync.
    await client.customCertificates.delete(sites[1]!.certificateId, { zone_id: ZONE });
    const pruned = await sync(edgeA, out());
    expect(pruned.stdout).toMatch(new RegExp(`^${sites[1]!.certificateId} removed$`, "m"));
    expect(files(out())).toEqual([`${sites[0]!.certificateId}.crt`, `${sites[0]!.certificateId}.key`]);

    // Revoked: the next request is refused and the agent leaves every file as it was.
    const kept = snapshot(out());
    expect((await admin(server.origin, server.secrets.ADMIN_SECRET, "DELETE", `/edges/${edgeA.id}`)).status).toBe(200);
    const revoked = await sync(edgeA, out());
    expect(revoked.code).toBe(1);
    expect(revoked.stderr).toMatch(/listing failed: 403 1474/);
    expect(snapshot(out())).toEqual(kept);
  });

  it("custody: no delivered key in a response but sealed, in the agent's output, in the server's output, or in its data directory", async () => {
    const keys = readdirSync(join(work, "nginx", "certs"))
      .filter((f) => f.endsWith(".key"))
      .map((f) => readFileSync(join(work, "nginx", "certs", f), "utf8"));
    expect(keys.length).toBeGreaterThan(0);
    const log = `${server.stdout()}\n${server.stderr()}`;
    // The Worker's own log lines are there, deliveries included.
    expect(log).toMatch(/"route":"\/client\/v4\/zones\/:scopeId\/key_delivery\/certificates\/:certificateId"/);
    const text = [...seen, log].join("\n");
    // The search finds PEM lines where they are: the (public) certificate is in the bundle reply.
    expect(text).toContain(sites[0]!.leaf.split("\n")[1]!);
    const stateFiles: Buffer[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else stateFiles.push(readFileSync(path));
      }
    };
    walk(server.dataDir);
    expect(stateFiles.length).toBeGreaterThan(0);
    for (const pem of keys) {
      // Every base64 line of the PEM, and windows of the DER's private part.
      for (const line of pem.split("\n").filter((l) => /^[A-Za-z0-9+/]{64}$/.test(l))) expect(text).not.toContain(line);
      const der = createPrivateKey(pem).export({ format: "der", type: "pkcs8" });
      const windows = der.length < 200 ? [36, 44] : [400, 700, der.length - 30];
      for (const at of windows) {
        const window = der.subarray(at, at + 16);
        for (const file of stateFiles) expect(file.indexOf(window)).toBe(-1);
        expect(text).not.toContain(window.toString("hex"));
      }
    }
    expect(text).not.toMatch(/BEGIN PRIVATE KEY/);
  });
});
