import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { grantsFromPolicies, needsZoneAccount } from "../src/auth/policies";
import type { AuditLogRecord } from "../src/tenant/audit-records";
import { ZONE_ACCOUNT_TTL_MS, directory, zoneAccount } from "../src/http/zone-accounts";
import { type Kind, adminCall, adminHeaders, call, csrBody, expectError, scopeId, tenantStub } from "./shared";
import { LEGACY_EMAIL, LEGACY_TEST_KEY, mintToken } from "./tokens";
import type { CsrRecord } from "./envelope";

const ACCOUNT = "com.cloudflare.api.account.";
const ZONE = "com.cloudflare.api.account.zone.";

/** A token with exactly these policies (Cloudflare's shape), SSL and Certificates Write unless told. */
function policyToken(policies: Array<{ effect?: "allow" | "deny"; resources: Record<string, unknown>; group?: string }>): Promise<string> {
  const iat = Math.floor(Date.now() / 1000);
  return mintToken({
    claims: {
      jti: crypto.randomUUID(),
      iat,
      exp: iat + 600,
      policies: policies.map((p) => ({
        effect: p.effect ?? "allow",
        resources: p.resources,
        permission_groups: [{ name: p.group ?? "SSL and Certificates Write" }],
      })),
    },
  });
}

const allZonesOf = (account: string) => ({ [`${ACCOUNT}${account}`]: { [`${ZONE}*`]: "*" } });
const zoneOf = (account: string, zone: string) => ({ [`${ACCOUNT}${account}`]: { [`${ZONE}${zone}`]: "*" } });

const recordZone = (zone: string, account: string) => call<Record<string, unknown>>("PUT", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders, body: { account_id: account } });
const forgetZone = (zone: string) => call<Record<string, unknown>>("DELETE", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders });
const csrs = (kind: Kind, id: string) => `/client/v4/${kind}/${id}/custom_csrs`;
const list = (zone: string, token: string) => call<CsrRecord[]>("GET", csrs("zones", zone), { token });
const create = (zone: string, token: string, body: unknown = csrBody({ key_type: "p256v1" })) => call<CsrRecord>("POST", csrs("zones", zone), { token, body });

describe("the zone → account directory (admin)", () => {
  it("records, reads, moves and forgets a zone's account; lists an account's zones", async () => {
    const [zone, a, b] = [scopeId("z"), scopeId("a"), scopeId("b")];
    expectError(await call("GET", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders }), 404, 1490);
    const first = await recordZone(zone, a);
    expect(first.status).toBe(200);
    expect(first.body.result).toEqual({ zone_id: zone, account_id: a, recorded_on: expect.any(String), previous_account_id: null, csrs_retagged: 0 });
    expect((await call("GET", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders })).body.result).toEqual({
      zone_id: zone,
      account_id: a,
      recorded_on: first.body.result.recorded_on,
    });
    const zonesOf = (account: string, query = "") => call<Array<{ zone_id: string }>>("GET", `/admin/v1/accounts/${account}/zones${query}`, { headers: adminHeaders });
    expect((await zonesOf(a)).body.result.map((z) => z.zone_id)).toEqual([zone]);
    expect((await recordZone(zone, b)).body.result).toMatchObject({ account_id: b, previous_account_id: a });
    expect((await zonesOf(a)).body.result).toEqual([]);
    expect((await zonesOf(b)).body.result_info).toEqual({ count: 1, page: 1, per_page: 20, total_count: 1, total_pages: 1 });
    expect((await forgetZone(zone)).body.result).toEqual({ zone_id: zone, previous_account_id: b, csrs_retagged: 0 });
    expectError(await call("GET", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders }), 404, 1490);
    expectError(await forgetZone(zone), 404, 1490);
  });

  it("refuses bad input, other scope kinds and callers without the admin secret", async () => {
    const zone = scopeId("z");
    const put = (body: unknown, headers: Record<string, string> = adminHeaders, path = `/admin/v1/zones/${zone}/account`) => call("PUT", path, { headers, body });
    expectError(await put([1]), 400, 1400);
    expectError(await put({}), 400, 1430);
    expectError(await put({ account_id: 7 }), 400, 1430);
    const bad = await put({ account_id: "no spaces" });
    expectError(bad, 400, 1434);
    expect(bad.body.errors[0]!.source).toEqual({ pointer: "/account_id" });
    expectError(await put({ account_id: "a" }, adminHeaders, `/admin/v1/accounts/${zone}/account`), 404, 7000);
    expectError(await call("GET", `/admin/v1/zones/${zone}/zones`, { headers: adminHeaders }), 404, 7000);
    expectError(await call("GET", `/admin/v1/accounts/a/zones?per_page=4`, { headers: adminHeaders }), 400, 1435);
    expectError(await put({ account_id: "a" }, {}), 400, 1402);
    expectError(await put({ account_id: "a" }, { authorization: `Bearer ${await mintToken({ zones: [zone] })}` }), 403, 10000);
    expectError(await call("GET", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders }), 404, 1490);
  });
});

