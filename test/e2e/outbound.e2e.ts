// Outbound fetch from the self-hosted server (issue 21: an ACME CA on this
// host or on a private network, with a listener CA of its own): `npm start`
// with --allow-private-outbound reaches loopback, with --ca-file trusts the
// CA, and without them does exactly what workerd did before (public
// addresses, public CAs only); CA_FILE and ALLOW_PRIVATE_OUTBOUND likewise.
//
// How the running service is made to fetch a URL: the API has no route that
// fetches what a caller names, and none is added for this (neither public
// nor admin-only). The Worker npm start serves is swapped instead: this
// file's project copy is built as usual (dist/workerd/: the bundle, the
// config, build.json), then the bundle is overwritten with a small probe
// Worker that exports every Durable Object class the build declares and
// fetches `?url=` from the Worker itself, from a Durable Object's fetch(),
// and from a Durable Object's alarm() (where the ACME state machine runs).
// npm start does not rebuild for that (it rebuilds when the sources change,
// and the bundle is an output), so everything else is the product as
// shipped: the launcher, its flags and environment, the config it renders
// for the run, and workerd. This goes one step further than running the
// generated config with an extra probe Worker beside the API's (which would
// only test the generator): it also tests what npm start makes of its flags.
// The generated text itself is checked in test/e2e/workerd-config.e2e.ts.
//
// The fetched servers are a plain HTTP one and an HTTPS one on 127.0.0.1,
// the latter with a leaf (SAN IP:127.0.0.1) from a throwaway OpenSSL CA.
// Public addresses are not reachable from CI: that they stay allowed is
// checked in the config's text ("public" in every allow list).
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { type Server as HttpServer, createServer as createHttpServer } from "node:http";
import { type Server as HttpsServer, createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { OPENSSL } from "./checkers";
import { opensslCa } from "./openssl-ca";
import { type TestServer, buildApp, npmRun, snapshotApp, startServer } from "./server";

const root = inject("e2eRoot");
const app = snapshotApp(root, "app-outbound");
const dir = join(root, "outbound");
mkdirSync(dir, { recursive: true });

/** What the probe answers for one fetch. */
type Probe = { ok: true; status: number; body: string } | { ok: false; error: string };

// The probe Worker, standing in for the bundled API. Every Durable Object
// class of the build is exported as the same probe class.
function probeModule(classes: string[], binding: string): string {
  return `import { DurableObject } from "cloudflare:workers";

async function probe(url) {
  try {
    const response = await fetch(url);
    return { ok: true, status: response.status, body: await response.text() };
  } catch (error) {
    return { ok: false, error: String(error && error.message) };
  }
}

class Probe extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    const target = url.searchParams.get("url");
    if (url.pathname === "/probe/object") return Response.json(await probe(target));
    if (url.pathname === "/probe/alarm") {
      this.ctx.storage.delete("result");
      this.ctx.storage.put("url", target);
      await this.ctx.storage.setAlarm(Date.now());
      return Response.json({ scheduled: true });
    }
    return Response.json((await this.ctx.storage.get("result")) ?? null);
  }
  async alarm() {
    this.ctx.storage.put("result", await probe(await this.ctx.storage.get("url")));
  }
}
${classes.map((name) => `export class ${name} extends Probe {}`).join("\n")}

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/probe/worker") return Response.json(await probe(url.searchParams.get("url")));
    if (url.pathname.startsWith("/probe/")) {
      const objects = env[${JSON.stringify(binding)}];
      return objects.get(objects.idFromName("probe")).fetch(request);
    }
    // /readyz, and the launcher's scope import: answered as the API would.
    return Response.json({ success: true, errors: [], messages: [], result: {} });
  },
};
`;
}

/** A leaf for 127.0.0.1 (and localhost) issued by `ca`, with its key. */
function listenerCertificate(ca: ReturnType<typeof opensslCa>): { key: string; cert: string } {
  const key = join(dir, "listener.key");
  const csr = execFileSync(
    OPENSSL,
    ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
    { stdio: ["ignore", "pipe", "pipe"] },
  ).toString();
  return { key: readFileSync(key, "utf8"), cert: ca.issue(csr, "listener") };
}

const listen = (server: HttpServer | HttpsServer): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));

let httpUrl = "";
let httpsUrl = "";
let caFile = "";
let otherFile = "";
let bundleFile = "";
const servers: Array<HttpServer | HttpsServer> = [];
const running: TestServer[] = [];

