// Cloudflare's prioritize (PUT /zones/{id}/custom_certificates/prioritize,
// the SDK's customCertificates.prioritize.update), issue 21: the body as the
// Worker reads it, and the zone's object setting priorities all or none,
// each change an `update` audit entry with the priority before.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { parsePriorities } from "../src/http/certificate-routes";
import { errorInfo } from "../src/http/envelope";
import { type Keyring, loadKeyring } from "../src/pki/keyring";
import { openStorage } from "../src/storage/storage";
import type { AuditLogRecord } from "../src/tenant/audit-records";
import { AuditTrail } from "../src/tenant/audit-trail";
import type { CertificateListQuery, CertificateRecord, PriorityChange } from "../src/tenant/certificate-records";
import { CertificateSeals } from "../src/tenant/certificate-seal";
import { CertificateStore } from "../src/tenant/certificate-store";
import { Counters } from "../src/tenant/counters";
import { TENANT_MIGRATIONS } from "../src/tenant/schema";
import { adminCall, adminHeaders, call, csrBody, expectError, scope, tenantStub } from "./shared";
import { type TestCa, createCa, issueLeaf } from "./test-ca";
import { mintToken } from "./tokens";

type Zone = Awaited<ReturnType<typeof scope>>;

const ID = "2458ce5a-0c35-4c7f-82c7-8e9487d3ff60";
const OTHER = "7b163417-1d2b-4c84-a38a-2fb7a0cd7752";

describe("a prioritize body", () => {
  const integer = "must be an integer from 0 to 2147483647";
  const cases: Array<[string, unknown, Record<string, unknown>]> = [
    ["a JSON array", [{ id: ID, priority: 1 }], { reason: "invalid_json" }],
    ["a string", "certificates", { reason: "invalid_json" }],
    ["no certificates", {}, { reason: "invalid_priorities", pointer: "/certificates", rule: "is required" }],
    ["certificates null", { certificates: null }, { reason: "invalid_priorities", pointer: "/certificates", rule: "is required" }],
    ["certificates an object", { certificates: { id: ID, priority: 1 } }, { reason: "invalid_field_type", pointer: "/certificates" }],
    ["certificates a string", { certificates: ID }, { reason: "invalid_field_type", pointer: "/certificates" }],
    ["an entry a number", { certificates: [{ id: ID, priority: 1 }, 1] }, { reason: "invalid_field_type", pointer: "/certificates/1" }],
    ["an entry null", { certificates: [null] }, { reason: "invalid_field_type", pointer: "/certificates/0" }],
    ["an entry an array", { certificates: [[ID, 1]] }, { reason: "invalid_field_type", pointer: "/certificates/0" }],
    // The SDK's own example body: entries with neither member.
    ["entries without id (the SDK's example)", { certificates: [{}, {}] }, { reason: "invalid_priorities", pointer: "/certificates/0/id", rule: "is required" }],
    ["an id that is a number", { certificates: [{ id: 42, priority: 1 }] }, { reason: "invalid_field_type", pointer: "/certificates/0/id" }],
    ["a malformed id", { certificates: [{ id: "nope", priority: 1 }] }, { reason: "invalid_certificate_id", pointer: "/certificates/0/id" }],
    ["an id with a path in it", { certificates: [{ id: `${ID}/x`, priority: 1 }] }, { reason: "invalid_certificate_id", pointer: "/certificates/0/id" }],
    [
      "an id twice (in another case)",
      { certificates: [{ id: ID, priority: 1 }, { id: OTHER, priority: 2 }, { id: ID.toUpperCase(), priority: 3 }] },
      { reason: "invalid_priorities", pointer: "/certificates/2/id", rule: "repeats /certificates/0/id" },
    ],
    ["no priority", { certificates: [{ id: ID }] }, { reason: "invalid_priorities", pointer: "/certificates/0/priority", rule: "is required" }],
    ["a priority that is a string", { certificates: [{ id: ID, priority: "1" }] }, { reason: "invalid_field_type", pointer: "/certificates/0/priority" }],
    ["a priority that is a boolean", { certificates: [{ id: ID, priority: true }] }, { reason: "invalid_field_type", pointer: "/certificates/0/priority" }],
    ["a fraction", { certificates: [{ id: ID, priority: 1.5 }] }, { reason: "invalid_priorities", pointer: "/certificates/0/priority", rule: integer }],
    ["a negative priority", { certificates: [{ id: ID, priority: -1 }] }, { reason: "invalid_priorities", pointer: "/certificates/0/priority", rule: integer }],
    ["2^31", { certificates: [{ id: ID, priority: 2_147_483_648 }] }, { reason: "invalid_priorities", pointer: "/certificates/0/priority", rule: integer }],
    ["1e300", { certificates: [{ id: ID, priority: 1e300 }] }, { reason: "invalid_priorities", pointer: "/certificates/0/priority", rule: integer }],
  ];
  for (const [name, body, refusal] of cases) {
    it(`refuses ${name}`, () => {
      // As the Worker reads it: the JSON text parsed.
      expect(parsePriorities(JSON.parse(JSON.stringify(body)))).toEqual({ ok: false, ...refusal });
    });
  }

  it("reads distinct ids (lower-cased) with integer priorities from 0 to 2^31 - 1, each with its pointer; other members are ignored", () => {
    expect(parsePriorities({ certificates: [{ id: ID.toUpperCase(), priority: 2_147_483_647, note: "x" }, { id: OTHER, priority: 0 }], zone_id: "z" })).toEqual({
      ok: true,
      value: [
        { id: ID, priority: 2_147_483_647, pointer: "/certificates/0/id" },
        { id: OTHER, priority: 0, pointer: "/certificates/1/id" },
      ],
    });
    expect(parsePriorities({ certificates: [] })).toEqual({ ok: true, value: [] });
  });

  it("a refusal is 1478 naming the member, in the message and in source.pointer", () => {
    const refused = parsePriorities({ certificates: [{ id: ID, priority: 1 }, { id: ID, priority: 2 }] });
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(errorInfo(refused)).toEqual({
      code: 1478,
      message: "Invalid certificate priorities: /certificates/1/id repeats /certificates/0/id. Check your input and try again.",
      source: { pointer: "/certificates/1/id" },
    });
    expect(errorInfo({ reason: "invalid_certificate_id", pointer: "/certificates/0/id" })).toMatchObject({ code: 1448, source: { pointer: "/certificates/0/id" } });
    expect(errorInfo({ reason: "certificate_not_found", pointer: "/certificates/3/id" })).toMatchObject({ code: 1449, source: { pointer: "/certificates/3/id" } });
  });
});

