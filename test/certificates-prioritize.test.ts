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
import { adminCall, adminHeaders, call, csrBody, scope, tenantStub } from "./shared";
import { type TestCa, createCa, issueLeaf } from "./test-ca";

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
