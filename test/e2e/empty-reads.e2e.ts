// The operator's reads of scopes that were never written, and a malformed
// create in one, store nothing (review of issue 19, M3): each answers as the
// empty scope's object would, without waking it, so no object database file
// appears for it (which would also make `npm start` think the data directory
// holds keys).
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { admin, call, csrBody, expectError } from "./api";
import { mintToken, scopeId } from "./credentials";
import { startServer } from "./server";

const root = inject("e2eRoot");

/** Every file of the tenant objects' storage (databases and their -wal, -shm). */
function tenantFiles(dataDir: string): string[] {
  const dir = join(dataDir, "v3", "do", "custom-csr-api-TenantStore");
  return existsSync(dir) ? readdirSync(dir).filter((f) => f !== "metadata.sqlite" && !f.startsWith("metadata.sqlite")).sort() : [];
}

describe("admin reads and malformed creates of scopes that were never written", () => {
  it("answer as an empty scope and create no file", async () => {
    const server = await startServer({ root, name: "empty-reads" });
    try {
      const secret = server.secrets.ADMIN_SECRET;
      const writer = mintToken(server.secrets.API_TOKEN_SECRET, { zones: ["written"] });
      expect((await call(server.origin, "POST", "/client/v4/zones/written/custom_csrs", { token: writer, json: csrBody() })).status).toBe(201);
      const before = tenantFiles(server.dataDir);
      const anyZone = mintToken(server.secrets.API_TOKEN_SECRET, { zones: ["*"], accounts: ["*"] });
      for (let i = 0; i < 5; i++) {
        for (const kind of ["zones", "accounts"]) {
          const id = scopeId("unwritten");
          const stats = await admin<{ csrs: number; audit: { entries: number; keyed_from: null } }>(server.origin, secret, "GET", `/${kind}/${id}/stats`);
          expect(stats.status).toBe(200);
          expect(stats.body?.result).toMatchObject({ csrs: 0, certificates: 0, database_bytes: 0, audit: { entries: 0, keyed_from: null } });
          const entitlement = await admin(server.origin, secret, "GET", `/${kind}/${id}/entitlement`);
          expect(entitlement.status).toBe(200);
          expect(entitlement.body?.result).toMatchObject({ used: 0 });
          expect((await admin(server.origin, secret, "GET", `/${kind}/${id}/key_pool`)).body?.result).toMatchObject({ available: 0, started: false });
          expect((await admin(server.origin, secret, "POST", `/${kind}/${id}/key_pool/verify`)).body?.result).toEqual({ checked: 0, ok: true, failed: [], failures: [] });
          expect((await admin(server.origin, secret, "POST", `/${kind}/${id}/audit/verify`)).body?.result).toMatchObject({ ok: true, entries: 0, keyed_from: null });
          const exported = await admin(server.origin, secret, "GET", `/${kind}/${id}/audit/export`);
          expect({ status: exported.status, text: exported.text }).toEqual({ status: 200, text: "" });
          expectError(await admin(server.origin, secret, "GET", `/${kind}/${id}/audit/export?after=${crypto.randomUUID()}`), 404, 1481);
          expectError(await admin(server.origin, secret, "POST", `/${kind}/${id}/custom_csrs/${crypto.randomUUID()}/verify`), 404, 1419);
          // A create whose body is refused: the same code as a written scope's object gives.
          expectError(await call(server.origin, "POST", `/client/v4/${kind}/${id}/custom_csrs`, { token: anyZone, json: { ...csrBody(), country: "" } }), 400, 1405);
          expectError(await call(server.origin, "POST", `/client/v4/${kind}/${id}/custom_csrs`, { token: anyZone, json: { ...csrBody(), sans: [] } }), 400, 1411);
        }
      }
      expect(tenantFiles(server.dataDir)).toEqual(before);
    } finally {
      await server.stop();
    }
  });
});
