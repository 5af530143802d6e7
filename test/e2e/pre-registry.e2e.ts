// A data directory written before the deployment registry existed (issue
// 19, review 19 H1), upgraded, then rotated to a new key-encryption key and
// the old one retired, as the README tells an operator to. The old data is
// made by the last version before the registry (its commit, from this
// repository's history, served by its own npm start), so nothing about it is
// simulated: no registry, no check values, keys and pooled keys wrapped under
// the old KEK. Before the fix the registry knew none of its KEKs: a wrong
// KEK started, the old KEK was `retirable` at once, and the rewrap visited
// nothing, so retiring it made every old key unopenable.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type CsrRecord, admin, call, csrBody } from "./api";
import { mintToken, scopeId } from "./credentials";
import { REPO_ROOT, type ServerSecrets, type TestServer, generateSecrets, startServer } from "./server";

// The last commit before the deployment registry (b627b47, "Fail closed on key-encryption keys").
const BEFORE_REGISTRY = "caff448e8b4e4e19bfc5d5bf00f49c28a8a35ece";

const root = inject("e2eRoot");
const newKey = (id: string) => `${id}:${randomBytes(32).toString("base64")}`;
const secrets: ServerSecrets = generateSecrets(); // KEY_ENCRYPTION_KEYS "e2e1:…"
const zones = [scopeId("prz"), scopeId("prz")];
const account = scopeId("pra");
const token = mintToken(secrets.API_TOKEN_SECRET, { zones, accounts: [account] });
const bases = [...zones.map((z) => `/client/v4/zones/${z}/custom_csrs`), `/client/v4/accounts/${account}/custom_csrs`];
const scopeNames = [...zones.map((z) => `zones:${z}`), `accounts:${account}`].sort();
const made: Array<{ base: string; record: CsrRecord; json: string }> = [];
let dataDir = "";

/** That version's project, from git (node_modules linked, as every test server's copy). */
function appBeforeRegistry(): string {
  const app = join(root, "app-before-registry");
  if (!existsSync(join(app, "package.json"))) {
    mkdirSync(app, { recursive: true });
    execFileSync("sh", ["-c", 'git -C "$0" archive --format=tar "$1" | tar -x -C "$2"', REPO_ROOT, BEFORE_REGISTRY, app]);
    symlinkSync(join(REPO_ROOT, "node_modules"), join(app, "node_modules"), "dir");
  }
  return app;
}

/** Waits for a server that should refuse to start; a server that serves instead fails the test (and is stopped). */
async function refusal(server: TestServer): Promise<string> {
  const exited = await Promise.race([server.exited().then(() => true), sleep(60_000).then(() => false)]);
  if (!exited) await server.stop("SIGKILL");
  expect(exited, `npm start served instead of refusing\n${server.logTail()}`).toBe(true);
  expect(server.exit?.code, server.logTail()).not.toBe(0);
  return server.stderr();
}

type Keys = { current_kek_id: string; keks: Array<{ id: string; check: string; scopes: number }>; retirable: string[]; scopes_complete: boolean; scopes_unreported: number };

/** GET /admin/v1/keys once npm start's import has reached the registry (it is sent right after workerd listens). */
async function keysOnceImported(server: TestServer): Promise<Keys> {
  for (let i = 0; ; i++) {
    const reply = await admin<Keys>(server.origin, secrets.ADMIN_SECRET, "GET", "/keys");
    expect(reply.status, reply.text).toBe(200);
    const keys = reply.body!.result;
    if ((keys.scopes_complete && keys.scopes_unreported === 0) || i >= 100) return keys;
    await sleep(100);
  }
}

async function expectAllThere(server: TestServer, kekId: string): Promise<void> {
  for (const m of made) {
    const got = await call<CsrRecord>(server.origin, "GET", `${m.base}/${m.record.id}`, { token });
    expect(JSON.stringify(got.body?.result), `GET ${m.record.id}`).toBe(m.json);
    const [, kind, id] = /^\/client\/v4\/(accounts|zones)\/([^/]+)\//.exec(`${m.base}/`)!;
    const verify = await admin(server.origin, secrets.ADMIN_SECRET, "POST", `/${kind}/${id}/custom_csrs/${m.record.id}/verify`);
    expect(verify.body?.result, `verify ${m.record.id}`).toEqual({ id: m.record.id, kek_id: kekId, ok: true });
  }
}

beforeAll(async () => {
  const old = await startServer({ root, name: "before-registry", app: appBeforeRegistry(), secrets });
  try {
    dataDir = old.dataDir;
    for (const base of bases) {
      for (const key_type of ["p256v1", "rsa2048"]) {
        const reply = await call<CsrRecord>(old.origin, "POST", base, { token, json: csrBody({ key_type }) });
        expect(reply.status, reply.text).toBe(201);
        made.push({ base, record: reply.body!.result, json: JSON.stringify(reply.body!.result) });
      }
    }
    // Pooled keys, wrapped under the old KEK as well: each scope's pool fills once the server is idle.
    // (It fills only while no request comes for 250 ms: asked once a second.)
    let available: number[] = [];
    for (let i = 0; i < 60 && !(available.length > 0 && available.every((n) => n > 0)); i++) {
      if (i > 0) await sleep(1000);
      const pools = await Promise.all(scopeNames.map((name) => admin<{ available: number }>(old.origin, secrets.ADMIN_SECRET, "GET", `/${name.replace(":", "/")}/key_pool`)));
      available = pools.map((p) => p.body?.result.available ?? 0);
    }
    expect(available.every((n) => n > 0), `pooled keys: ${available.join(", ")}`).toBe(true);
  } finally {
    await old.stop();
  }
  expect(readdirSync(join(dataDir, "v3", "do")).some((d) => d.endsWith("-DeploymentRegistry")), "that version has no deployment registry").toBe(false);
});

