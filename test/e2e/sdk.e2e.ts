// The official `cloudflare` SDK against the real server, changed only in
// baseURL and credentials: create (both key types, account and zone), get,
// list with the SDK's own auto-pagination, delete; API tokens and global API
// keys. Every CSR it gets back is checked by OpenSSL and pyca/cryptography.
import Cloudflare, { AuthenticationError, BadRequestError, NotFoundError, PermissionDeniedError } from "cloudflare";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { admin } from "./api";
import { type LegacyCredential, legacyKey, mintToken, scopeId } from "./credentials";
import { sdkClient } from "./sdk-client";
import { REPO_ROOT, type TestServer, startServer } from "./server";
import { expectCsrsVerified } from "./verify";

const ACCOUNT = scopeId("acct");
const ZONE = scopeId("zone");
const LEGACY_ACCOUNT = scopeId("lacct");
const LEGACY_ZONE = scopeId("lzone");

let server: TestServer;
let legacy: LegacyCredential;

/** An SDK client with a bearer token; environment credentials are explicitly off. */
function tokenClient(token: string): Cloudflare {
  return sdkClient(server.baseURL, { apiToken: token });
}

/** An SDK client with the legacy X-Auth-Email / X-Auth-Key pair. */
function legacyClient(email: string, key: string): Cloudflare {
  return sdkClient(server.baseURL, { apiEmail: email, apiKey: key });
}

function writer(): Cloudflare {
  return tokenClient(mintToken(server.secrets.API_TOKEN_SECRET, { accounts: [ACCOUNT], zones: [ZONE] }));
}

const subject = {
  common_name: "shop.customer-two.com",
  country: "DE",
  state: "Bayern",
  locality: "München",
  organization: "Kunde Zwei GmbH & Co. KG",
  sans: ["shop.customer-two.com", "*.customer-two.com", "www.customer-two.com"],
};

/** Awaits a rejected SDK call and returns the error, typed. */
async function rejection<E extends Error>(promise: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(type);
    return error as E;
  }
  throw new Error(`expected ${type.name}, but the call succeeded`);
}

/** The Cloudflare error codes an SDK APIError carries. */
function codes(error: Error): number[] {
  return ((error as unknown as { errors: Array<{ code: number }> }).errors ?? []).map((e) => e.code);
}

beforeAll(async () => {
  legacy = legacyKey("ops@customer-three.com", [LEGACY_ACCOUNT], [LEGACY_ZONE]);
  server = await startServer({
    root: inject("e2eRoot"),
    name: "sdk",
    secrets: { GLOBAL_API_KEYS: JSON.stringify([legacy.entry]) },
  });
});

afterAll(async () => {
  await server?.stop();
});

