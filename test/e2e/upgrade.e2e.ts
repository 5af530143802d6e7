// `npm run dev` (wrangler dev) still works, and data it wrote (as `npm
// start` did before it ran workerd directly) survives the upgrade: the first
// `npm start` imports .wrangler/state into ./data, and `--persist-to` on a
// wrangler state directory serves it as it is. Ids, bytes and keys carry over.
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type CsrRecord, admin, call, csrBody } from "./api";
import { mintToken, scopeId } from "./credentials";
import { type ServerSecrets, type TestServer, generateSecrets, snapshotApp, startServer } from "./server";
import { expectCsrsVerified } from "./verify";

const root = inject("e2eRoot");
// A checkout of its own, with the secrets in .dev.vars as a local user has them.
const app = snapshotApp(root, "app-upgrade");
const secrets: ServerSecrets = generateSecrets();
const account = scopeId("upa");
const zone = scopeId("upz");
const token = mintToken(secrets.API_TOKEN_SECRET, { accounts: [account], zones: [zone] });
const made: Array<{ path: string; record: CsrRecord; json: string }> = [];

beforeAll(() => {
  writeFileSync(join(app, ".dev.vars"), `${Object.entries(secrets).map(([k, v]) => `${k}='${v}'`).join("\n")}\n`, { mode: 0o600 });
});

async function expectAllThere(server: TestServer, label: string): Promise<void> {
  for (const m of made) {
    const got = await call<CsrRecord>(server.origin, "GET", `${m.path}/${m.record.id}`, { token });
    expect(got.status, `${label}: GET ${m.record.id}`).toBe(200);
    expect(JSON.stringify(got.body!.result), `${label}: byte-identical`).toBe(m.json);
    const [, kind, id] = /\/client\/v4\/(accounts|zones)\/([^/]+)\//.exec(`${m.path}/`)!;
    const verify = await admin<{ ok: boolean; kek_id: string }>(server.origin, secrets.ADMIN_SECRET, "POST", `/${kind}/${id}/custom_csrs/${m.record.id}/verify`);
    expect(verify.body!.result, `${label}: verify ${m.record.id}`).toEqual({ id: m.record.id, kek_id: "e2e1", ok: true });
  }
  const entitlement = await admin<{ granted: boolean; quota: number; used: number }>(server.origin, secrets.ADMIN_SECRET, "GET", `/zones/${zone}/entitlement`);
  expect(entitlement.body!.result, `${label}: entitlement`).toEqual({ granted: true, quota: 50, used: made.filter((m) => m.path.includes(zone)).length });
}

describe("npm run dev (wrangler dev)", () => {
  let dev: TestServer;
  beforeAll(async () => {
    // Where Miniflare would cache the cf.json it fetches from workers.cloudflare.com: npm run dev fetches none.
    dev = await startServer({ root, name: "upgrade-dev", command: "dev", app, dataDir: null, secretsInEnv: false, secrets, env: { CLOUDFLARE_CF_FETCH_PATH: join(root, "upgrade-dev-cf.json") } });
  });
  afterAll(async () => {
    await dev?.stop();
  });

  it("serves the API with .dev.vars and prints the example request (smoke)", async () => {
    expect(dev.stdout()).toMatch(/Custom CSR API on http:\/\/localhost:\d+/);
    // No request to workers.cloudflare.com (offline it printed stack traces), so no cf.json, and no trace.
    expect(existsSync(join(root, "upgrade-dev-cf.json"))).toBe(false);
    expect(dev.stderr()).not.toMatch(/workers\.cloudflare\.com|ENOTFOUND/);
    const set = await admin(dev.origin, secrets.ADMIN_SECRET, "PUT", `/zones/${zone}/entitlement`, { granted: true, quota: 50 });
    expect(set.status, set.text).toBe(200);
    for (const [path, key_type] of [
      [`/client/v4/zones/${zone}/custom_csrs`, "p256v1"],
      [`/client/v4/zones/${zone}/custom_csrs`, "p256v1"],
      [`/client/v4/zones/${zone}/custom_csrs`, "rsa2048"],
      [`/client/v4/accounts/${account}/custom_csrs`, "p256v1"],
      [`/client/v4/accounts/${account}/custom_csrs`, "rsa2048"],
    ] as const) {
      const reply = await call<CsrRecord>(dev.origin, "POST", path, { token, json: csrBody({ key_type }) });
      expect(reply.status, reply.text).toBe(201);
      made.push({ path, record: reply.body!.result, json: JSON.stringify(reply.body!.result) });
    }
    await expectAllThere(dev, "wrangler dev");
    await expectCsrsVerified(made.map((m) => m.record));
  });
});

describe("the upgrade to npm start", () => {
  it("the first npm start imports .wrangler/state into ./data: same ids, same bytes, keys that verify", async () => {
    expect(made.length).toBe(5);
    const server = await startServer({ root, name: "upgrade-start", app, dataDir: null, secretsInEnv: false, secrets });
    try {
      const imported = server
        .stdout()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.event === "imported_state");
      expect(imported).toMatchObject({ level: "info", from: join(app, ".wrangler", "state"), to: join(app, "data") });
      expect(imported!.databases).toBeGreaterThanOrEqual(2);
      await expectAllThere(server, "after import");
      // New data goes to ./data; the wrangler state is left as it was.
      const reply = await call<CsrRecord>(server.origin, "POST", `/client/v4/zones/${zone}/custom_csrs`, { token, json: csrBody() });
      expect(reply.status).toBe(201);
      const total = await call<CsrRecord[]>(server.origin, "GET", `/client/v4/zones/${zone}/custom_csrs?per_page=5`, { token });
      expect(total.body!.result_info!.total_count).toBe(4);
      // A second start does not import again (./data exists): the new CSR is still there.
      await server.restart();
      const again = await call<CsrRecord[]>(server.origin, "GET", `/client/v4/zones/${zone}/custom_csrs?per_page=5`, { token });
      expect(again.body!.result_info!.total_count).toBe(4);
      expect(server.stdout().match(/"event":"imported_state"/g)).toHaveLength(1);
    } finally {
      await server.stop();
    }
  });

  it("--persist-to a wrangler state directory serves it as it is", async () => {
    const server = await startServer({
      root,
      name: "upgrade-persist",
      app,
      dataDir: null,
      args: ["--persist-to", join(app, ".wrangler", "state")],
      secretsInEnv: false,
      secrets,
    });
    try {
      await expectAllThere(server, "--persist-to .wrangler/state");
      const total = await call<CsrRecord[]>(server.origin, "GET", `/client/v4/zones/${zone}/custom_csrs?per_page=5`, { token });
      expect(total.body!.result_info!.total_count).toBe(3);
    } finally {
      await server.stop();
    }
  });
});
