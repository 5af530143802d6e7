import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { adminHeaders, call, csrBody, expectError, scope, tenantStub } from "./shared";

type Scope = Awaited<ReturnType<typeof scope>>;

function setEntitlement(s: Scope, body: unknown, headers: Record<string, string> = adminHeaders) {
  return call<{ granted: boolean; quota: number; used: number }>("PUT", `/admin/v1/${s.kind}/${s.id}/entitlement`, { body, headers });
}

describe("entitlements (1403, 1404) and the admin endpoint", () => {
  it("defaults come from wrangler.toml vars", async () => {
    const s = await scope();
    const reply = await call("GET", `/admin/v1/${s.kind}/${s.id}/entitlement`, { headers: adminHeaders });
    expect(reply.status).toBe(200);
    expect(reply.body.result).toEqual({ granted: true, quota: 1_000_000, used: 0 });
  });

  it("refuses the admin endpoint without the admin secret, or with an API token", async () => {
    const s = await scope();
    expectError(await setEntitlement(s, { granted: false, quota: 0 }, {}), 400, 1402);
    expectError(await setEntitlement(s, { granted: false, quota: 0 }, { authorization: "Bearer wrong" }), 403, 10000);
    expectError(await setEntitlement(s, { granted: false, quota: 0 }, { authorization: `Bearer ${s.token}` }), 403, 10000);
    expectError(await setEntitlement(s, { granted: "no", quota: 0 }), 400, 1430);
    expectError(await setEntitlement(s, { granted: true, quota: -1 }), 400, 1421);
    expectError(await setEntitlement(s, { granted: true, quota: 1.5 }), 400, 1430);
    expectError(await setEntitlement(s, [1]), 400, 1400);
  });

  it("1404 when access is not granted, checked before the body", async () => {
    const s = await scope();
    expect((await setEntitlement(s, { granted: false, quota: 10 })).status).toBe(200);
    expectError(await s.create(csrBody()), 403, 1404);
    expectError(await s.create({ nonsense: true }), 403, 1404);
    // Reading is not generating: list still answers.
    expect((await s.list()).status).toBe(200);
  });

  it("1403 when no quota is allocated or it is used up; deletes free it again", async () => {
    const s = await scope();
    await setEntitlement(s, { granted: true, quota: 0 });
    expectError(await s.create(csrBody()), 403, 1403);
    await setEntitlement(s, { granted: true, quota: 2 });
    const first = await s.create(csrBody({ key_type: "p256v1" }));
    expect(first.status).toBe(201);
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    expectError(await s.create(csrBody({ key_type: "p256v1" })), 403, 1403);
    await s.remove(first.body.result.id);
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
  });

  it("concurrent creates end at exactly the quota", async () => {
    const s = await scope();
    await setEntitlement(s, { granted: true, quota: 7 });
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => s.create(csrBody({ key_type: i % 2 ? "p256v1" : "rsa2048" }))),
    );
    const statuses = replies.map((r) => r.status);
    expect(statuses.filter((st) => st === 201)).toHaveLength(7);
    for (const r of replies.filter((r) => r.status !== 201)) expectError(r, 403, 1403);
    const stored = await runInDurableObject(tenantStub(s.kind, s.id), (_, state) => ({
      rows: state.storage.sql.exec("SELECT count(*) AS n FROM csrs").one().n,
      keys: state.storage.sql.exec("SELECT count(*) AS n FROM wrapped_keys").one().n,
      counter: state.storage.sql.exec("SELECT value FROM counters WHERE name = 'csrs'").one().value,
    }));
    expect(stored).toEqual({ rows: 7, keys: 7, counter: 7 });
    expect((await s.list()).body.result_info?.total_count).toBe(7);
  });
});

describe("admin stats", () => {
  it("counts what the scope holds and how large its database is", async () => {
    const s = await scope();
    const before = await call<{ csrs: number; certificates: number; database_bytes: number }>("GET", `/admin/v1/${s.kind}/${s.id}/stats`, { headers: adminHeaders });
    expect(before.body.result).toMatchObject({ csrs: 0, certificates: 0 });
    for (let i = 0; i < 20; i++) await s.create(csrBody({ key_type: "p256v1" }));
    const after = await call<{ csrs: number; database_bytes: number }>("GET", `/admin/v1/${s.kind}/${s.id}/stats`, { headers: adminHeaders });
    expect(after.body.result.csrs).toBe(20);
    expect(after.body.result.database_bytes).toBeGreaterThan(before.body.result.database_bytes);
    expectError(await call("GET", `/admin/v1/${s.kind}/${s.id}/stats`, { token: s.token }), 403, 10000);
  });
});
