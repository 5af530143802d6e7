// Custom certificate lists as Cloudflare has them (issue 21): highest
// priority first, then upload order; the SDK's `status` and `match` filters,
// with a truthful result_info; bad values refused with 1435; and the schema
// step (version 16) that indexes that order.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { loadKeyring } from "../src/pki/keyring";
import { openStorage } from "../src/storage/storage";
import { CertificateSeals } from "../src/tenant/certificate-seal";
import type { CertificateRecord } from "../src/tenant/certificate-records";
import { SCHEMA_VERSION, TENANT_MIGRATIONS } from "../src/tenant/schema";
import { TenantStore } from "../src/tenant/tenant-store";
import { call, csrBody, expectError, scope, tenantStub } from "./shared";
import { type TestCa, createCa, issueLeaf } from "./test-ca";

type Zone = Awaited<ReturnType<typeof scope>>;

let ca: TestCa;
beforeAll(async () => {
  ca = await createCa("p256v1", "List Test CA");
});

const list = (z: Zone, query = "") => call<CertificateRecord[]>("GET", `/client/v4/zones/${z.id}/custom_certificates${query}`, { token: z.token });

/** `n` certificates uploaded one after another (upload order is this order). */
async function upload(z: Zone, n: number): Promise<CertificateRecord[]> {
  const made: CertificateRecord[] = [];
  for (let i = 0; i < n; i++) {
    const host = `c${i}-${crypto.randomUUID().slice(0, 8)}.customer-one.com`;
    const csr = (await z.create(csrBody({ key_type: "p256v1", common_name: host, sans: [host] }))).body.result;
    const reply = await call<CertificateRecord>("POST", `/client/v4/zones/${z.id}/custom_certificates`, {
      token: z.token,
      body: { certificate: (await issueLeaf(ca, csr.csr)) + ca.pem, custom_csr_id: csr.id },
    });
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    made.push(reply.body.result);
  }
  return made;
}

/** Expires certificates as time would: the rows' expires_on in the past, sealed again with the deployment's KEK. */
async function expire(z: Zone, ids: string[]): Promise<void> {
  const keyring = await loadKeyring(env.KEY_ENCRYPTION_KEYS);
  await runInDurableObject(tenantStub("zones", z.id), (_, state) => {
    const seals = new CertificateSeals(openStorage(state, TENANT_MIGRATIONS));
    for (const id of ids) {
      state.storage.sql.exec("UPDATE certificates SET expires_on = ? WHERE id = ?", new Date(Date.now() - 60_000).toISOString(), id);
      seals.seal(id, keyring, `zones:${z.id}`);
    }
  });
}

/** Priorities set in storage (the prioritize route's own tests set them through the API). */
async function setPriorities(z: Zone, priorities: Record<string, number>): Promise<void> {
  await runInDurableObject(tenantStub("zones", z.id), (_, state) => {
    for (const [id, priority] of Object.entries(priorities)) state.storage.sql.exec("UPDATE certificates SET priority = ? WHERE id = ?", priority, id);
  });
}

/** Every page of `query` at per_page 5, joined: the ids in list order. */
async function allPages(z: Zone, query: string): Promise<string[]> {
  const ids: string[] = [];
  for (let page = 1; ; page++) {
    const reply = await list(z, `?per_page=5&page=${page}${query}`);
    expect(reply.status).toBe(200);
    if (reply.body.result.length === 0) return ids;
    ids.push(...reply.body.result.map((c) => c.id));
  }
}