describe("cloudflare SDK: customCsrs with an API token", () => {
  for (const [scopeKind, params] of [
    ["account", () => ({ account_id: ACCOUNT })],
    ["zone", () => ({ zone_id: ZONE })],
  ] as const) {
    for (const keyType of ["rsa2048", "p256v1"] as const) {
      it(`create and get a ${keyType} CSR in an ${scopeKind} scope`, async () => {
        const client = writer();
        const created = await client.customCsrs.create({
          ...params(),
          ...subject,
          organizational_unit: "Plattform",
          name: `e2e ${keyType}`,
          description: "made by the SDK e2e test",
          key_type: keyType,
        });
        expect(created).toMatchObject({
          ...subject,
          key_type: keyType,
          organizational_unit: "Plattform",
          name: `e2e ${keyType}`,
          description: "made by the SDK e2e test",
        });
        expect(created.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(Number.isNaN(Date.parse(created.created_at))).toBe(false);
        if (scopeKind === "account") expect(created.account_tag).toBe(ACCOUNT);
        else expect(created).not.toHaveProperty("account_tag");

        const fetched = await client.customCsrs.get(created.id, params());
        expect(fetched).toEqual(created);
        await expectCsrsVerified([created, fetched]);
      });
    }
  }

  it("defaults to rsa2048 when key_type is omitted", async () => {
    const created = await writer().customCsrs.create({ zone_id: ZONE, ...subject });
    expect(created.key_type).toBe("rsa2048");
    await expectCsrsVerified([created]);
  });

  it("lists with the SDK's auto-pagination across pages of 5", async () => {
    const zone = scopeId("page");
    const client = tokenClient(mintToken(server.secrets.API_TOKEN_SECRET, { zones: [zone] }));
    const created = [];
    // Sequential, so creation order (the default list order) is known.
    for (let i = 0; i < 12; i++) {
      created.push(
        await client.customCsrs.create({
          zone_id: zone,
          ...subject,
          common_name: `n${i}.customer-two.com`,
          sans: [`n${i}.customer-two.com`],
          key_type: "p256v1",
        }),
      );
    }

    const seen = [];
    for await (const item of client.customCsrs.list({ zone_id: zone, per_page: 5 })) seen.push(item);
    expect(seen.map((c) => c.id)).toEqual(created.map((c) => c.id));
    expect(seen).toEqual(created);

    const pages = [];
    const first = await client.customCsrs.list({ zone_id: zone, per_page: 5 });
    for await (const page of first.iterPages()) {
      pages.push({ count: page.result.length, info: page.result_info });
    }
    // The SDK asks for pages until one comes back empty.
    expect(pages.map((p) => p.count)).toEqual([5, 5, 2, 0]);
    expect(pages[0]!.info).toMatchObject({ page: 1, per_page: 5, total_count: 12, total_pages: 3 });

    const descending = [];
    for await (const item of client.customCsrs.list({ zone_id: zone, per_page: 5, order: "created_at", direction: "desc" })) {
      descending.push(item.id);
    }
    expect(descending).toEqual(created.map((c) => c.id).reverse());

    await expectCsrsVerified(seen);
  });

  it("deletes a CSR: the SDK gets {id}, then 404 (1419) on get and delete", async () => {
    const client = writer();
    const created = await client.customCsrs.create({ account_id: ACCOUNT, ...subject, key_type: "p256v1" });
    await expectCsrsVerified([created]);
    const deleted = await client.customCsrs.delete(created.id, { account_id: ACCOUNT });
    expect(deleted).toEqual({ id: created.id });
    const missing = await rejection(client.customCsrs.get(created.id, { account_id: ACCOUNT }), NotFoundError);
    expect([missing.status, codes(missing)]).toEqual([404, [1419]]);
    const again = await rejection(client.customCsrs.delete(created.id, { account_id: ACCOUNT }), NotFoundError);
    expect(codes(again)).toEqual([1419]);
  });

  it("surfaces refusals as the SDK's typed errors with Cloudflare's codes", async () => {
    const client = writer();
    const bad = await rejection(
      client.customCsrs.create({ zone_id: ZONE, ...subject, sans: ["www.example.com"] }),
      BadRequestError,
    );
    expect(codes(bad)).toEqual([1416]);

    const readOnly = tokenClient(mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE], readOnly: true }));
    const denied = await rejection(readOnly.customCsrs.create({ zone_id: ZONE, ...subject }), PermissionDeniedError);
    expect(codes(denied)).toEqual([10000]);
    // Read is enough to list.
    const page = await readOnly.customCsrs.list({ zone_id: ZONE, per_page: 5 });
    // The SDK types result_info as {page, per_page}; the wire has Cloudflare's full object.
    expect((page.result_info as { total_count?: number }).total_count).toBeGreaterThan(0);

    const otherZone = await rejection(writer().customCsrs.list({ zone_id: scopeId("other") }), PermissionDeniedError);
    expect(codes(otherZone)).toEqual([10000]);

    const expired = tokenClient(mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE], ttl: -3600 }));
    const stale = await rejection(expired.customCsrs.list({ zone_id: ZONE }), AuthenticationError);
    expect(codes(stale)).toEqual([1003]);
  });
});

describe("cloudflare SDK: customCsrs with a global API key (apiEmail + apiKey)", () => {
  it("creates, gets, lists and deletes in the key's account and zone", async () => {
    const client = legacyClient(legacy.email, legacy.key);
    const made = [];
    for (const params of [{ account_id: LEGACY_ACCOUNT }, { zone_id: LEGACY_ZONE }]) {
      for (const keyType of ["rsa2048", "p256v1"] as const) {
        const created = await client.customCsrs.create({ ...params, ...subject, key_type: keyType });
        expect(await client.customCsrs.get(created.id, params)).toEqual(created);
        made.push(created);
      }
      const listed = [];
      for await (const item of client.customCsrs.list({ ...params, per_page: 5 })) listed.push(item.id);
      expect(listed).toEqual(made.slice(-2).map((c) => c.id));
    }
    await expectCsrsVerified(made);
    for (const [i, created] of made.entries()) {
      const params = i < 2 ? { account_id: LEGACY_ACCOUNT } : { zone_id: LEGACY_ZONE };
      expect(await client.customCsrs.delete(created.id, params)).toEqual({ id: created.id });
    }
    expect((await client.customCsrs.list({ zone_id: LEGACY_ZONE })).result).toEqual([]);
  });

  it("refuses a wrong key (401, 9103), an unknown email, and a scope the key does not cover (403)", async () => {
    const wrongKey = await rejection(
      legacyClient(legacy.email, `${legacy.key.slice(0, -1)}${legacy.key.endsWith("0") ? "1" : "0"}`).customCsrs.list({ zone_id: LEGACY_ZONE }),
      AuthenticationError,
    );
    expect(codes(wrongKey)).toEqual([9103]);
    const unknown = await rejection(
      legacyClient("nobody@customer-three.com", legacy.key).customCsrs.list({ zone_id: LEGACY_ZONE }),
      AuthenticationError,
    );
    expect(codes(unknown)).toEqual([9103]);
    const outside = await rejection(
      legacyClient(legacy.email, legacy.key).customCsrs.create({ zone_id: ZONE, ...subject }),
      PermissionDeniedError,
    );
    expect(codes(outside)).toEqual([10000]);
  });
});