describe("account_tag on a zone's CSRs", () => {
  it("is its recorded account's: earlier CSRs are stamped, new ones carry it, a move re-tags, forgetting clears; each change is audited", async () => {
    const [zone, a, b] = [scopeId("z"), scopeId("a"), scopeId("b")];
    const token = await mintToken({ zones: [zone] });
    const before = (await create(zone, token)).body.result;
    expect(before.account_tag).toBeUndefined();
    expect((await recordZone(zone, a)).body.result).toMatchObject({ csrs_retagged: 1 });
    expect((await call<CsrRecord>("GET", `${csrs("zones", zone)}/${before.id}`, { token })).body.result.account_tag).toBe(a);
    const after = (await create(zone, token)).body.result;
    expect(after.account_tag).toBe(a);
    expect((await recordZone(zone, b)).body.result).toMatchObject({ csrs_retagged: 2, previous_account_id: a });
    const listed = await call<CsrRecord[]>("GET", `${csrs("zones", zone)}?order=account_tag&direction=desc`, { token });
    expect(listed.body.result.map((r) => [r.id, r.account_tag])).toEqual([
      [after.id, b],
      [before.id, b],
    ]);
    // Recording the same account again changes nothing and records nothing.
    expect((await recordZone(zone, b)).body.result).toMatchObject({ csrs_retagged: 0, previous_account_id: b });
    expect((await forgetZone(zone)).body.result).toMatchObject({ csrs_retagged: 2 });
    expect((await list(zone, token)).body.result.every((r) => r.account_tag === undefined)).toBe(true);

    const trail = (await call<AuditLogRecord[]>("GET", `/client/v4/zones/${zone}/audit_logs?action.type=update&direction=asc`, { token })).body.result;
    const moves = trail.filter((e) => e.resource.type === "zone_account");
    expect(moves.map((e) => [e.actor.type, e.resource.id, e.metadata])).toEqual([
      ["admin", zone, { account_id: a, previous: null, csrs_retagged: 1 }],
      ["admin", zone, { account_id: b, previous: a, csrs_retagged: 2 }],
    ]);
    const removed = (await call<AuditLogRecord[]>("GET", `/client/v4/zones/${zone}/audit_logs?action.type=delete`, { token })).body.result;
    expect(removed[0]).toMatchObject({ resource: { type: "zone_account", id: zone }, metadata: { account_id: null, previous: b, csrs_retagged: 2 } });
  });
});

