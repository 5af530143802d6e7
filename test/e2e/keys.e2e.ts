// Key-encryption keys fail closed (issue 19): a data directory that holds
// keys is never served with a lost, replaced or renamed KEK, nor given a new
// one; a rotation ends with every scope rewrapped and the old KEK reported
// retirable; and reads of scopes that were never written store nothing.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { admin, call, csrBody, expectEnvelope, expectError } from "./api";
import { mintToken, scopeId } from "./credentials";
import { type TestServer, npmRun, snapshotApp, startServer } from "./server";

const root = inject("e2eRoot");
const newKey = (id: string) => `${id}:${randomBytes(32).toString("base64")}`;

/** KEY='value' lines, as .dev.vars holds them. */
function parseDotEnv(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/^([A-Z_]+)='(.*)'$/gm)].map((m) => [m[1]!, m[2]!]));
}

/** The object databases of one class (not workerd's alarm index). */
function databases(dataDir: string, className: string): string[] {
  const dir = join(dataDir, "v3", "do", `custom-csr-api-${className}`);
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite") : [];
}

describe("a data directory with keys and a KEK that is not theirs", () => {
  let server: TestServer;
  let originalKeys: string;

  beforeAll(async () => {
    server = await startServer({ root, name: "kek-fail-closed" });
    originalKeys = server.secrets.KEY_ENCRYPTION_KEYS;
    const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: ["kek-zone"] });
    const made = await call(server.origin, "POST", "/client/v4/zones/kek-zone/custom_csrs", { token, json: csrBody() });
    expect(made.status, made.text).toBe(201);
  });
  afterAll(() => server.stop());

  const cases: Array<[string, () => string, RegExp]> = [
    ["replaced under its id", () => newKey("e2e1"), /key-encryption key e2e1 in KEY_ENCRYPTION_KEYS is not the key this data directory's keys were wrapped under/],
    ["renamed (another id)", () => newKey("k2"), /key-encryption key e2e1 is not in KEY_ENCRYPTION_KEYS, and 1 scope\(s\) in this data directory have keys wrapped under it/],
  ];
  it.each(cases)("%s: npm start exits non-zero naming the KEK, and serves nothing", async (_, keys, message) => {
    await server.restart("SIGTERM", { secrets: { KEY_ENCRYPTION_KEYS: keys() }, waitReady: false });
    await server.exited();
    expect(server.exit?.code, server.logTail()).not.toBe(0);
    expect(server.stderr()).toMatch(message);
    expect(server.stderr()).not.toContain(server.secrets.KEY_ENCRYPTION_KEYS.split(":")[1]);
  });

  it("with the original KEK back, it serves the data as before", async () => {
    await server.restart("SIGTERM", { secrets: { KEY_ENCRYPTION_KEYS: originalKeys }, waitReady: true });
    const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: ["kek-zone"] });
    const list = await call<Array<{ id: string }>>(server.origin, "GET", "/client/v4/zones/kek-zone/custom_csrs", { token });
    expect(list.body?.result).toHaveLength(1);
    const check = await admin(server.origin, server.secrets.ADMIN_SECRET, "POST", `/zones/kek-zone/custom_csrs/${list.body!.result[0]!.id}/verify`);
    expect(check.body?.result).toMatchObject({ ok: true, kek_id: "e2e1" });
  });
});