beforeAll(async () => {
  const ca = opensslCa(join(dir, "listener-ca"), "/CN=e2e listener CA");
  const other = opensslCa(join(dir, "other-ca"), "/CN=e2e other CA");
  const another = opensslCa(join(dir, "another-ca"), "/CN=e2e another CA");
  caFile = join(dir, "listener-ca.pem");
  otherFile = join(dir, "other-ca.pem");
  bundleFile = join(dir, "bundle.pem");
  writeFileSync(caFile, ca.pem());
  writeFileSync(otherFile, other.pem());
  // The listener's CA second in a bundle: trusted only if every block is read.
  writeFileSync(bundleFile, `${another.pem()}${ca.pem()}`);

  const reply = (scheme: string) => (_: unknown, res: import("node:http").ServerResponse) => {
    res.setHeader("content-type", "text/plain");
    res.end(`hello over ${scheme}`);
  };
  const http = createHttpServer(reply("http"));
  const https = createHttpsServer(listenerCertificate(ca), reply("https"));
  servers.push(http, https);
  httpUrl = `http://127.0.0.1:${await listen(http)}/`;
  httpsUrl = `https://127.0.0.1:${await listen(https)}/directory`;

  await buildApp(app);
  const build = join(app, "dist", "workerd");
  const manifest = JSON.parse(readFileSync(join(build, "build.json"), "utf8")) as { module: string; durableObjects: Array<{ binding: string; className: string }> };
  const classes = [...new Set(manifest.durableObjects.map((d) => d.className))];
  const binding = manifest.durableObjects[0]?.binding;
  if (!binding) throw new Error("the build declares no Durable Object");
  writeFileSync(join(build, manifest.module), probeModule(classes, binding));
});

afterAll(async () => {
  await Promise.all(running.map((server) => server.stop("SIGKILL")));
  for (const server of servers) server.close();
});

/** npm start of the probe with `args` and, for its run only, `env` added to the environment. */
async function serve(name: string, args: string[], env: Record<string, string> = {}): Promise<TestServer> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    const server = await startServer({ root, name, app, args });
    running.push(server);
    return server;
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function probe(server: TestServer, where: "worker" | "object", url: string): Promise<Probe> {
  const response = await fetch(`${server.origin}/probe/${where}?url=${encodeURIComponent(url)}`);
  return (await response.json()) as Probe;
}

