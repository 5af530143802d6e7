// The workerd config npm start generates from wrangler.toml: every Durable
// Object class bound there (a class another branch adds needs no code
// change), every var, the compatibility date and flags, and no value at all
// (vars and secrets come from the environment). Checked as text, then by
// workerd itself serving it. With npm start's outbound options (--ca-file,
// --allow-private-outbound) it gains an "internet" network service, and
// nothing else changes; test/e2e/outbound.e2e.ts proves what that service
// lets the running Worker and its Durable Objects reach.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
import { OPENSSL } from "./checkers";
import { freePort, killGroup, snapshotApp } from "./server";

interface Spec {
  name: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  durableObjects: Array<{ binding: string; className: string; sql: boolean }>;
  vars: Record<string, unknown>;
  secrets: string[];
}
interface Outbound {
  allowPrivate?: boolean;
  trustedCertificates?: string[];
}
interface ConfigModule {
  readWorkerSpec(path: string): Promise<Spec>;
  serverConfig(spec: Spec, moduleFile: string, options?: { outbound?: Outbound; modulePath?: string; header?: string }): string;
  pemCertificates(text: string): Array<{ subject: string; toString(): string }>;
}

const root = inject("e2eRoot");
const app = snapshotApp(root);
const dir = join(root, "workerd-config");
mkdirSync(dir, { recursive: true });
const generator = (): Promise<ConfigModule> => import(join(app, "scripts", "workerd-config.mjs")) as Promise<ConfigModule>;

