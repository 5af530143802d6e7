import { runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { CsrRecord } from "../src/tenant/records";
import { csrBody, expectError, scope, tenantStub } from "./shared";

type Scope = Awaited<ReturnType<typeof scope>>;

describe("list pagination", () => {
  let s: Scope;
  let created: CsrRecord[];

  beforeAll(async () => {
    s = await scope("accounts");
    created = [];
    // 23 CSRs; names repeat so that ordering by name needs the tie-break.
    for (let i = 0; i < 23; i++) {
      const reply = await s.create(csrBody({ key_type: "p256v1", name: `n${i % 4}` }));
      expect(reply.status).toBe(201);
      created.push(reply.body.result);
    }
  });

  it("defaults to page 1, per_page 50 for accounts, created_at ascending", async () => {
    const reply = await s.list();
    expect(reply.status).toBe(200);
    expect(reply.body.result.map((r) => r.id)).toEqual(created.map((r) => r.id));
    expect(reply.body.result_info).toEqual({ count: 23, page: 1, per_page: 50, total_count: 23, total_pages: 1 });
  });

  it("defaults to per_page 20 for zones", async () => {
    const zone = await scope("zones");
    await zone.create(csrBody({ key_type: "p256v1" }));
    expect((await zone.list()).body.result_info).toEqual({ count: 1, page: 1, per_page: 20, total_count: 1, total_pages: 1 });
  });

  it("walks every page in both directions, first, middle and last, with the same records", async () => {
    for (const direction of ["asc", "desc"] as const) {
      const expected = direction === "asc" ? created : [...created].reverse();
      const seen: string[] = [];
      for (let page = 1; page <= 5; page++) {
        const reply = await s.list(`?per_page=5&page=${page}&direction=${direction}`);
        expect(reply.body.result_info).toEqual({
          count: page < 5 ? 5 : 3,
          page,
          per_page: 5,
          total_count: 23,
          total_pages: 5,
        });
        seen.push(...reply.body.result.map((r) => r.id));
      }
      expect(seen).toEqual(expected.map((r) => r.id));
    }
  });

  it("answers a page past the end with an empty result", async () => {
    const reply = await s.list("?per_page=5&page=6");
    expect(reply.body.result).toEqual([]);
    expect(reply.body.result_info).toEqual({ count: 0, page: 6, per_page: 5, total_count: 23, total_pages: 5 });
  });

  it("orders by name with insertion order as the stable tie-break", async () => {
    const byName = (dir: 1 | -1) =>
      created
        .map((r, i) => ({ r, i }))
        .sort((a, b) => dir * ((a.r.name ?? "").localeCompare(b.r.name ?? "") || a.i - b.i))
        .map(({ r }) => r.id);
    const asc = [];
    const desc = [];
    for (let page = 1; page <= 5; page++) {
      asc.push(...(await s.list(`?order=name&per_page=5&page=${page}`)).body.result.map((r) => r.id));
      desc.push(...(await s.list(`?order=name&direction=desc&per_page=5&page=${page}`)).body.result.map((r) => r.id));
    }
    expect(asc).toEqual(byName(1));
    expect(desc).toEqual(byName(-1));
    const byTag = (await s.list("?order=account_tag&per_page=50")).body.result.map((r) => r.id);
    expect(byTag).toEqual(created.map((r) => r.id));
  });

  it.each([
    ["?page=0"], ["?page=-1"], ["?page=1.5"], ["?page=abc"], ["?page="],
    ["?per_page=4"], ["?per_page=51"], ["?per_page=1e1"],
    ["?order=id"], ["?direction=up"], ["?order=NAME"], ["?page=1&page=2"],
  ])("refuses %s with 1435, never clamping", async (query) => {
    const reply = await s.list(query);
    expectError(reply, 400, 1435);
    expect(reply.body.errors[0]!.message).toMatch(/page|per_page|order|direction/);
  });

  it("walks an index (or the table in seq order) for every order, never a sort", async () => {
    // account_tag is the same on every row of an object, so that order is the seq walk.
    const orders = { created_at: "created_at DIR, seq DIR", name: "name DIR, seq DIR", account_tag: "seq DIR" };
    const plans = await runInDurableObject(tenantStub(s.kind, s.id), (_, state) =>
      Object.entries(orders).flatMap(([order, by]) =>
        ["ASC", "DESC"].map((dir) => ({
          order,
          plan: state.storage.sql
            .exec(`EXPLAIN QUERY PLAN SELECT id FROM csrs ORDER BY ${by.replaceAll("DIR", dir)} LIMIT 5 OFFSET 5`)
            .toArray()
            .map((row) => String(row.detail))
            .join(" | "),
        })),
      ),
    );
    for (const { order, plan } of plans) {
      expect(plan).toMatch(order === "account_tag" ? /^SCAN csrs$/ : /USING INDEX csrs_by_/);
      expect(plan).not.toMatch(/TEMP B-TREE/);
    }
  });
});