describe("custom certificate lists: status and match", () => {
  let z: Zone;
  let made: string[];
  let active: string[];
  let expired: string[];

  beforeAll(async () => {
    z = await scope("zones");
    made = (await upload(z, 13)).map((c) => c.id);
    // Expired ones interleaved with active ones, so a filter must skip rows.
    expired = made.filter((_, i) => i % 2 === 1);
    active = made.filter((_, i) => i % 2 === 0);
    await expire(z, expired);
  });

  it("status=active and status=expired: exactly those, in upload order, each record's status the filter's", async () => {
    for (const [status, ids] of [["active", active], ["expired", expired]] as const) {
      const reply = await list(z, `?status=${status}&per_page=50`);
      expect(reply.status).toBe(200);
      expect(reply.body.result.map((c) => c.id)).toEqual(ids);
      expect(new Set(reply.body.result.map((c) => c.status))).toEqual(new Set([status]));
      expect(reply.body.result_info).toEqual({ count: ids.length, page: 1, per_page: 50, total_count: ids.length, total_pages: 1 });
    }
  });

  it("the statuses a certificate here never has (deleted, pending, initializing) match nothing", async () => {
    for (const status of ["deleted", "pending", "initializing"]) {
      const reply = await list(z, `?status=${status}`);
      expect(reply.status).toBe(200);
      expect(reply.body.result).toEqual([]);
      expect(reply.body.result_info).toEqual({ count: 0, page: 1, per_page: 20, total_count: 0, total_pages: 0 });
    }
  });

  it("match: all (the default) and any give the same list with the one requirement there is; without status, every certificate", async () => {
    const byDefault = await list(z, "?status=expired");
    for (const match of ["all", "any"]) {
      const reply = await list(z, `?status=expired&match=${match}`);
      expect(reply.body.result).toEqual(byDefault.body.result);
      expect(reply.body.result_info).toEqual(byDefault.body.result_info);
      const unfiltered = await list(z, `?match=${match}&per_page=50`);
      expect(unfiltered.body.result.map((c) => c.id)).toEqual(made);
      expect(unfiltered.body.result_info?.total_count).toBe(13);
    }
    expect((await list(z, "?status=pending&match=any")).body.result_info?.total_count).toBe(0);
  });

  it("pages of a filtered list: total_count and total_pages are the filtered set's, every page in order either way", async () => {
    const first = await list(z, "?status=active&per_page=5");
    expect(first.body.result.map((c) => c.id)).toEqual(active.slice(0, 5));
    expect(first.body.result_info).toEqual({ count: 5, page: 1, per_page: 5, total_count: 7, total_pages: 2 });
    const second = await list(z, "?status=active&per_page=5&page=2");
    expect(second.body.result.map((c) => c.id)).toEqual(active.slice(5));
    expect(second.body.result_info).toEqual({ count: 2, page: 2, per_page: 5, total_count: 7, total_pages: 2 });
    const past = await list(z, "?status=active&per_page=5&page=3");
    expect(past.body.result).toEqual([]);
    expect(past.body.result_info).toEqual({ count: 0, page: 3, per_page: 5, total_count: 7, total_pages: 2 });
    expect(await allPages(z, "&status=expired")).toEqual(expired);
    expect(await allPages(z, "&status=expired&direction=desc")).toEqual([...expired].reverse());
  });

  it("refuses a bad status or match with 1435 naming the parameter: unknown, another case, empty, or given twice", async () => {
    const cases: Array<[string, string]> = [
      ["status=revoked", "status must be one of active, expired, deleted, pending, initializing"],
      ["status=Active", "status must be one of active, expired, deleted, pending, initializing"],
      ["status=", "status must be one of active, expired, deleted, pending, initializing"],
      ["status=active&status=expired", "status is given more than once"],
      ["match=some", "match must be one of any, all"],
      ["match=ALL", "match must be one of any, all"],
      ["match=any&match=all", "match is given more than once"],
      ["status=active&per_page=4", "per_page must be an integer from 5 to 50"],
    ];
    for (const [query, rule] of cases) {
      const reply = await list(z, `?${query}`);
      expectError(reply, 400, 1435);
      expect(reply.body.errors[0]!.message, query).toBe(`Invalid query parameter: ${rule}. Check your input and try again.`);
    }
  });

  it("a zone with no data answers an empty page for any valid filter, and still refuses a bad one", async () => {
    const empty = await scope("zones");
    const reply = await list(empty, "?status=active&match=any");
    expect(reply.status).toBe(200);
    expect(reply.body.result_info).toEqual({ count: 0, page: 1, per_page: 20, total_count: 0, total_pages: 0 });
    expectError(await list(empty, "?status=gone"), 400, 1435);
  });
});

