// One tenant cannot stall the others (issue 19, item 3): a scope's fresh RSA
// key generations run one at a time with a bounded queue (beyond it, 429 with
// Retry-After); a request body has a deadline; and a request still waiting
// for its body does not hold back the idle work the key pool waits for.
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { QUIET_MS } from "../src/tenant/key-pool";
import { begin, end, enter, idleWhile, inFlightFor, leave, othersInFlight } from "../src/core/activity";
import { RSA_CREATES_IN_FLIGHT } from "../src/http/csr-routes";
import { type Envelope, adminHeaders, call, csrBody, scope } from "./shared";
import { authHeaders } from "./tokens";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("a flood of rsa2048 creates in one scope", () => {
  it("runs one generation at a time, queues a bounded number, refuses the rest with 429 (971) and Retry-After; another scope still answers", async () => {
    const flooded = await scope("zones");
    const other = await scope("zones");
    const made = (await other.create(csrBody({ key_type: "p256v1" }))).body.result;
    const flood = Array.from({ length: 40 }, () => flooded.create(csrBody({ key_type: "rsa2048" })));
    // Asked while the flood is under way, in another scope.
    const get = await other.get(made.id);
    expect(get.status).toBe(200);
    const replies = await Promise.all(flood);
    const created = replies.filter((r) => r.status === 201);
    const refused = replies.filter((r) => r.status === 429);
    expect(created.length + refused.length).toBe(40);
    // As many as may be in flight at once when the flood arrived; a few more once those finished.
    expect(created.length).toBeGreaterThanOrEqual(RSA_CREATES_IN_FLIGHT);
    expect(refused.length).toBeGreaterThan(0);
    for (const reply of refused) {
      expect(reply.body.errors.map((e) => e.code)).toEqual([971]);
      expect(reply.headers.get("retry-after")).toBe("1");
      expect(reply.body.result).toBeNull();
    }
    // A refused create stored nothing: the scope holds exactly the created ones.
    expect((await flooded.list("?per_page=50")).body.result_info?.total_count).toBe(created.length);
  });
});

/** A POST whose body sends `first` and then never ends (until `end` is called). */
function stalledBody(first: string) {
  let close: () => void = () => undefined;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(first));
      close = () => controller.close();
    },
  });
  return { body, end: () => close() };
}

describe("a body that never finishes", () => {
  it(`is cut off after BODY_TIMEOUT_SECONDS (408, 1438), writes nothing, and does not hold back the key pool's fill meanwhile`, async () => {
    const s = await scope("zones");
    const stalled = stalledBody('{"common_name": "app.customer-one.com", ');
    let settled = false;
    const pending = exports.default
      .fetch(
        new Request(`https://api.test${s.base}`, {
          method: "POST",
          headers: { ...authHeaders(s.token), "content-type": "application/json" },
          body: stalled.body,
          duplex: "half",
        } as RequestInit),
      )
      .finally(() => {
        settled = true;
      });

    // Meanwhile another scope's pool starts and fills: the stalled request is not activity.
    const pooled = await scope("zones");
    expect((await call("PUT", `/admin/v1/zones/${pooled.id}/key_pool`, { headers: adminHeaders, body: { size: 1 } })).status).toBe(200);
    let available = 0;
    while (!settled && available < 1) {
      await sleep(QUIET_MS * 2);
      available = (await call<{ available: number }>("GET", `/admin/v1/zones/${pooled.id}/key_pool`, { headers: adminHeaders })).body.result.available;
    }
    expect({ available, settled }).toEqual({ available: 1, settled: false });

    const response = await pending;
    expect(response.status).toBe(408);
    const body = (await response.json()) as Envelope;
    expect(body.errors.map((e) => e.code)).toEqual([1438]);
    stalled.end();
    expect((await s.list()).body.result_info?.total_count).toBe(0);
    expect(Number(env.BODY_TIMEOUT_SECONDS)).toBe(2);
  }, 30_000);
});

describe("a request waiting for its body is in flight neither for the isolate nor for its scope (review M4)", () => {
  it("slow bodies of scope A do not hide scope B's requests from A's yield", async () => {
    const a = `zones:${crypto.randomUUID()}`;
    const b = `zones:${crypto.randomUUID()}`;
    // B has a request in flight; A has three, all waiting for their bodies.
    begin();
    enter(b);
    const waiting: Array<() => void> = [];
    const bodies = [1, 2, 3].map(() => {
      begin();
      enter(a);
      return idleWhile(() => new Promise<void>((done) => waiting.push(done)), a);
    });
    try {
      expect(inFlightFor(a)).toBe(0);
      expect(othersInFlight(a)).toBe(true);
      expect(othersInFlight(b)).toBe(false);
    } finally {
      for (const done of waiting) done();
      await Promise.all(bodies);
      for (let i = 0; i < 3; i++) {
        leave(a);
        end();
      }
      leave(b);
      end();
    }
    expect(inFlightFor(a)).toBe(0);
    expect(inFlightFor(b)).toBe(0);
  });
});