describe("account-wide tokens (nested resources)", () => {
  it("{account: {zone.*}} covers every zone recorded under the account, and nothing else", async () => {
    const [a, b, mine, theirs, loose] = [scopeId("a"), scopeId("b"), scopeId("z"), scopeId("z"), scopeId("z")];
    await recordZone(mine, a);
    await recordZone(theirs, b);
    const token = await policyToken([{ resources: allZonesOf(a) }]);
    expect((await create(mine, token)).status).toBe(201);
    expectError(await create(theirs, token), 403, 10000);
    // A zone never recorded: an account token never covers it.
    expectError(await create(loose, token), 403, 10000);
    // The nested form covers the account's zones, not the account itself.
    expectError(await call("GET", csrs("accounts", a), { token }), 403, 10000);
    // Read-only nested grants read, not write.
    const reader = await policyToken([{ resources: allZonesOf(a), group: "SSL and Certificates Read" }]);
    expect((await list(mine, reader)).status).toBe(200);
    expectError(await create(mine, reader), 403, 10000);
  });

  it("{account: {zone.<id>}} covers that zone only while it belongs to that account", async () => {
    const [a, b, zone] = [scopeId("a"), scopeId("b"), scopeId("z")];
    const token = await policyToken([{ resources: zoneOf(a, zone) }]);
    expectError(await list(zone, token), 403, 10000);
    await recordZone(zone, a);
    expect((await list(zone, token)).status).toBe(200);
    await recordZone(zone, b);
    expectError(await list(zone, token), 403, 10000);
  });

  it("a moved zone: the old account's token stops working on it, the new one's starts (at once in the isolate that moved it)", async () => {
    const [a, b, zone] = [scopeId("a"), scopeId("b"), scopeId("z")];
    await recordZone(zone, a);
    const tokenA = await policyToken([{ resources: allZonesOf(a) }]);
    const tokenB = await policyToken([{ resources: allZonesOf(b) }]);
    expect((await create(zone, tokenA)).status).toBe(201);
    expectError(await create(zone, tokenB), 403, 10000);
    await recordZone(zone, b);
    expectError(await create(zone, tokenA), 403, 10000);
    expect((await create(zone, tokenB)).status).toBe(201);
    await forgetZone(zone);
    expectError(await list(zone, tokenB), 403, 10000);
  });

  it("deny keeps winning, in either form", async () => {
    const [a, zone] = [scopeId("a"), scopeId("z")];
    await recordZone(zone, a);
    const nestedDeny = await policyToken([
      { resources: { [`${ZONE}${zone}`]: "*" } },
      { effect: "deny", resources: allZonesOf(a) },
    ]);
    expectError(await list(zone, nestedDeny), 403, 10000);
    const directDeny = await policyToken([
      { resources: allZonesOf(a) },
      { effect: "deny", resources: { [`${ZONE}${zone}`]: "*" } },
    ]);
    expectError(await list(zone, directDeny), 403, 10000);
    // A deny scoped to another account's zones does not touch this one.
    const elsewhere = await policyToken([
      { resources: allZonesOf(a) },
      { effect: "deny", resources: allZonesOf(scopeId("b")) },
    ]);
    expect((await list(zone, elsewhere)).status).toBe(200);
  });

  it("a deny naming a zone inside an account denies that zone whatever account it is under (fail closed)", async () => {
    const [a, zone, loose] = [scopeId("a"), scopeId("z"), scopeId("z")];
    await recordZone(zone, a);
    for (const target of [zone, loose]) {
      const token = await policyToken([
        { resources: { [`${ZONE}${target}`]: "*" } },
        { effect: "deny", resources: zoneOf(scopeId("someone-else"), target) },
      ]);
      expectError(await list(target, token), 403, 10000);
    }
  });

  it("a global API key listing an account covers the zones recorded under it", async () => {
    const legacy = { "x-auth-email": LEGACY_EMAIL, "x-auth-key": LEGACY_TEST_KEY };
    const zone = scopeId("z");
    expectError(await call("GET", csrs("zones", zone), { headers: legacy }), 403, 10000);
    await recordZone(zone, "legacyacct");
    expect((await call("GET", csrs("zones", zone), { headers: legacy })).status).toBe(200);
    await recordZone(zone, scopeId("other"));
    expectError(await call("GET", csrs("zones", zone), { headers: legacy }), 403, 10000);
  });

  it("keeps the check order: path, credentials, scope and permission, entitlement, body", async () => {
    const [a, zone, loose] = [scopeId("a"), scopeId("z"), scopeId("z")];
    await recordZone(zone, a);
    const token = await policyToken([{ resources: allZonesOf(a) }]);
    expectError(await call("POST", "/client/v4/zones//custom_csrs", { token, body: "x" }), 400, 1401);
    expectError(await call("POST", `/client/v4/zones/${zone}/custom_csrs`, { body: "x" }), 400, 1402);
    expectError(await call("POST", `/client/v4/zones/${zone}/custom_csrs`, { token: `${token}x`, body: "x" }), 401, 1003);
    expectError(await create(loose, token, "x"), 403, 10000);
    await call("PUT", `/admin/v1/zones/${zone}/entitlement`, { headers: adminHeaders, body: { granted: false, quota: 5 } });
    expectError(await create(zone, token, "x"), 403, 1404);
    await call("PUT", `/admin/v1/zones/${zone}/entitlement`, { headers: adminHeaders, body: { granted: true, quota: 5 } });
    expectError(await create(zone, token, "x"), 400, 1400);
  });
});