describe("no command makes a key-encryption key for data that has one", () => {
  // A project copy of its own, without .dev.vars: as a production checkout.
  const app = snapshotApp(root, "app-no-dev-vars");

  it("npm start with data but no KEY_ENCRYPTION_KEYS anywhere refuses to start, and writes no KEK into .dev.vars", async () => {
    const first = await startServer({ root, name: "kek-none", app });
    const token = mintToken(first.secrets.API_TOKEN_SECRET, { zones: ["z1"] });
    expect((await call(first.origin, "POST", "/client/v4/zones/z1/custom_csrs", { token, json: csrBody() })).status).toBe(201);
    const { KEY_ENCRYPTION_KEYS: _, ...others } = first.secrets;
    // Every other secret from the environment, the KEK from nowhere.
    await first.restart("SIGTERM", { secrets: { ...others, KEY_ENCRYPTION_KEYS: "" }, waitReady: false });
    await first.exited();
    expect(first.exit?.code, first.logTail()).not.toBe(0);
    expect(first.stderr()).toMatch(/KEY_ENCRYPTION_KEYS is neither in the environment nor in .*holds keys wrapped under it/);
    const devVars = join(app, ".dev.vars");
    expect(existsSync(devVars) ? readFileSync(devVars, "utf8") : "").not.toMatch(/KEY_ENCRYPTION_KEYS/);
  });

  it("npm run token with the secret in the environment and no .dev.vars creates no file; without any secret it refuses", async () => {
    const before = readdirSync(app).sort();
    const minted = await npmRun(app, "token", ["--zone", "zz"], { API_TOKEN_SECRET: "s3cret-from-the-environment" });
    expect(minted.code, minted.stderr).toBe(0);
    expect(minted.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const refused = await npmRun(app, "token", ["--zone", "zz"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/no API_TOKEN_SECRET/);
    const legacy = await npmRun(app, "token", ["--legacy", "--email", "ops@customer-one.com", "--account", "a1"]);
    expect(legacy.code).toBe(1);
    expect(readdirSync(app).sort()).toEqual(before);
  });

  it("npm run dev on state that holds keys, with no KEK in .dev.vars, refuses and writes none; nor does it make one the environment supplies", async () => {
    const devVars = join(app, ".dev.vars");
    const held = await npmRun(app, "dev", ["--persist-to", join(root, "kek-none", "data")]);
    expect(held.code, held.stderr).toBe(1);
    expect(held.stderr).toMatch(/KEY_ENCRYPTION_KEYS is not in .*\.dev\.vars, and .*kek-none\/data holds keys wrapped under it/);
    expect(existsSync(devVars) ? readFileSync(devVars, "utf8") : "").not.toMatch(/KEY_ENCRYPTION_KEYS/);
    const supplied = await npmRun(app, "dev", ["--persist-to", join(root, "kek-none", "empty")], { KEY_ENCRYPTION_KEYS: newKey("envk") });
    expect(supplied.code, supplied.stderr).toBe(1);
    expect(supplied.stderr).toMatch(/KEY_ENCRYPTION_KEYS is in the environment, but wrangler dev reads secrets only from/);
    expect(existsSync(devVars) ? readFileSync(devVars, "utf8") : "").not.toMatch(/KEY_ENCRYPTION_KEYS/);
  });
});

describe("a KEK is made only where none is needed", () => {
  it("a data directory without keys (reads, and npm start's own import) is given a new KEK when .dev.vars lost it", async () => {
    const app = snapshotApp(root, "app-kek-no-keys");
    const server = await startServer({ root, name: "kek-no-keys", app, secretsInEnv: false });
    try {
      const devVars = parseDotEnv(readFileSync(join(app, ".dev.vars"), "utf8"));
      const token = mintToken(devVars.API_TOKEN_SECRET!, { zones: ["*"], readOnly: true });
      expect((await call(server.origin, "GET", "/client/v4/zones/only-read/custom_csrs", { token })).status).toBe(200);
      expect((await admin(server.origin, devVars.ADMIN_SECRET!, "GET", "/zones/only-read/stats")).status).toBe(200);
      await server.stop();
      expect(databases(server.dataDir, "DeploymentRegistry")).toHaveLength(1);
      const { KEY_ENCRYPTION_KEYS: lost, ...kept } = devVars;
      writeFileSync(join(app, ".dev.vars"), `${Object.entries(kept).map(([k, v]) => `${k}='${v}'`).join("\n")}\n`, { mode: 0o600 });

      await server.restart("SIGTERM", { waitReady: true });
      const made = parseDotEnv(readFileSync(join(app, ".dev.vars"), "utf8")).KEY_ENCRYPTION_KEYS;
      expect(made).toMatch(/^dev1:/);
      expect(made).not.toBe(lost);
    } finally {
      await server.stop();
    }
  });

  it("npm start with the KEK in the environment and another secret missing completes .dev.vars without a KEK", async () => {
    const app = snapshotApp(root, "app-kek-from-env");
    const server = await startServer({ root, name: "kek-from-env", app, secrets: { ADMIN_SECRET: "" } });
    try {
      const devVars = parseDotEnv(readFileSync(join(app, ".dev.vars"), "utf8"));
      expect(devVars.ADMIN_SECRET).toBeTruthy();
      expect(devVars.KEY_ENCRYPTION_KEYS).toBeUndefined();
    } finally {
      await server.stop();
    }
  });
});

describe("rotation, end to end", () => {
  it("a new first KEK, the deployment-wide rewrap, then the old KEK is retirable and can be removed", async () => {
    const server = await startServer({ root, name: "kek-rotation" });
    try {
      const zones = ["rot-a", "rot-b", "rot-c"];
      const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones });
      for (const zone of zones) {
        for (const key_type of ["p256v1", "rsa2048"]) {
          expect((await call(server.origin, "POST", `/client/v4/zones/${zone}/custom_csrs`, { token, json: csrBody({ key_type }) })).status).toBe(201);
        }
      }
      // The edge registry holds KEK-wrapped data too: the service's signing key, and sealed rows.
      const edgeKey = generateKeyPairSync("x25519").publicKey.export({ format: "jwk" });
      const edge = await admin<{ service_key: { kid: string } }>(server.origin, server.secrets.ADMIN_SECRET, "PUT", "/edges/rot-edge", {
        public_key: edgeKey,
        labels: { country: "DE", region: "WEUR" },
      });
      expect(edge.status, edge.text).toBe(201);
      const old = server.secrets.KEY_ENCRYPTION_KEYS;
      await server.restart("SIGTERM", { secrets: { KEY_ENCRYPTION_KEYS: `${newKey("k2")},${old}` } });
      const before = await admin<{ current_kek_id: string; keks: Array<{ id: string; check: string; scopes: number }>; retirable: string[] }>(
        server.origin,
        server.secrets.ADMIN_SECRET,
        "GET",
        "/keys",
      );
      expect(before.body?.result.current_kek_id).toBe("k2");
      expect(before.body?.result.keks.find((k) => k.id === "e2e1")).toMatchObject({ check: "ok", scopes: 4 }); // three zones and the edge registry
      expect(before.body?.result.retirable).toEqual([]);

      let next: string | null = "";
      const visited: string[] = [];
      while (next !== null) {
        type Report = { scopes: Array<{ scope: string; remaining: number; failures: unknown[] }>; next: string | null };
        const reply: Awaited<ReturnType<typeof admin<Report>>> = await admin<Report>(
          server.origin,
          server.secrets.ADMIN_SECRET,
          "POST",
          `/rewrap?limit=2${next ? `&after=${next}` : ""}`,
        );
        expect(reply.status, reply.text).toBe(200);
        for (const s of reply.body!.result.scopes) {
          expect(s).toMatchObject({ remaining: 0, failures: [] });
          visited.push(s.scope);
        }
        next = reply.body!.result.next;
      }
      expect(visited.sort()).toEqual(["edge-registry", ...zones.map((z) => `zones:${z}`)]);
      const after = await admin<{ keks: Array<{ id: string; scopes: number }>; retirable: string[] }>(server.origin, server.secrets.ADMIN_SECRET, "GET", "/keys");
      expect(after.body?.result.retirable).toEqual(["e2e1"]);

      // Retired: the server starts without it, and every key still verifies.
      await server.restart("SIGTERM", { secrets: { KEY_ENCRYPTION_KEYS: server.secrets.KEY_ENCRYPTION_KEYS.split(",")[0]! } });
      expect((await call(server.origin, "GET", "/readyz")).status).toBe(200);
      const stillEdge = await admin<{ service_key: { kid: string } }>(server.origin, server.secrets.ADMIN_SECRET, "GET", "/edges/rot-edge");
      expect(stillEdge.status, stillEdge.text).toBe(200);
      expect(stillEdge.body!.result.service_key.kid).toBe(edge.body!.result.service_key.kid);
      for (const zone of zones) {
        const list = await call<Array<{ id: string }>>(server.origin, "GET", `/client/v4/zones/${zone}/custom_csrs`, { token });
        for (const csr of list.body!.result) {
          const check = await admin(server.origin, server.secrets.ADMIN_SECRET, "POST", `/zones/${zone}/custom_csrs/${csr.id}/verify`);
          expect(check.body?.result).toMatchObject({ ok: true, kek_id: "k2" });
        }
      }
    } finally {
      await server.stop();
    }
  });
});