function toml(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

// A Worker like this one after two more branches: an edge registry and a
// zone directory, one of them on the older key-value storage backend.
const GROWN = `name = "grown"
main = "index.js"
compatibility_date = "2026-01-01"
compatibility_flags = ["nodejs_compat"]

[[durable_objects.bindings]]
name = "TENANTS"
class_name = "TenantStore"

[[durable_objects.bindings]]
name = "EDGES"
class_name = "EdgeRegistry"

[[durable_objects.bindings]]
name = "ZONES"
class_name = "ZoneDirectory"

[[migrations]]
tag = "v1"
new_sqlite_classes = ["TenantStore", "EdgeRegistry"]

[[migrations]]
tag = "zone-directory"
new_classes = ["ZoneDirectory"]

[vars]
DEFAULT_CSR_QUOTA = "1000000"
EDGE_POLICY = "strict-but-public"
LIMITS = { per_minute = 60 }
`;

let workerd: ChildProcess | null = null;
afterAll(() => {
  if (workerd?.pid) killGroup(workerd.pid, "SIGKILL");
});

describe("the generated workerd config", () => {
  it("binds every Durable Object class, var and secret of wrangler.toml, holding no string value", async () => {
    const { readWorkerSpec, serverConfig } = await generator();
    const spec = await readWorkerSpec(toml("grown.toml", GROWN));
    expect(spec.durableObjects).toEqual([
      { binding: "TENANTS", className: "TenantStore", sql: true },
      { binding: "EDGES", className: "EdgeRegistry", sql: true },
      { binding: "ZONES", className: "ZoneDirectory", sql: false },
    ]);
    const config = serverConfig(spec, "index.js");
    for (const [binding, className] of [["TENANTS", "TenantStore"], ["EDGES", "EdgeRegistry"], ["ZONES", "ZoneDirectory"]]) {
      expect(config).toContain(`(name = "${binding}", durableObjectNamespace = "${className}")`);
    }
    // Miniflare's uniqueKey rule: wrangler dev's data keeps its object ids.
    expect(config).toContain('(className = "TenantStore", uniqueKey = "grown-TenantStore", enableSql = true)');
    expect(config).toContain('(className = "EdgeRegistry", uniqueKey = "grown-EdgeRegistry", enableSql = true)');
    expect(config).toContain('(className = "ZoneDirectory", uniqueKey = "grown-ZoneDirectory", enableSql = false)');
    for (const name of ["DEFAULT_CSR_QUOTA", "EDGE_POLICY", "LOG_LEVEL", "KEY_ENCRYPTION_KEYS", "API_TOKEN_SECRET", "ADMIN_SECRET", "GLOBAL_API_KEYS"]) {
      expect(config).toContain(`(name = "${name}", fromEnvironment = "${name}")`);
    }
    // A JSON var cannot come from the environment: it is in the config, as wrangler uploads it.
    expect(config).toContain('(name = "LIMITS", json = "{\\"per_minute\\":60}")');
    expect(config).not.toContain("strict-but-public");
    expect(config).not.toContain("1000000");
    expect(config).toContain('compatibilityDate = "2026-01-01"');
    expect(config).toContain('compatibilityFlags = ["nodejs_compat"]');
  });

  it("stops the build, naming them, on bindings npm start cannot serve, and on a secret among the vars", async () => {
    const { readWorkerSpec } = await generator();
    const base = 'name = "w"\nmain = "index.js"\ncompatibility_date = "2026-08-15"\n';
    await expect(readWorkerSpec(toml("kv.toml", `${base}[[kv_namespaces]]\nbinding = "CACHE"\nid = "abc"\n`))).rejects.toThrow(/kv_namespaces/);
    await expect(readWorkerSpec(toml("cron.toml", `${base}[triggers]\ncrons = ["0 * * * *"]\n`))).rejects.toThrow(/triggers\.crons/);
    await expect(readWorkerSpec(toml("secret.toml", `${base}[vars]\nADMIN_SECRET = "oops"\n`))).rejects.toThrow(/ADMIN_SECRET is a secret/);
  });

  it("is served by workerd: vars and secrets reach the Worker from the environment only", async () => {
    const { readWorkerSpec, serverConfig } = await generator();
    const spec = await readWorkerSpec(toml("grown.toml", GROWN));
    writeFileSync(
      join(dir, "index.js"),
      `import { DurableObject } from "cloudflare:workers";
export class TenantStore extends DurableObject {}
export class EdgeRegistry extends DurableObject {}
export class ZoneDirectory extends DurableObject {}
export default {
  fetch(request, env) {
    return Response.json({
      quota: env.DEFAULT_CSR_QUOTA, policy: env.EDGE_POLICY, level: env.LOG_LEVEL, limits: env.LIMITS,
      admin: env.ADMIN_SECRET, keys: env.KEY_ENCRYPTION_KEYS ?? "unset",
      namespaces: [typeof env.TENANTS.idFromName, typeof env.EDGES.idFromName, typeof env.ZONES.idFromName],
    });
  },
};
`,
    );
    writeFileSync(join(dir, "config.capnp"), serverConfig(spec, "index.js"));
    mkdirSync(join(dir, "storage"), { recursive: true });
    const port = await freePort();
    workerd = spawn(
      join(app, "node_modules", "workerd", "bin", "workerd"),
      ["serve", join(dir, "config.capnp"), `--socket-addr=http=127.0.0.1:${port}`, `--directory-path=do-storage=${join(dir, "storage")}`],
      { detached: true, stdio: "ignore", env: { PATH: process.env.PATH, DEFAULT_CSR_QUOTA: "7", EDGE_POLICY: "open", LOG_LEVEL: "warn", ADMIN_SECRET: "from-the-environment" } },
    );
    let body: unknown = null;
    for (let i = 0; i < 100 && body === null; i++) {
      body = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.json(), () => null);
      if (body === null) await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toEqual({
      quota: "7",
      policy: "open",
      level: "warn",
      limits: { per_minute: 60 },
      admin: "from-the-environment",
      keys: "unset",
      namespaces: ["function", "function", "function"],
    });
  });
});

/** A self-signed certificate made by OpenSSL, as PEM. */
function selfSigned(name: string): string {
  const key = join(dir, `${name}.key`);
  const pem = join(dir, `${name}.pem`);
  execFileSync(OPENSSL, ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem, "-subj", `/CN=${name}`, "-days", "2"], { stdio: "pipe" });
  return readFileSync(pem, "utf8");
}