describe("cloudflare SDK: auditLogs.list", () => {
  it("pages an account's trail with the SDK's own auto-pagination and filters", async () => {
    const account = scopeId("audit");
    const token = mintToken(server.secrets.API_TOKEN_SECRET, { accounts: [account] });
    const client = tokenClient(token);
    const made = [];
    for (let i = 0; i < 3; i++) made.push(await client.customCsrs.create({ account_id: account, ...subject, key_type: "p256v1" }));
    await client.customCsrs.delete(made[0]!.id, { account_id: account });

    const entries = [];
    for await (const entry of client.auditLogs.list({ account_id: account, per_page: 2 })) entries.push(entry);
    expect(entries.map((e) => [e.action?.type, e.action?.result, e.resource?.type, e.resource?.id])).toEqual([
      ["delete", true, "custom_csr", made[0]!.id],
      ["create", true, "custom_csr", made[2]!.id],
      ["create", true, "custom_csr", made[1]!.id],
      ["create", true, "custom_csr", made[0]!.id],
    ]);
    for (const entry of entries) {
      expect(entry.actor).toMatchObject({ type: "user" });
      expect(entry.owner).toEqual({ id: account });
      expect(Date.parse(entry.when!)).toBeGreaterThan(Date.now() - 600_000);
      expect(entry.metadata).toMatchObject({ key_type: "p256v1", common_name: subject.common_name, sans: subject.sans });
    }
    expect(new Set(entries.map((e) => e.id)).size).toBe(4);

    const deletes = await client.auditLogs.list({ account_id: account, action: { type: "delete" } });
    expect(deletes.result.map((e) => e.id)).toEqual([entries[0]!.id]);
    const oldestFirst = await client.auditLogs.list({ account_id: account, direction: "asc", since: entries[3]!.when! });
    expect(oldestFirst.result.map((e) => e.id)).toEqual([...entries].reverse().map((e) => e.id));
    expect((await client.auditLogs.list({ account_id: account, id: entries[1]!.id! })).result.map((e) => e.id)).toEqual([entries[1]!.id]);

    // A global API key is recorded by its email, and found by it.
    const legacyAccount = legacyClient(legacy.email, legacy.key);
    const created = await legacyAccount.customCsrs.create({ account_id: LEGACY_ACCOUNT, ...subject, key_type: "p256v1" });
    const mine = await legacyAccount.auditLogs.list({ account_id: LEGACY_ACCOUNT, actor: { email: legacy.email } });
    expect(mine.result[0]).toMatchObject({ actor: { email: legacy.email, type: "user" }, resource: { id: created.id } });

    const refused = await rejection(client.auditLogs.list({ account_id: account, actor: { ip: "10.0.0.1" } }), BadRequestError);
    expect(codes(refused)).toEqual([1435]);
  });
});

describe("cloudflare SDK: zones that belong to accounts", () => {
  it("an account-wide token from the token tool works on the account's zones, and their CSRs carry account_tag", async () => {
    const [account, zone, other] = [scopeId("owner"), scopeId("owned"), scopeId("stray")];
    const token = await tokenTool(["--account-zones", account]);
    const client = tokenClient(token);
    // Not recorded yet: an account token does not cover the zone.
    const before = await rejection(client.customCsrs.list({ zone_id: zone }), PermissionDeniedError);
    expect(codes(before)).toEqual([10000]);
    const recorded = await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/zones/${zone}/account`, { account_id: account });
    expect(recorded.status, recorded.text).toBe(200);
    const created = await client.customCsrs.create({ zone_id: zone, ...subject, key_type: "p256v1" });
    expect(created.account_tag).toBe(account);
    expect((await client.customCsrs.get(created.id, { zone_id: zone })).account_tag).toBe(account);
    const listed = [];
    for await (const csr of client.customCsrs.list({ zone_id: zone })) listed.push(csr.account_tag);
    expect(listed).toEqual([account]);
    const stray = await rejection(client.customCsrs.list({ zone_id: other }), PermissionDeniedError);
    expect(codes(stray)).toEqual([10000]);
  });
});

/** The project's token tool, run as an operator would, with the server's signing secret in its environment. */
function tokenTool(args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      [join(REPO_ROOT, "scripts", "token.mjs"), ...args],
      { env: { ...process.env, API_TOKEN_SECRET: server.secrets.API_TOKEN_SECRET }, encoding: "utf8" },
      (error, stdout, stderr) => (error ? fail(new Error(`${error.message}\n${stderr}`)) : done(stdout.trim())),
    );
  });
}