describe("setting priorities in the zone's object", () => {
  let ca: TestCa;
  let keyring: Keyring;
  beforeAll(async () => {
    ca = await createCa("p256v1", "Prioritize Test CA");
    keyring = await loadKeyring(env.KEY_ENCRYPTION_KEYS);
  });

  const QUERY: CertificateListQuery = { page: 1, per_page: 50, direction: "asc" };

  async function zoneWith(n: number): Promise<{ z: Zone; certs: CertificateRecord[] }> {
    const z = await scope("zones");
    const certs: CertificateRecord[] = [];
    for (let i = 0; i < n; i++) {
      const csr = (await z.create(csrBody({ key_type: "p256v1" }))).body.result;
      const reply = await call<CertificateRecord>("POST", `/client/v4/zones/${z.id}/custom_certificates`, {
        token: z.token,
        body: { certificate: (await issueLeaf(ca, csr.csr)) + ca.pem, custom_csr_id: csr.id },
      });
      expect(reply.status).toBe(200);
      certs.push(reply.body.result);
    }
    return { z, certs };
  }

  /** The module built by hand on the object's real storage, as the object builds it; its audit trail keyed as a write's gate keys it. */
  const prioritize = (z: Zone, changes: PriorityChange[], query = QUERY) =>
    runInDurableObject(tenantStub("zones", z.id), (_, state) => {
      const storage = openStorage(state, TENANT_MIGRATIONS);
      const counters = new Counters(storage.sql);
      const audit = new AuditTrail(storage.sql, counters);
      audit.useKeyring(keyring);
      const store = new CertificateStore(storage, { pem: () => null }, counters, audit, new CertificateSeals(storage), () => new Date());
      const result = store.prioritize(adminCall("zones", z.id), changes, query);
      return result.ok ? { ok: true as const, items: JSON.parse(result.value.items) as CertificateRecord[], total: result.value.total } : result;
    });

  const stored = (z: Zone) =>
    runInDurableObject(tenantStub("zones", z.id), (_, state) =>
      state.storage.sql.exec("SELECT id, priority, modified_on, mac FROM certificates ORDER BY seq").toArray(),
    );
  const updates = async (z: Zone) =>
    (await call<AuditLogRecord[]>("GET", `/client/v4/zones/${z.id}/audit_logs?direction=asc&action.type=update`, { token: z.token })).body.result;
  const change = (id: string, priority: number, index: number): PriorityChange => ({ id, priority, pointer: `/certificates/${index}/id` });

  it("sets every named priority in one transaction, answers the list in its new order, and records each change with the priority before", async () => {
    const { z, certs } = await zoneWith(3);
    const [a, b, c] = certs.map((cert) => cert.id) as [string, string, string];
    const before = await stored(z);
    const result = await prioritize(z, [change(c, 7, 0), change(a, 3, 1)]);
    expect(result).toMatchObject({ ok: true, total: 3 });
    if (!result.ok) return;
    expect(result.items.map((r) => [r.id, r.priority])).toEqual([[c, 7], [a, 3], [b, 0]]);
    // Only priority changed: modified_on (what edges fetch again by) and the row's seal stay.
    const after = await stored(z);
    expect(after.map((r) => r.priority)).toEqual([3, 0, 7]);
    expect(after.map((r) => [r.modified_on, r.mac])).toEqual(before.map((r) => [r.modified_on, r.mac]));
    const entries = await updates(z);
    expect(entries.map((e) => [e.resource, e.action, e.metadata])).toEqual([
      [{ type: "custom_certificate", id: c }, { type: "update", result: true }, { custom_csr_id: certs[2]!.custom_csr_id, priority: 7, previous: 0 }],
      [{ type: "custom_certificate", id: a }, { type: "update", result: true }, { custom_csr_id: certs[0]!.custom_csr_id, priority: 3, previous: 0 }],
    ]);
    // The trail the hand-built module appended to is whole.
    const verified = await call<{ ok: boolean }>("POST", `/admin/v1/zones/${z.id}/audit/verify`, { headers: adminHeaders });
    expect(verified.body.result).toMatchObject({ ok: true });

    // Again, back down: the entry says what it was.
    await prioritize(z, [change(c, 0, 0)]);
    expect((await updates(z)).at(-1)!.metadata).toEqual({ custom_csr_id: certs[2]!.custom_csr_id, priority: 0, previous: 7 });
  });

  it("an id that is not the zone's refuses the whole body with its pointer: nothing is written, nothing recorded", async () => {
    const { z, certs } = await zoneWith(2);
    const before = await stored(z);
    const result = await prioritize(z, [change(certs[1]!.id, 9, 0), change(crypto.randomUUID(), 1, 1), change(certs[0]!.id, 2, 2)]);
    expect(result).toEqual({ ok: false, reason: "certificate_not_found", pointer: "/certificates/1/id" });
    expect(await stored(z)).toEqual(before);
    expect(await updates(z)).toEqual([]);
  });

  it("a priority set to what it is, or an empty list, writes and records nothing and answers the list", async () => {
    const { z, certs } = await zoneWith(2);
    await prioritize(z, [change(certs[1]!.id, 4, 0)]);
    const before = await stored(z);
    const entries = (await updates(z)).length;
    for (const changes of [[change(certs[1]!.id, 4, 0), change(certs[0]!.id, 0, 1)], []]) {
      const result = await prioritize(z, changes);
      expect(result).toMatchObject({ ok: true, total: 2 });
      if (result.ok) expect(result.items.map((r) => r.id)).toEqual([certs[1]!.id, certs[0]!.id]);
    }
    expect(await stored(z)).toEqual(before);
    expect((await updates(z)).length).toBe(entries);
  });

  it("answers the page the query asks for: its filter, its direction", async () => {
    const { z, certs } = await zoneWith(3);
    const result = await prioritize(z, [change(certs[0]!.id, 1, 0)], { page: 1, per_page: 5, direction: "desc", status: "expired" });
    expect(result).toEqual({ ok: true, items: [], total: 0 });
    const reversed = await prioritize(z, [], { page: 1, per_page: 5, direction: "desc" });
    if (reversed.ok) expect(reversed.items.map((r) => r.id)).toEqual([certs[2]!.id, certs[1]!.id, certs[0]!.id]);
  });
});