describe("outbound (npm start --ca-file, --allow-private-outbound)", () => {
  it("without options, declares no outbound service: workerd's implicit \"internet\" (public addresses, public CAs) stays", async () => {
    const { readWorkerSpec, serverConfig } = await generator();
    const spec = await readWorkerSpec(toml("grown.toml", GROWN));
    const config = serverConfig(spec, "index.js");
    expect(serverConfig(spec, "index.js", { outbound: {} })).toBe(config);
    expect(serverConfig(spec, "index.js", { outbound: { allowPrivate: false, trustedCertificates: [] } })).toBe(config);
    expect(config).not.toMatch(/internet|network|globalOutbound|tlsOptions/);
  });

  it("npm start's run config is the built one, rendered again from the build's manifest", async () => {
    // npm start renders the config of a run with outbound options from
    // dist/workerd/build.json: without options that gives the built file byte for byte.
    const { serverConfig } = await generator();
    const build = join(app, "dist", "workerd");
    const manifest = JSON.parse(readFileSync(join(build, "build.json"), "utf8")) as Spec & { module: string; config: string };
    expect(manifest.compatibilityFlags).toBeInstanceOf(Array);
    expect(serverConfig(manifest, manifest.module)).toBe(readFileSync(join(build, manifest.config), "utf8"));
  });

  it("overrides \"internet\" with a network service: public (and private when asked), the system's CAs and one entry per extra certificate", async () => {
    const { readWorkerSpec, serverConfig, pemCertificates } = await generator();
    const spec = await readWorkerSpec(toml("grown.toml", GROWN));
    const base = serverConfig(spec, "index.js");

    const open = serverConfig(spec, "index.js", { outbound: { allowPrivate: true } });
    expect(open).toContain('(name = "internet", network = (allow = ["public", "private"], tlsOptions = (trustBrowserCas = true)))');

    // A bundle of three certificates, with comments and a key around them:
    // three entries, each one certificate alone (workerd reads only an entry's first PEM block).
    const [a, b, c] = [selfSigned("root-a"), selfSigned("root-b"), selfSigned("root-c")];
    const key = readFileSync(join(dir, "root-a.key"), "utf8");
    const found = pemCertificates(`# roots\n${a}\nsubject=whatever\n${b}${key}${c}`);
    expect(found.map((cert) => cert.subject)).toEqual(["CN=root-a", "CN=root-b", "CN=root-c"]);
    const pems = found.map((cert) => cert.toString());
    expect(pems.map((pem) => pem.match(/-----BEGIN/g)?.length)).toEqual([1, 1, 1]);
    expect(pems.join("")).toBe(a + b + c);

    const trusting = serverConfig(spec, "index.js", { outbound: { trustedCertificates: pems } });
    const service = /\(name = "internet", network = \(allow = \["public"\], tlsOptions = \(trustBrowserCas = true, trustedCertificates = \[\n([\s\S]*?)\n {4}\]\)\)\)/.exec(trusting);
    expect(service, trusting).not.toBeNull();
    expect(service?.[1]?.split(",\n").map((entry) => JSON.parse(entry.trim().replace(/,$/, "")) as string)).toEqual(pems);
    expect(trusting).not.toContain(key.split("\n")[1]);
    // Nothing else moves: the same text once the service is taken out.
    expect(trusting.replace(/\n {4}\(name = "internet"[\s\S]*?\]\)\)\),/, "")).toBe(base);
    expect(open.replace(/\n {4}\(name = "internet".*\)\)\),/, "")).toBe(base);
  });

  it("refuses a certificate block that does not parse, naming it", async () => {
    const { pemCertificates } = await generator();
    const good = selfSigned("root-d");
    expect(() => pemCertificates(`${good}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`)).toThrow(/certificate 2 of 2 is not a valid X\.509 certificate/);
    expect(pemCertificates("no PEM here")).toEqual([]);
  });
});