describe("custom certificate lists: Cloudflare's priority order", () => {
  it("highest priority first, then upload order; direction=desc reverses the whole order; pages join up either way", async () => {
    const z = await scope("zones");
    const ids = (await upload(z, 12)).map((c) => c.id);
    // Before any priority is set, the list is upload order, as it always was.
    expect(await allPages(z, "")).toEqual(ids);
    expect(await allPages(z, "&direction=desc")).toEqual([...ids].reverse());

    await setPriorities(z, { [ids[9]!]: 10, [ids[3]!]: 5, [ids[7]!]: 5, [ids[11]!]: 1 });
    const expected = [ids[9]!, ids[3]!, ids[7]!, ids[11]!, ...ids.filter((_, i) => ![9, 3, 7, 11].includes(i))];
    const whole = await list(z, "?per_page=50");
    expect(whole.body.result.map((c) => c.id)).toEqual(expected);
    expect(whole.body.result.map((c) => c.priority)).toEqual([10, 5, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Pages past the middle are read from the other end of the index: the same order.
    expect(await allPages(z, "")).toEqual(expected);
    expect(await allPages(z, "&direction=desc")).toEqual([...expected].reverse());

    // With a filter, the same order among the certificates that meet it.
    await expire(z, [ids[3]!, ids[0]!]);
    expect(await allPages(z, "&status=active")).toEqual(expected.filter((id) => id !== ids[3] && id !== ids[0]));
    expect(await allPages(z, "&status=expired")).toEqual([ids[3]!, ids[0]!]);
  });
});

describe("schema version 16", () => {
  const objects = (state: DurableObjectState) =>
    state.storage.sql
      .exec("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'certificates' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .toArray()
      .map((row) => row.name);

  it("a version-15 store gets the priority index in place of the upload-order one; its certificates list as before", async () => {
    const z = await scope("zones");
    const ids = (await upload(z, 6)).map((c) => c.id);
    await runInDurableObject(tenantStub("zones", z.id), (_, state) => {
      // Set back to version 15 as it stood: the upload-order index, no priority index.
      state.storage.transactionSync(() => {
        state.storage.sql.exec("DROP INDEX certificates_by_priority");
        state.storage.sql.exec("CREATE INDEX certificates_by_uploaded_on ON certificates (uploaded_on, seq)");
        state.storage.sql.exec("UPDATE schema_version SET version = 15");
      });
      expect(objects(state)).toEqual(["certificates_by_csr", "certificates_by_leaf", "certificates_by_uploaded_on"]);

      // The next instance (a deploy of this version) migrates in its constructor.
      new TenantStore(state, env);
      expect(state.storage.sql.exec("SELECT version FROM schema_version").one().version).toBe(SCHEMA_VERSION);
      expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(16);
      expect(objects(state)).toEqual(["certificates_by_csr", "certificates_by_leaf", "certificates_by_priority"]);
      const columns = state.storage.sql
        .exec("SELECT name, desc FROM pragma_index_xinfo('certificates_by_priority') WHERE key = 1 ORDER BY seqno")
        .toArray();
      expect(columns).toEqual([
        { name: "priority", desc: 1 },
        { name: "uploaded_on", desc: 0 },
        { name: "seq", desc: 0 },
        { name: "expires_on", desc: 0 },
      ]);
      // A filtered page and its count are read in that index alone, in its order, both ways (no sort, no row read).
      for (const statement of [
        "SELECT seq FROM certificates WHERE (expires_on >= ?) ORDER BY priority DESC, uploaded_on ASC, seq ASC LIMIT 5 OFFSET 5",
        "SELECT seq FROM certificates WHERE (expires_on < ?) ORDER BY priority ASC, uploaded_on DESC, seq DESC LIMIT 5 OFFSET 5",
        "SELECT count(*) AS n FROM certificates WHERE (expires_on < ?)",
      ]) {
        const plan = state.storage.sql.exec(`EXPLAIN QUERY PLAN ${statement}`, new Date().toISOString()).toArray().map((row) => row.detail);
        expect(plan, statement).toEqual(["SCAN certificates USING COVERING INDEX certificates_by_priority"]);
      }
      // Every priority was 0 (the column is there since version 2); the migration changes no row.
      expect(state.storage.sql.exec("SELECT DISTINCT priority FROM certificates").toArray()).toEqual([{ priority: 0 }]);
    });
    expect(await allPages(z, "")).toEqual(ids);
    expect(await allPages(z, "&status=active&direction=desc")).toEqual([...ids].reverse());
  });
});