describe("reads of scopes that were never written", () => {
  it("store nothing: no object database for any of them, for API tokens and edge tokens alike", async () => {
    const server = await startServer({ root, name: "no-storage-on-read" });
    try {
      const writer = mintToken(server.secrets.API_TOKEN_SECRET, { zones: ["written"] });
      expect((await call(server.origin, "POST", "/client/v4/zones/written/custom_csrs", { token: writer, json: csrBody() })).status).toBe(201);
      const before = databases(server.dataDir, "TenantStore");
      expect(before).toHaveLength(1);

      const anyZone = mintToken(server.secrets.API_TOKEN_SECRET, { zones: ["*"], readOnly: true });
      const edgeKey = generateKeyPairSync("x25519").publicKey.export({ format: "jwk" });
      const registered = await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", "/edges/edge-1", {
        public_key: edgeKey,
        labels: { country: "DE", region: "WEUR" },
      });
      expect(registered.status, registered.text).toBe(201);
      const edge = mintToken(server.secrets.API_TOKEN_SECRET, { zones: ["*"], edge: "edge-1" });
      for (let i = 0; i < 40; i++) {
        const zone = scopeId("never");
        const list = await call(server.origin, "GET", `/client/v4/zones/${zone}/custom_csrs`, { token: anyZone });
        expectEnvelope(list);
        expect({ status: list.status, result: list.body?.result }).toEqual({ status: 200, result: [] });
        expectError(await call(server.origin, "GET", `/client/v4/zones/${zone}/custom_csrs/${crypto.randomUUID()}`, { token: anyZone }), 404, 1419);
        expect((await call(server.origin, "GET", `/client/v4/zones/${zone}/audit_logs`, { token: anyZone })).status).toBe(200);
        const deliverable = await call(server.origin, "GET", `/client/v4/zones/${zone}/key_delivery/certificates`, { token: edge });
        expect({ status: deliverable.status, result: deliverable.body?.result }).toEqual({ status: 200, result: [] });
        expectError(await call(server.origin, "GET", `/client/v4/zones/${zone}/key_delivery/certificates/${crypto.randomUUID()}`, { token: edge }), 404, 1449);
      }
      expect(databases(server.dataDir, "TenantStore")).toEqual(before);
    } finally {
      await server.stop();
    }
  });
});
