// Load and restarts: concurrent creates across scopes and within one scope
// are each stored exactly once; quotas hold under concurrency; and after a
// graceful restart and after a hard kill every acknowledged CSR is still
// there byte for byte, with a wrapped key that unwraps and matches it.
import { CertificationRequest } from "@peculiar/asn1-csr";
import { AsnConvert } from "@peculiar/asn1-schema";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type CsrRecord, type Reply, admin, call, csrBody, expectEnvelope, listAll } from "./api";
import { mapLimit } from "./checkers";
import { mintToken, scopeId } from "./credentials";
import { type TestServer, startServer } from "./server";
import { expectCsrsVerified } from "./verify";

type Kind = "accounts" | "zones";

interface Scope {
  kind: Kind;
  id: string;
}

/** What the server acknowledged: the create reply's exact `result` text, per CSR. */
interface Acknowledged {
  scope: Scope;
  record: CsrRecord;
  /** JSON of the result as the create response carried it (field order included). */
  json: string;
}

const CONCURRENCY = 12;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A CSR's SubjectPublicKeyInfo, hex: what tells two keys apart. */
function spkiHex(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
  const info = AsnConvert.parse(der, CertificationRequest).certificationRequestInfo;
  return Buffer.from(AsnConvert.serialize(info.subjectPKInfo)).toString("hex");
}
const spread: Scope[] = [
  { kind: "accounts", id: scopeId("ra") },
  { kind: "zones", id: scopeId("rz") },
  { kind: "zones", id: scopeId("rz") },
  { kind: "accounts", id: scopeId("ra") },
];
const hot: Scope = { kind: "zones", id: scopeId("hot") };
const quotaScopes: Scope[] = [
  { kind: "accounts", id: scopeId("qa") },
  { kind: "zones", id: scopeId("qz") },
];
const QUOTA = 7;
const deniedScope: Scope = { kind: "zones", id: scopeId("deny") };
const emptyQuotaScope: Scope = { kind: "accounts", id: scopeId("q0") };
const poolScope: Scope = { kind: "zones", id: scopeId("pool") };
const allScopes = [...spread, hot, ...quotaScopes, deniedScope, emptyQuotaScope, poolScope];

let server: TestServer;
let token: string;
const acknowledged: Acknowledged[] = [];
const deletedIds: Array<{ scope: Scope; id: string }> = [];

const base = (s: Scope): string => `/client/v4/${s.kind}/${s.id}/custom_csrs`;

function tokenFor(scopes: Scope[]): string {
  return mintToken(server.secrets.API_TOKEN_SECRET, {
    accounts: scopes.filter((s) => s.kind === "accounts").map((s) => s.id),
    zones: scopes.filter((s) => s.kind === "zones").map((s) => s.id),
  });
}

/** The `result` member of a reply's raw JSON text, exactly as sent. */
function resultJson(reply: Reply): string {
  return JSON.stringify((JSON.parse(reply.text) as { result: unknown }).result);
}

async function create(scope: Scope, i: number): Promise<Reply<CsrRecord>> {
  const reply = await call<CsrRecord>(server.origin, "POST", base(scope), {
    token,
    // One in five RSA, so key generation times differ and requests interleave.
    json: csrBody({
      common_name: `h${i}.customer-six.com`,
      sans: [`h${i}.customer-six.com`, `*.h${i}.customer-six.com`],
      key_type: i % 5 === 0 ? "rsa2048" : "p256v1",
      name: `load ${i}`,
    }),
  });
  expectEnvelope(reply, `create #${i} in ${scope.kind}/${scope.id}`);
  if (reply.status === 201) acknowledged.push({ scope, record: reply.body!.result, json: resultJson(reply) });
  return reply;
}

/** Every reply a 201; otherwise the failing replies themselves are the message. */
function expectAll201(replies: Reply[]): void {
  const others = replies.filter((r) => r.status !== 201).map((r) => `${r.status} ${r.text.slice(0, 300)}`);
  expect(others).toEqual([]);
}

/** Each scope's stored CSRs equal the acknowledged ones: none lost, none doubled. */
async function expectStoredExactlyOnce(scopes: Scope[]): Promise<void> {
  const everyId = new Set<string>();
  for (const scope of scopes) {
    const acked = acknowledged.filter((a) => a.scope === scope).map((a) => a.record.id);
    const first = await call<CsrRecord[]>(server.origin, "GET", `${base(scope)}?per_page=5`, { token });
    expect(first.body!.result_info!.total_count, `${scope.kind}/${scope.id} total_count`).toBe(acked.length);
    const listed = (await listAll(server.origin, base(scope), token)).map((r) => r.id);
    expect(new Set(listed).size, "ids unique in the list").toBe(listed.length);
    expect([...listed].sort()).toEqual([...acked].sort());
    for (const id of listed) {
      expect(everyId.has(id), `id ${id} in two scopes`).toBe(false);
      everyId.add(id);
    }
  }
}