describe("a data directory from before the deployment registry", () => {
  let server: TestServer | null = null;
  afterAll(async () => {
    await server?.stop();
  });

  it("npm start refuses a KEK that is not the one its keys were wrapped under, or none, naming it, and records nothing", async () => {
    const wrong = await startServer({ root, name: "before-registry-wrong", dataDir, secrets: { ...secrets, KEY_ENCRYPTION_KEYS: newKey("e2e1") }, waitReady: false });
    expect(await refusal(wrong)).toMatch(/key-encryption key e2e1 in KEY_ENCRYPTION_KEYS is not the key this data directory's keys were wrapped under \(none of 3 of its wraps opens\)/);
    const lost = await startServer({ root, name: "before-registry-lost", dataDir, secrets: { ...secrets, KEY_ENCRYPTION_KEYS: newKey("k2") }, waitReady: false });
    expect(await refusal(lost)).toMatch(/key-encryption key e2e1 is not in KEY_ENCRYPTION_KEYS, and 3 scope\(s\) in this data directory have keys wrapped under it/);
    // Nothing was served, so nothing (no other key's check value) was recorded.
    expect(readdirSync(join(dataDir, "v3", "do")).some((d) => d.endsWith("-DeploymentRegistry"))).toBe(false);
  });

  it("the upgrade tells the registry each scope's KEKs and the verified check value before it is asked", async () => {
    server = await startServer({ root, name: "before-registry-upgraded", dataDir, secrets });
    const keys = await keysOnceImported(server);
    expect(keys).toMatchObject({ scopes_complete: true, scopes_unreported: 0, retirable: [] });
    expect(keys.keks).toEqual([{ id: "e2e1", configured: true, current: true, check: "ok", scopes: 3 }]);
    const scopes = await admin<{ scopes: Array<{ name: string; kek_ids: string[]; keks_reported: boolean }> }>(server.origin, secrets.ADMIN_SECRET, "GET", "/scopes");
    expect(scopes.body?.result.scopes.map((s) => [s.name, s.kek_ids, s.keks_reported])).toEqual(scopeNames.map((name) => [name, ["e2e1"], true]));
    await expectAllThere(server, "e2e1");
  });

  it("rotation: the old KEK is not retirable until the deployment-wide rewrap has visited every old scope; then it is retired and every key still opens", async () => {
    const k2 = newKey("k2");
    await server!.restart("SIGTERM", { secrets: { KEY_ENCRYPTION_KEYS: `${k2},${secrets.KEY_ENCRYPTION_KEYS}` } });
    const before = await keysOnceImported(server!);
    expect(before.keks.find((k) => k.id === "e2e1")).toMatchObject({ check: "ok", scopes: 3 });
    expect(before.retirable).toEqual([]);

    type Page = { scopes: Array<{ scope: string; remaining: number | null; failures: unknown[] }>; next: string | null };
    const visited: string[] = [];
    for (let next: string | null = ""; next !== null; ) {
      const page: Awaited<ReturnType<typeof admin<Page>>> = await admin<Page>(server!.origin, secrets.ADMIN_SECRET, "POST", `/rewrap?limit=1${next ? `&after=${next}` : ""}`);
      expect(page.status, page.text).toBe(200);
      for (const entry of page.body!.result.scopes) {
        expect(entry).toMatchObject({ remaining: 0, failures: [] });
        visited.push(entry.scope);
      }
      next = page.body!.result.next;
      // Until every old scope is rewrapped, the old KEK is still needed.
      if (visited.length < scopeNames.length) expect((await admin<Keys>(server!.origin, secrets.ADMIN_SECRET, "GET", "/keys")).body?.result.retirable).toEqual([]);
    }
    expect(visited.filter((s) => s !== "edge-registry").sort()).toEqual(scopeNames);
    const after = await admin<Keys>(server!.origin, secrets.ADMIN_SECRET, "GET", "/keys");
    expect(after.body?.result.retirable).toEqual(["e2e1"]);
    expect(after.body?.result.keks.find((k) => k.id === "e2e1")).toMatchObject({ scopes: 0 });

    // Retired: the server starts without it, and every old key opens under k2.
    await server!.restart("SIGTERM", { secrets: { KEY_ENCRYPTION_KEYS: k2 } });
    expect((await call(server!.origin, "GET", "/readyz")).status).toBe(200);
    await expectAllThere(server!, "k2");
    const pools = await Promise.all(scopeNames.map((name) => admin<{ ok: boolean; failed: string[] }>(server!.origin, secrets.ADMIN_SECRET, "POST", `/${name.replace(":", "/")}/key_pool/verify`)));
    for (const pool of pools) expect(pool.body?.result).toMatchObject({ ok: true, failed: [] });
  });
});