/** The fetch made by a Durable Object's alarm, as the ACME state machine makes them. */
async function probeAlarm(server: TestServer, url: string): Promise<Probe> {
  await fetch(`${server.origin}/probe/alarm?url=${encodeURIComponent(url)}`).then((r) => r.arrayBuffer());
  for (let i = 0; i < 100; i++) {
    const result = (await fetch(`${server.origin}/probe/result`).then((r) => r.json())) as Probe | null;
    if (result !== null) return result;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("the alarm did not run within 10 s");
}

/**
 * Why a fetch failed: workerd gives the Worker only "internal error;
 * reference = ID" and logs the cause on stderr, as an `error:` line followed
 * by a `stack:` line ending in `wdErrId = ID`.
 */
async function cause(server: TestServer, result: Probe): Promise<string> {
  expect(result.ok, JSON.stringify(result)).toBe(false);
  const id = /reference = (\w+)/.exec(result.ok ? "" : result.error)?.[1];
  expect(id, JSON.stringify(result)).toBeDefined();
  for (let attempt = 0; attempt < 50; attempt++) {
    const lines = server.stderr().split("\n");
    const at = lines.findIndex((line) => line.endsWith(`wdErrId = ${id}`));
    let from = at;
    while (from > 0 && !lines[from]?.includes(" error: ")) from--;
    if (at >= 0) return lines.slice(from, at).join("\n");
    await new Promise((r) => setTimeout(r, 100));
  }
  return `nothing on stderr names ${id}:\n${server.stderr()}`;
}

const BLOCKED = /blocked by restrictPeers\(\)/;
const UNTRUSTED = /TLS peer's certificate is not trusted; reason = unable to get local issuer certificate/;

async function expectReached(server: TestServer, url: string, body: string): Promise<void> {
  for (const where of ["worker", "object"] as const) {
    expect(await probe(server, where, url), where).toEqual({ ok: true, status: 200, body });
  }
  expect(await probeAlarm(server, url), "alarm").toEqual({ ok: true, status: 200, body });
}

describe("npm start's outbound flags", () => {
  it("--help documents --ca-file, --allow-private-outbound, CA_FILE and ALLOW_PRIVATE_OUTBOUND", async () => {
    const run = await npmRun(app, "start", ["--help"]);
    expect(run.code).toBe(0);
    for (const text of ["--ca-file FILE", "--allow-private-outbound", "CA_FILE", "ALLOW_PRIVATE_OUTBOUND"]) expect(run.stdout).toContain(text);
  });

  const refusals: Array<[string, string[], Record<string, string>, RegExp]> = [
    ["a --ca-file that does not exist", ["--ca-file", "/nonexistent/ca.pem"], {}, /--ca-file \/nonexistent\/ca\.pem cannot be read: no such file/],
    ["a --ca-file that is a directory", ["--ca-file", "/"], {}, /--ca-file \/ is not a file/],
    ["a --ca-file with no certificate (a key)", ["--ca-file", "KEY"], {}, /holds no PEM certificate \(-----BEGIN CERTIFICATE-----\), only a private key/],
    ["a --ca-file with a broken certificate", ["--ca-file", "BROKEN"], {}, /certificate 2 of 2 is not a valid X\.509 certificate/],
    ["an empty --ca-file", ["--ca-file="], {}, /--ca-file needs a file/],
    ["--allow-private-outbound given twice", ["--allow-private-outbound", "--allow-private-outbound"], {}, /--allow-private-outbound given twice/],
    ["a CA_FILE entry that does not exist", [], { CA_FILE: "CA:/nonexistent/b.pem" }, /CA_FILE \/nonexistent\/b\.pem cannot be read: no such file/],
    ["an ALLOW_PRIVATE_OUTBOUND that is not a yes or a no", [], { ALLOW_PRIVATE_OUTBOUND: "maybe" }, /ALLOW_PRIVATE_OUTBOUND must be 1, true, yes or on .* not "maybe"/],
  ];
  it.each(refusals)("refuses %s: exit 2, saying what is wrong, before anything runs", async (_, args, env, message) => {
    const files: Record<string, string> = { KEY: join(dir, "listener.key"), BROKEN: join(dir, "broken.pem"), CA: caFile };
    writeFileSync(files.BROKEN as string, `${readFileSync(caFile, "utf8")}-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n`);
    const subst = (s: string): string => s.replace(/^(KEY|BROKEN)$/, (k) => files[k] as string).replace(/^CA:/, `${caFile}:`);
    const run = await npmRun(app, "start", args.map(subst), Object.fromEntries(Object.entries(env).map(([k, v]) => [k, subst(v)])));
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toContain("usage: npm start --");
    expect(run.stdout).toBe("");
  });
});

describe("what the running service's fetch reaches", () => {
  it("by default (workerd's own outbound, as before): neither loopback nor the private CA", async () => {
    const server = await serve("outbound-default", []);
    for (const where of ["worker", "object"] as const) {
      expect(await cause(server, await probe(server, where, httpUrl))).toMatch(BLOCKED);
      expect(await cause(server, await probe(server, where, httpsUrl))).toMatch(BLOCKED);
    }
    expect(await cause(server, await probeAlarm(server, httpUrl))).toMatch(BLOCKED);
    expect(server.stdout()).not.toContain('"event":"outbound"');
    await server.stop();
  });

  it("--allow-private-outbound: loopback is reached from the Worker, a Durable Object and its alarm; the private CA is still not trusted", async () => {
    const server = await serve("outbound-private", ["--allow-private-outbound"]);
    await expectReached(server, httpUrl, "hello over http");
    for (const where of ["worker", "object"] as const) expect(await cause(server, await probe(server, where, httpsUrl))).toMatch(UNTRUSTED);
    await server.stop();
  });

  it("--ca-file alone: the CA is trusted, but loopback stays refused", async () => {
    const server = await serve("outbound-ca", ["--ca-file", caFile]);
    for (const where of ["worker", "object"] as const) {
      expect(await cause(server, await probe(server, where, httpsUrl))).toMatch(BLOCKED);
      expect(await cause(server, await probe(server, where, httpUrl))).toMatch(BLOCKED);
    }
    await server.stop();
  });

  it("both, --ca-file twice, the CA second in a bundle: HTTPS to the private CA works everywhere; the run's config is gone once served", async () => {
    const tmp = join(dir, "tmp-both");
    mkdirSync(tmp, { recursive: true });
    const server = await serve("outbound-both", ["--allow-private-outbound", "--ca-file", otherFile, "--ca-file", bundleFile], { TMPDIR: tmp });
    await expectReached(server, httpsUrl, "hello over https");
    await expectReached(server, httpUrl, "hello over http");
    const events = server.stdout().split("\n").filter((l) => l.includes('"event":"outbound"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events).toEqual([{ level: "info", event: "outbound", allow_private: true, ca_files: [otherFile, bundleFile], ca_certificates: 3 }]);
    // npm start wrote the run's config under TMPDIR and removed it once
    // workerd listened (Node's compile cache may live there too).
    expect(readdirSync(tmp).filter((name) => name.startsWith("custom-csr-api-"))).toEqual([]);
    expect(server.stderr()).toBe("");
    await server.stop();
  });

  it("CA_FILE (a list) and ALLOW_PRIVATE_OUTBOUND=yes do what the flags do", async () => {
    const server = await serve("outbound-env", [], { CA_FILE: `${otherFile}:${bundleFile}`, ALLOW_PRIVATE_OUTBOUND: "yes" });
    await expectReached(server, httpsUrl, "hello over https");
    expect(server.stderr()).toBe("");
    await server.stop();
  });

  it("the extra roots add to the system's trust store, which stays in use (SSL_CERT_FILE stands in for it)", async () => {
    // workerd's trustBrowserCas reads the system store through OpenSSL's
    // defaults, which SSL_CERT_FILE replaces: the listener CA there, another
    // one in --ca-file, and the listener is trusted.
    const server = await serve("outbound-system", ["--allow-private-outbound", "--ca-file", otherFile], { SSL_CERT_FILE: caFile });
    for (const where of ["worker", "object"] as const) {
      expect(await probe(server, where, httpsUrl)).toEqual({ ok: true, status: 200, body: "hello over https" });
    }
    await server.stop();
  });
});
