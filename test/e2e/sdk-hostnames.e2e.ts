// The SDK's customHostnames, unchanged, against npm start: a custom CSR's
// certificate on a custom hostname (signed by a throwaway OpenSSL CA), the
// list with the SDK's filters and auto-paging, edit, the bare delete body,
// the quota, the fallback origin, and a duplicate across zones, retried by
// the SDK's default client not at all (x-should-retry: false).
import { join } from "node:path";
import Cloudflare, { ConflictError, NotFoundError } from "cloudflare";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { mintToken, scopeId } from "./credentials";
import { opensslCa } from "./openssl-ca";
import { sdkClient } from "./sdk-client";
import { type TestServer, startServer } from "./server";

const ZONE = scopeId("host");
const OTHER_ZONE = scopeId("host");

let server: TestServer;
let client: Cloudflare;
let ca: ReturnType<typeof opensslCa>;


describe("cloudflare SDK: customHostnames", () => {
  beforeAll(async () => {
    server = await startServer({ root: inject("e2eRoot"), name: "sdk-hostnames" });
    client = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE, OTHER_ZONE] }) });
    ca = opensslCa(join(server.dir, "pki"), "/CN=e2e hostname CA");
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("creates a hostname with a custom CSR's certificate, active at once; reads, lists, edits and deletes it", async () => {
    const host = "shop.customer-eight.com";
    const csr = await client.customCsrs.create({
      zone_id: ZONE,
      common_name: host,
      country: "DE",
      state: "Berlin",
      locality: "Berlin",
      organization: "Customer Eight",
      sans: [host],
      key_type: "p256v1",
    });
    const certificate = ca.issue(csr.csr!, "shop") + ca.pem();
    const created = await client.customHostnames.create({
      zone_id: ZONE,
      hostname: host,
      custom_metadata: { tier: "gold" },
      ssl: { custom_csr_id: csr.id!, custom_certificate: certificate, bundle_method: "force", settings: { min_tls_version: "1.2" } },
    });
    expect(created).toMatchObject({
      hostname: host,
      status: "active",
      custom_metadata: { tier: "gold" },
      ssl: { status: "active", custom_csr_id: csr.id, bundle_method: "force", hosts: [host], settings: { min_tls_version: "1.2" }, issuer: "e2e hostname CA" },
    });
    expect(await client.customHostnames.get(created.id, { zone_id: ZONE })).toEqual(created);

    const page = await client.customHostnames.list({ zone_id: ZONE, hostname: { exact: host } });
    expect(page.result.map((h) => h.id)).toEqual([created.id]);

    const edited = await client.customHostnames.edit(created.id, { zone_id: ZONE, custom_origin_server: "origin.customer-eight.com" });
    expect(edited.custom_origin_server).toBe("origin.customer-eight.com");

    // The CSR is in use while the hostname is.
    await expect(client.customCsrs.delete(csr.id!, { zone_id: ZONE })).rejects.toBeInstanceOf(ConflictError);
    const deleted = await client.customHostnames.delete(created.id, { zone_id: ZONE });
    expect(deleted).toEqual({ id: created.id });
    await expect(client.customHostnames.get(created.id, { zone_id: ZONE })).rejects.toBeInstanceOf(NotFoundError);
  });

  it("auto-paging stops at the empty page past the end; the quota counts; a duplicate in another zone is a ConflictError the SDK does not retry", async () => {
    for (let i = 0; i < 7; i++) await client.customHostnames.create({ zone_id: ZONE, hostname: `tenant-${i}.customer-nine.com` });
    const seen: string[] = [];
    for await (const hostname of client.customHostnames.list({ zone_id: ZONE, per_page: 5 })) seen.push(hostname.hostname);
    expect(seen.sort()).toEqual(Array.from({ length: 7 }, (_, i) => `tenant-${i}.customer-nine.com`));
    expect(await client.customHostnames.quota.get({ zone_id: ZONE })).toEqual({ allocated: 10000, exceeded: false, hard_cap: 20000, used: 7 });

    // The default client retries a 409 twice unless told not to: one request reaches the server.
    const retrying = new Cloudflare({ baseURL: server.baseURL, apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [OTHER_ZONE] }), apiKey: null, apiEmail: null, userServiceKey: null });
    const conflicts = () => server.stdout().split("\n").filter((line) => line.includes(`zones:${OTHER_ZONE}`) && line.includes('"status":409')).length;
    const before = conflicts();
    const conflict = await retrying.customHostnames.create({ zone_id: OTHER_ZONE, hostname: "tenant-0.customer-nine.com" }).catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(ConflictError);
    expect((conflict as ConflictError).errors).toMatchObject([{ code: 1406, message: "Duplicate custom hostname found." }]);
    // The request log line is written as the reply goes: give it a moment to reach the file.
    await new Promise((done) => setTimeout(done, 500));
    expect(conflicts() - before).toBe(1);
  });

  it("sets, reads and deletes the fallback origin", async () => {
    expect(await client.customHostnames.fallbackOrigin.update({ zone_id: ZONE, origin: "fallback.customer-eight.com" })).toMatchObject({
      origin: "fallback.customer-eight.com",
      status: "active",
    });
    expect(await client.customHostnames.fallbackOrigin.get({ zone_id: ZONE })).toMatchObject({ origin: "fallback.customer-eight.com" });
    expect(await client.customHostnames.fallbackOrigin.delete({ zone_id: ZONE })).toMatchObject({ status: "pending_deletion" });
  });
});