describe("PUT /zones/{id}/custom_certificates/prioritize", () => {
  let ca: TestCa;
  beforeAll(async () => {
    ca = await createCa("p256v1", "Prioritize Route CA");
  });

  function routes(z: Zone, token = z.token) {
    const base = `/client/v4/zones/${z.id}/custom_certificates`;
    return {
      base,
      prioritize: (body: unknown, query = "") => call<CertificateRecord[]>("PUT", `${base}/prioritize${query}`, { token, body }),
      list: (query = "") => call<CertificateRecord[]>("GET", `${base}${query}`, { token }),
      get: (id: string) => call<CertificateRecord>("GET", `${base}/${id}`, { token }),
    };
  }

  async function zoneWith(n: number) {
    const z = await scope("zones");
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const csr = (await z.create(csrBody({ key_type: "p256v1" }))).body.result;
      const reply = await call<CertificateRecord>("POST", `/client/v4/zones/${z.id}/custom_certificates`, {
        token: z.token,
        body: { certificate: (await issueLeaf(ca, csr.csr)) + ca.pem, custom_csr_id: csr.id },
      });
      ids.push(reply.body.result.id);
    }
    return { z, ids, r: routes(z) };
  }

  /** What a refused body must leave as it was: every row's priority and modified_on, and the audit trail's length. */
  const snapshot = async (z: Zone) => ({
    rows: await runInDurableObject(tenantStub("zones", z.id), (_, state) =>
      state.storage.sql.exec("SELECT id, priority, modified_on FROM certificates ORDER BY seq").toArray(),
    ),
    audit: (await call("GET", `/client/v4/zones/${z.id}/audit_logs?per_page=1`, { token: z.token })).body.result_info?.total_count,
  });

  it("sets priorities and answers the list in its new order; GET lists and the records agree; each change is audited", async () => {
    const { z, ids, r } = await zoneWith(4);
    const [a, b, c, d] = ids as [string, string, string, string];
    const reply = await r.prioritize({ certificates: [{ id: c, priority: 20 }, { id: a.toUpperCase(), priority: 5 }, { id: d, priority: 5 }] });
    expect(reply.status).toBe(200);
    expect(reply.body.success).toBe(true);
    expect(reply.body.result.map((x) => [x.id, x.priority])).toEqual([[c, 20], [a, 5], [d, 5], [b, 0]]);
    expect(reply.body.result_info).toEqual({ count: 4, page: 1, per_page: 20, total_count: 4, total_pages: 1 });
    expect((await r.list()).body.result).toEqual(reply.body.result);
    expect((await r.list("?direction=desc")).body.result.map((x) => x.id)).toEqual([b, d, a, c]);
    expect((await r.get(c)).body.result.priority).toBe(20);

    const audit = await call<AuditLogRecord[]>("GET", `/client/v4/zones/${z.id}/audit_logs?direction=asc&action.type=update`, { token: z.token });
    expect(audit.body.result.map((e) => [e.resource.id, e.metadata.priority, e.metadata.previous, e.actor.type])).toEqual([
      [c, 20, 0, "user"],
      [a, 5, 0, "user"],
      [d, 5, 0, "user"],
    ]);

    // The reply is the page the query asks for, as GET answers it.
    const paged = await r.prioritize({ certificates: [{ id: b, priority: 30 }] }, "?per_page=5&direction=desc&status=active");
    expect(paged.body.result.map((x) => x.id)).toEqual([d, a, c, b]);
    expect(paged.body.result_info).toEqual({ count: 4, page: 1, per_page: 5, total_count: 4, total_pages: 1 });
    expectError(await r.prioritize({ certificates: [] }, "?status=revoked"), 400, 1435);
  });

  it("an unknown certificate is 404 (1449) naming its entry, and nothing is written", async () => {
    const { z, ids, r } = await zoneWith(2);
    const before = await snapshot(z);
    const reply = await r.prioritize({ certificates: [{ id: ids[0], priority: 9 }, { id: crypto.randomUUID(), priority: 1 }] });
    expectError(reply, 404, 1449);
    expect(reply.body.errors[0]!.source).toEqual({ pointer: "/certificates/1/id" });
    expect(await snapshot(z)).toEqual(before);
    // Another zone's certificate is not this zone's.
    const other = await zoneWith(1);
    expectError(await r.prioritize({ certificates: [{ id: other.ids[0], priority: 1 }] }), 404, 1449);
    expect(await snapshot(z)).toEqual(before);
  });

  it("bad bodies: 1400, 1430, 1448, 1478, each naming the member; nothing is written", async () => {
    const { z, ids, r } = await zoneWith(2);
    const [a, b] = ids as [string, string];
    const before = await snapshot(z);
    const cases: Array<[unknown, number, string | undefined]> = [
      [[{ id: a, priority: 1 }], 1400, undefined],
      [{}, 1478, "/certificates"],
      [{ certificates: { id: a, priority: 1 } }, 1430, "/certificates"],
      [{ certificates: [{ id: a, priority: 1 }, "b"] }, 1430, "/certificates/1"],
      [{ certificates: [{}, {}] }, 1478, "/certificates/0/id"],
      [{ certificates: [{ id: 7, priority: 1 }] }, 1430, "/certificates/0/id"],
      [{ certificates: [{ id: a, priority: 1 }, { id: "not-an-id", priority: 2 }] }, 1448, "/certificates/1/id"],
      [{ certificates: [{ id: a, priority: 1 }, { id: b, priority: 2 }, { id: a, priority: 3 }] }, 1478, "/certificates/2/id"],
      [{ certificates: [{ id: a }] }, 1478, "/certificates/0/priority"],
      [{ certificates: [{ id: a, priority: "1" }] }, 1430, "/certificates/0/priority"],
      [{ certificates: [{ id: a, priority: 2.5 }] }, 1478, "/certificates/0/priority"],
      [{ certificates: [{ id: b, priority: 1 }, { id: a, priority: -1 }] }, 1478, "/certificates/1/priority"],
      [{ certificates: [{ id: a, priority: 2 ** 31 }] }, 1478, "/certificates/0/priority"],
    ];
    for (const [body, code, pointer] of cases) {
      const reply = await r.prioritize(body);
      expectError(reply, 400, code);
      expect(reply.body.errors[0]!.source, JSON.stringify(body)).toEqual(pointer === undefined ? undefined : { pointer });
    }
    expectError(await call("PUT", `${r.base}/prioritize`, { token: z.token, rawBody: "{not json" }), 400, 1400);
    expect(await snapshot(z)).toEqual(before);
  });

  it("needs Write on the zone; zones only; a zone with no data has no certificate to name", async () => {
    const { z, ids, r } = await zoneWith(1);
    const readOnly = routes(z, await mintToken({ zones: [z.id], readOnly: true }));
    expectError(await readOnly.prioritize({ certificates: [{ id: ids[0], priority: 1 }] }), 403, 10000);
    expect((await r.get(ids[0]!)).body.result.priority).toBe(0);
    expectError(await call("PUT", `/client/v4/accounts/${z.id}/custom_certificates/prioritize`, { token: z.token, body: { certificates: [] } }), 404, 7000);
    expectError(await call("POST", `${r.base}/prioritize`, { token: z.token, body: { certificates: [] } }), 405, 7001);
    // Also under /api/v4, as every route is.
    expect((await call("PUT", `/api/v4/zones/${z.id}/custom_certificates/prioritize`, { token: z.token, body: { certificates: [] } })).status).toBe(200);

    const empty = await scope("zones");
    const none = routes(empty);
    const reply = await none.prioritize({ certificates: [] });
    expect(reply.status).toBe(200);
    expect(reply.body.result).toEqual([]);
    expect(reply.body.result_info).toEqual({ count: 0, page: 1, per_page: 20, total_count: 0, total_pages: 0 });
    const unknown = await none.prioritize({ certificates: [{ id: crypto.randomUUID(), priority: 1 }] });
    expectError(unknown, 404, 1449);
    expect(unknown.body.errors[0]!.source).toEqual({ pointer: "/certificates/0/id" });
  });
});