describe("concurrent moves", () => {
  it("end where the zone's object ended, even when the directory hears of them out of order", async () => {
    const [a, b, zone] = [scopeId("a"), scopeId("b"), scopeId("z")];
    const token = await mintToken({ zones: [zone] });
    await create(zone, token);
    // Two moves whose steps interleave badly: both zone-object steps, then
    // the directory steps in the opposite order (what two concurrent PUTs can do).
    const stub = tenantStub("zones", zone);
    const toA = await stub.linkAccount(adminCall("zones", zone), a, 0);
    const toB = await stub.linkAccount(adminCall("zones", zone), b, 0);
    if (!toA.ok || !toB.ok) throw new Error("link failed");
    expect(toB.value.revision).toBeGreaterThan(toA.value.revision);
    expect((await directory(env).setZone(zone, b, toB.value.revision)).ok).toBe(true);
    const stale = await directory(env).setZone(zone, a, toA.value.revision);
    expect(stale).toMatchObject({ ok: true, value: { account_id: b } });
    expect(await directory(env).accountOf(zone)).toBe(b);
    expect((await list(zone, token)).body.result.map((r) => r.account_tag)).toEqual([b]);
    // A forgotten zone stays forgotten when an older move arrives late.
    const forgot = await stub.linkAccount(adminCall("zones", zone), null, 0);
    if (!forgot.ok) throw new Error("unlink failed");
    await directory(env).setZone(zone, null, forgot.value.revision);
    await directory(env).setZone(zone, a, toA.value.revision);
    expect(await directory(env).accountOf(zone)).toBeNull();
    expectError(await call("GET", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders }), 404, 1490);
  });

  it("a directory ahead of the zone's object (the two restored from different moments) still takes the next PUT and DELETE", async () => {
    const [a, b, c, zone] = [scopeId("a"), scopeId("b"), scopeId("c"), scopeId("z")];
    const token = await mintToken({ zones: [zone] });
    await create(zone, token);
    expect((await call("PUT", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders, body: { account_id: a } })).status).toBe(200);
    // The directory's copy is from later than the object's: the zone had moved on to b, revision 50.
    expect((await directory(env).setZone(zone, b, 50)).ok).toBe(true);
    const removed = await call("DELETE", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders });
    expect(removed.status).toBe(200);
    expect(await directory(env).accountOf(zone)).toBeNull();
    const moved = await call<{ account_id: string }>("PUT", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders, body: { account_id: c } });
    expect(moved.body.result.account_id).toBe(c);
    expect(await directory(env).accountOf(zone)).toBe(c);
    expect((await list(zone, token)).body.result.map((r) => r.account_tag)).toEqual([c]);
  });

  it("a DELETE racing a PUT: either may land last, and the directory, the zone's CSRs and the answers agree on which", async () => {
    const token = await mintToken({ zones: ["*"] });
    for (let round = 0; round < 8; round++) {
      const [a, b, zone] = [scopeId("a"), scopeId("b"), scopeId("z")];
      await create(zone, token);
      await call("PUT", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders, body: { account_id: a } });
      const [removed, moved] = await Promise.all([
        call("DELETE", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders }),
        call<{ account_id: string }>("PUT", `/admin/v1/zones/${zone}/account`, { headers: adminHeaders, body: { account_id: b } }),
      ]);
      expect(moved.status).toBe(200);
      const standing = await directory(env).accountOf(zone);
      // A CSR of a zone with no account has no account_tag at all (the field is left out, as Cloudflare does).
      const tags = (await list(zone, token)).body.result.map((r) => r.account_tag ?? null);
      expect(tags).toEqual([standing]);
      if (standing === null) {
        // The DELETE landed last: it answered 200 and the PUT's answer showed b, which then went.
        expect(removed.status).toBe(200);
      } else {
        expect(standing).toBe(b);
        expect(moved.body.result.account_id).toBe(b);
        // The DELETE came first (200) or was overtaken (1491, naming b).
        if (removed.status !== 200) {
          expectError(removed, 409, 1491);
          expect(JSON.stringify(removed.body)).toContain(b);
        }
      }
    }
  });
});