beforeAll(async () => {
  server = await startServer({ root: inject("e2eRoot"), name: "restart" });
  token = tokenFor(allScopes);
});

afterAll(async () => {
  await server?.stop();
});

describe("under concurrent load", () => {
  it(`60 creates across ${spread.length} scopes at concurrency ${CONCURRENCY}: every 201 stored exactly once`, async () => {
    const replies = await mapLimit(Array.from({ length: 60 }, (_, i) => i), CONCURRENCY, (i) => create(spread[i % spread.length]!, i));
    expectAll201(replies);
    await expectStoredExactlyOnce(spread);
  });

  it(`60 creates into one zone at concurrency ${CONCURRENCY}: every 201 stored exactly once, ids unique`, async () => {
    const replies = await mapLimit(Array.from({ length: 60 }, (_, i) => 100 + i), CONCURRENCY, (i) => create(hot, i));
    expectAll201(replies);
    const ids = replies.map((r) => r.body!.result.id);
    expect(new Set(ids).size).toBe(60);
    await expectStoredExactlyOnce([hot]);
  });

  it(`a quota of ${QUOTA} is never overshot by 30 concurrent creates (account and zone)`, async () => {
    for (const scope of quotaScopes) {
      const set = await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/${scope.kind}/${scope.id}/entitlement`, {
        granted: true,
        quota: QUOTA,
      });
      expect(set.status, set.text).toBe(200);
      const replies = await mapLimit(Array.from({ length: 30 }, (_, i) => 200 + i), CONCURRENCY, (i) => create(scope, i));
      const statuses = replies.map((r) => r.status);
      expect(statuses.filter((s) => s === 201)).toHaveLength(QUOTA);
      for (const reply of replies.filter((r) => r.status !== 201)) {
        expect({ status: reply.status, codes: reply.body!.errors.map((e) => e.code) }).toEqual({ status: 403, codes: [1403] });
      }
      const entitlement = await admin<{ granted: boolean; quota: number; used: number }>(
        server.origin,
        server.secrets.ADMIN_SECRET,
        "GET",
        `/${scope.kind}/${scope.id}/entitlement`,
      );
      expect(entitlement.body!.result).toEqual({ granted: true, quota: QUOTA, used: QUOTA });
    }
    await expectStoredExactlyOnce(quotaScopes);
  });

  it("quota 0 and access not granted refuse every concurrent create (1403, 1404) and store nothing", async () => {
    for (const [scope, entitlement, code] of [
      [emptyQuotaScope, { granted: true, quota: 0 }, 1403],
      [deniedScope, { granted: false, quota: 100 }, 1404],
    ] as const) {
      const set = await admin(server.origin, server.secrets.ADMIN_SECRET, "PUT", `/${scope.kind}/${scope.id}/entitlement`, entitlement);
      expect(set.status, set.text).toBe(200);
      const replies = await mapLimit(Array.from({ length: 12 }, (_, i) => 300 + i), CONCURRENCY, (i) => create(scope, i));
      for (const reply of replies) {
        expect({ status: reply.status, codes: reply.body!.errors.map((e) => e.code) }).toEqual({ status: 403, codes: [code] });
      }
    }
    await expectStoredExactlyOnce([emptyQuotaScope, deniedScope]);
  });

  it("a deleted CSR frees its quota slot, concurrently with creates", async () => {
    const scope = quotaScopes[0]!;
    const victim = acknowledged.find((a) => a.scope === scope)!;
    const [deleted, ...creates] = await Promise.all([
      call(server.origin, "DELETE", `${base(scope)}/${victim.record.id}`, { token }),
      create(scope, 400),
      create(scope, 401),
    ]);
    expect(deleted!.status, deleted!.text).toBe(200);
    acknowledged.splice(acknowledged.indexOf(victim), 1);
    deletedIds.push({ scope, id: victim.record.id });
    // One slot freed: at most one of the two creates may succeed (none, if
    // both ran before the delete).
    expect(creates.filter((r) => r.status === 201).length).toBeLessThanOrEqual(1);
    await expectStoredExactlyOnce([scope]);
    // Fill the scope again, so the checks after restarts can expect it full.
    while (acknowledged.filter((a) => a.scope === scope).length < QUOTA) {
      expect((await create(scope, 450)).status).toBe(201);
    }
    await expectStoredExactlyOnce([scope]);
  });
});

/** After a restart: every acknowledged CSR is byte-identical, its key checks out, and nothing else changed. */
async function expectSurvived(label: string): Promise<void> {
  await expectStoredExactlyOnce(allScopes);
  const checks = await mapLimit(acknowledged, CONCURRENCY, async (a) => {
    const got = await call<CsrRecord>(server.origin, "GET", `${base(a.scope)}/${a.record.id}`, { token });
    expect(got.status, `${label}: GET ${a.record.id}`).toBe(200);
    expect(resultJson(got), `${label}: ${a.record.id} byte-identical`).toBe(a.json);
    const verify = await admin<{ id: string; kek_id: string; ok: boolean }>(
      server.origin,
      server.secrets.ADMIN_SECRET,
      "POST",
      `/${a.scope.kind}/${a.scope.id}/custom_csrs/${a.record.id}/verify`,
    );
    expect(verify.status, `${label}: verify ${a.record.id}: ${verify.text}`).toBe(200);
    expect(verify.body!.result).toEqual({ id: a.record.id, kek_id: "e2e1", ok: true });
    return got.body!.result;
  });
  for (const gone of deletedIds) {
    const got = await call(server.origin, "GET", `${base(gone.scope)}/${gone.id}`, { token });
    expect({ status: got.status, codes: got.body!.errors.map((e) => e.code) }).toEqual({ status: 404, codes: [1419] });
    const verify = await admin(server.origin, server.secrets.ADMIN_SECRET, "POST", `/${gone.scope.kind}/${gone.scope.id}/custom_csrs/${gone.id}/verify`);
    expect(verify.status).toBe(404);
  }
  // Entitlements persisted too: the quota scopes are still full.
  for (const scope of quotaScopes) {
    const reply = await create(scope, 500);
    expect({ status: reply.status, codes: reply.body!.errors.map((e) => e.code) }).toEqual({ status: 403, codes: [1403] });
  }
  await expectCsrsVerified(checks);
}

describe("restarts on the same persisted state", () => {
  it("after a graceful stop and start, every acknowledged CSR is byte-identical and its key verifies", async () => {
    const before = acknowledged.length;
    expect(before).toBeGreaterThan(120);
    await server.restart("SIGTERM");
    await expectSurvived("graceful restart");
  });

  it("a hard kill while creates take pooled RSA keys and the pool refills: no key lost or shared, and filling resumes", async () => {
    const secret = server.secrets.ADMIN_SECRET;
    const pool = () => admin<{ size: number; available: number }>(server.origin, secret, "GET", `/${poolScope.kind}/${poolScope.id}/key_pool`);
    // Polls are requests, and the pool fills only after a quiet spell: poll slowly.
    const untilAvailable = async (n: number) => {
      for (const deadline = Date.now() + 60_000; Date.now() < deadline; ) {
        await sleep(1_000);
        if ((await pool()).body!.result.available >= n) return;
      }
      throw new Error(`the pool did not reach ${n} keys`);
    };
    expect((await admin(server.origin, secret, "PUT", `/${poolScope.kind}/${poolScope.id}/key_pool`, { size: 6 })).status).toBe(200);
    await untilAvailable(4);
    const rsa = (i: number) =>
      call<CsrRecord>(server.origin, "POST", base(poolScope), { token, json: csrBody({ common_name: `p${i}.customer-six.com`, sans: [`p${i}.customer-six.com`], key_type: "rsa2048" }) });
    const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => rsa(700 + i)));
    expectAll201(replies);
    for (const reply of replies) acknowledged.push({ scope: poolScope, record: reply.body!.result, json: resultJson(reply) });
    // The refill starts once the server has been quiet for 250 ms: kill it about then.
    await sleep(300);
    await server.restart("SIGKILL");

    await expectSurvived("hard kill during a pool refill");
    const keys = acknowledged.filter((a) => a.scope === poolScope).map((a) => spkiHex(a.record.csr));
    expect(new Set(keys).size).toBe(keys.length);
    const check = await admin<{ ok: boolean; failed: string[] }>(server.origin, secret, "POST", `/${poolScope.kind}/${poolScope.id}/key_pool/verify`);
    expect(check.body!.result).toMatchObject({ ok: true, failed: [] });
    await untilAvailable(6);
    const chain = await admin<{ ok: boolean }>(server.origin, secret, "POST", `/${poolScope.kind}/${poolScope.id}/audit/verify`);
    expect(chain.body!.result.ok).toBe(true);
    // A create after the restart still never reuses a key.
    const after = await rsa(800);
    expect(after.status).toBe(201);
    acknowledged.push({ scope: poolScope, record: after.body!.result, json: resultJson(after) });
    expect(keys).not.toContain(spkiHex(after.body!.result.csr));
  });

  it("after a hard kill (SIGKILL) right after acknowledged creates, nothing acknowledged is lost", async () => {
    const replies = await mapLimit(Array.from({ length: 24 }, (_, i) => 600 + i), CONCURRENCY, (i) => create(spread[i % spread.length]!, i));
    expectAll201(replies);
    await server.restart("SIGKILL");
    await expectSurvived("hard kill");
  });
});
