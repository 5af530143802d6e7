import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { type CounterName, Counters } from "../src/tenant/counters";
import type { CsrRecord } from "../src/tenant/records";
import { BLOCK_BITS, blockCounter, readRankPage } from "../src/tenant/seq-ranks";
import { Sql } from "../src/storage/sql";
import { TenantStore } from "../src/tenant/tenant-store";
import { csrBody, expectError, scope, tenantStub } from "./shared";
import { LIST_READS } from "../src/http/read-queue";

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
    // account_tag is the same on every row of an object, and created_at follows seq in a
    // scope created at this version: both orders are the seq walk (read by rank).
    const orders = { created_at: "seq DIR", name: "name DIR, seq DIR", account_tag: "seq DIR" };
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
      expect(plan).toMatch(order === "name" ? /USING INDEX csrs_by_name/ : /^SCAN csrs$/);
      expect(plan).not.toMatch(/TEMP B-TREE/);
    }
  });
});

describe("pages by rank (seq-ranks.ts)", () => {
  it("match OFFSET paging on every page, both directions, across many blocks with rows deleted", async () => {
    const s = await scope("zones");
    await s.create(csrBody({ key_type: "p256v1" }));
    await runInDurableObject(tenantStub("zones", s.id), (_, state) => {
      const sql = new Sql(state.storage.sql);
      const counters = new Counters(sql);
      sql.run(`CREATE TABLE scratch (seq INTEGER PRIMARY KEY, v TEXT NOT NULL)`);
      const rows = 5 * 2 ** BLOCK_BITS + 123;
      for (let seq = 1; seq <= rows; seq++) {
        sql.run(`INSERT INTO scratch (seq, v) VALUES (?, ?)`, seq, `v${seq}`);
        counters.bump(blockCounter("scratch", seq) as CounterName, 1);
      }
      // Delete about a third, including all of one block, as deletes would.
      let total = rows;
      for (let seq = 1; seq <= rows; seq++) {
        if (seq % 3 === 0 || (seq >= 2 * 2 ** BLOCK_BITS && seq < 3 * 2 ** BLOCK_BITS)) {
          sql.run(`DELETE FROM scratch WHERE seq = ?`, seq);
          counters.bump(blockCounter("scratch", seq) as CounterName, -1);
          total--;
        }
      }
      expect(sql.one<{ n: number }>(`SELECT count(*) AS n FROM scratch`)!.n).toBe(total);
      for (const perPage of [50, 7]) {
        const pages = Math.ceil(total / perPage);
        const sample = perPage === 50 ? Array.from({ length: pages + 1 }, (_, i) => i + 1) : [1, 2, Math.floor(pages / 2), pages - 1, pages, pages + 1];
        for (const direction of ["asc", "desc"] as const) {
          for (const page of sample) {
            const byRank = readRankPage(sql, counters, { table: "scratch", columns: "seq, v", prefix: "scratch", direction, page, perPage, total });
            const byOffset = sql.raw(`SELECT seq, v FROM scratch ORDER BY seq ${direction} LIMIT ? OFFSET ?`, perPage, (page - 1) * perPage);
            expect(byRank, `${direction} page ${page} of ${perPage}`).toEqual(byOffset);
          }
        }
      }
    });
  });

  it("a migrated store whose created_at went backwards keeps listing created_at in created_at order", async () => {
    for (const backwards of [true, false]) {
      const s = await scope("accounts");
      const made: CsrRecord[] = [];
      for (let i = 0; i < 4; i++) made.push((await s.create(csrBody({ key_type: "p256v1" }))).body.result);
      await runInDurableObject(tenantStub("accounts", s.id), (_, state) => {
        const sql = new Sql(state.storage.sql);
        // Back to version 5, as an older deploy left it: no block counts, no flag.
        state.storage.transactionSync(() => {
          sql.run(`DELETE FROM counters WHERE name LIKE 'csrs@%'`);
          sql.run(`DELETE FROM meta WHERE key = 'created_at_follows_seq'`);
          sql.run(`UPDATE schema_version SET version = 5`);
          sql.run(`CREATE INDEX IF NOT EXISTS csrs_by_created_at ON csrs (created_at, seq)`);
          // The second CSR's clock had stepped back an hour.
          if (backwards) sql.run(`UPDATE csrs SET created_at = '2000-01-01T00:00:00.000Z' WHERE id = ?`, made[1]!.id);
        });
        new TenantStore(state, env);
        expect(sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = 'created_at_follows_seq'`)!.value).toBe(backwards ? "0" : "1");
        expect(sql.all(`SELECT name, value FROM counters WHERE name LIKE 'csrs@%'`)).toEqual([{ name: "csrs@0000000000", value: 4 }]);
        // The created_at index stays only where created_at order is not seq order.
        const index = sql.one(`SELECT name FROM sqlite_master WHERE name = 'csrs_by_created_at'`);
        expect(index !== null).toBe(backwards);
        if (backwards) {
          const plan = state.storage.sql.exec(`EXPLAIN QUERY PLAN SELECT seq FROM csrs ORDER BY created_at DESC, seq DESC LIMIT 5 OFFSET 1`).toArray();
          expect(plan.map((r) => String(r.detail)).join(" | ")).toMatch(/USING (COVERING )?INDEX csrs_by_created_at/);
        }
      });
      // A fresh instance reads the flag (the test's store above was a second instance on the same storage).
      const expected = backwards ? [made[1], made[0], made[2], made[3]] : made;
      const fresh = await s.list("?order=created_at");
      expect(fresh.body.result.map((r) => r.id)).toEqual(expected.map((r) => r!.id));
      expect((await s.list("?order=created_at&direction=desc&per_page=5&page=1")).body.result.map((r) => r.id)).toEqual(
        [...expected].reverse().map((r) => r!.id),
      );
    }
  });
});

describe("creation times", () => {
  it("never go backwards within a scope, so created_at order is creation order", async () => {
    const s = await scope("zones");
    const first = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    const future = new Date(Date.now() + 3_600_000).toISOString();
    // As if the clock had stepped back an hour after the first create.
    await runInDurableObject(tenantStub("zones", s.id), (_, state) => {
      state.storage.sql.exec(`UPDATE csrs SET created_at = ? WHERE id = ?`, future, first.id);
    });
    const second = (await s.create(csrBody({ key_type: "p256v1" }))).body.result;
    expect(second.created_at).toBe(future);
    expect((await s.list("?order=created_at")).body.result.map((r) => r.id)).toEqual([first.id, second.id]);
  });
});

describe("list reads are bounded (review of issue 19, M7)", () => {
  it("with every list slot taken and the queue full, a list is refused with 429 (971) and Retry-After; when they free, it is served", async () => {
    const s = await scope("zones");
    expect((await s.create(csrBody({ key_type: "p256v1" }))).status).toBe(201);
    const held: Array<() => void> = [];
    for (let i = 0; i < 8; i++) held.push((await LIST_READS.acquire())!);
    // 128 reads waiting for a slot: the queue is full.
    const waiting = Array.from({ length: 128 }, () => LIST_READS.acquire().then((release) => release!()));
    try {
      const refused = await s.list();
      expectError(refused, 429, 971);
      expect(refused.headers.get("retry-after")).toBe("1");
    } finally {
      for (const release of held) release();
      await Promise.all(waiting);
    }
    expect((await s.list()).status).toBe(200);
  });
});