describe("the Worker's cache of zone accounts", () => {
  it("answers from what it read for at most ZONE_ACCOUNT_TTL_MS, then reads the directory again", async () => {
    const [a, b, zone] = [scopeId("a"), scopeId("b"), scopeId("z")];
    await directory(env).setZone(zone, a, 1);
    const t0 = Date.now() + 60_000; // a clock of the test's own, ahead of anything cached by requests
    expect(await zoneAccount(env, zone, t0)).toBe(a);
    // Moved behind this cache's back (as another isolate would).
    await directory(env).setZone(zone, b, 2);
    expect(await zoneAccount(env, zone, t0 + ZONE_ACCOUNT_TTL_MS - 1)).toBe(a);
    expect(await zoneAccount(env, zone, t0 + ZONE_ACCOUNT_TTL_MS)).toBe(b);
    expect(ZONE_ACCOUNT_TTL_MS).toBeLessThanOrEqual(10_000);
  });
});

describe("when authorization looks a zone's account up", () => {
  const zone = { kind: "zones" as const, id: "z1" };
  const grants = (policies: Array<{ effect?: "allow" | "deny"; resources: Record<string, unknown> }>) =>
    grantsFromPolicies(policies.map((p) => ({ effect: p.effect ?? "allow", resources: p.resources, permission_groups: [{ name: "SSL and Certificates Read" }] })))!;
  it("only when the account could change the decision", () => {
    const flatAllow = { resources: { [`${ZONE}z1`]: "*" } };
    const flatDeny = { effect: "deny" as const, resources: { [`${ZONE}z1`]: "*" } };
    expect(needsZoneAccount(grants([flatAllow]), zone, "read")).toBe(false);
    expect(needsZoneAccount(grants([flatAllow, { resources: allZonesOf("a") }]), zone, "read")).toBe(false);
    expect(needsZoneAccount(grants([flatDeny, { resources: allZonesOf("a") }]), zone, "read")).toBe(false);
    expect(needsZoneAccount(grants([{ resources: allZonesOf("a") }]), zone, "read")).toBe(true);
    expect(needsZoneAccount(grants([flatAllow, { effect: "deny", resources: allZonesOf("a") }]), zone, "read")).toBe(true);
    expect(needsZoneAccount(grants([{ resources: allZonesOf("a") }, { effect: "deny", resources: allZonesOf("b") }]), zone, "read")).toBe(true);
    expect(needsZoneAccount(grants([{ resources: allZonesOf("a") }]), { kind: "accounts", id: "a" }, "read")).toBe(false);
  });
});

describe("nested resources in token policies", () => {
  it("grant zones under an account; other shapes grant nothing", () => {
    const grants = grantsFromPolicies([
      {
        effect: "allow",
        resources: {
          ...allZonesOf("a1"),
          [`${ACCOUNT}a2`]: { [`${ZONE}z2`]: "*", [`${ZONE}z3`]: "read", [`${ACCOUNT}a9`]: "*", [`${ZONE}z4`]: { x: "*" } },
          [`${ZONE}z5`]: { [`${ZONE}z6`]: "*" },
          [`${ACCOUNT}a3`]: ["*"],
        },
        permission_groups: [{ name: "SSL and Certificates Read" }],
      },
    ]);
    expect(grants).toEqual([
      { effect: "allow", permission: "read", scope: "zones:*", account: "a1" },
      { effect: "allow", permission: "audit", scope: "zones:*", account: "a1" },
      { effect: "allow", permission: "read", scope: "zones:z2", account: "a2" },
      { effect: "allow", permission: "audit", scope: "zones:z2", account: "a2" },
    ]);
  });
});
