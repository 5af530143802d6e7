import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LOG_LEVELS, logs } from "../src/core/log";
import { Throttled, checkKeys, checkStorage } from "../src/health/checks";
import { PROBE_NAME, type ReadinessProbe } from "../src/health/readiness-probe";
import { READINESS_TIMEOUT_MS } from "../src/http/health";
import { handle } from "../src/http/router";
import { Sql } from "../src/storage/sql";
import type { Envelope } from "./envelope";
import { call, expectError, scope } from "./shared";

const probe = () => env.READINESS.get(env.READINESS.idFromName(PROBE_NAME));

/** Calls the Worker's handler with an env of our own (the probe object keeps the runtime's). */
async function withEnv(path: string, overrides: Partial<Env>): Promise<{ status: number; body: Envelope }> {
  const ctx = { waitUntil: () => {}, passThroughOnException: () => {}, props: {} } as unknown as ExecutionContext;
  const response = await handle(new Request(`https://api.test${path}`), { ...env, ...overrides }, ctx);
  return { status: response.status, body: (await response.json()) as Envelope };
}

afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

describe("GET /healthz (liveness)", () => {
  it("answers 200 with a success envelope, without credentials", async () => {
    const reply = await call<{ status: string }>("GET", "/healthz");
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ success: true, errors: [], messages: [], result: { status: "ok" } });
    expect(reply.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("is GET only (405), at the root only (404); a trailing slash is the same path, as elsewhere", async () => {
    expectError(await call("POST", "/healthz"), 405, 7001);
    expectError(await call("DELETE", "/readyz/"), 405, 7001);
    expect((await call("GET", "/healthz/")).status).toBe(200);
    expectError(await call("GET", "/client/v4/healthz"), 404, 7000);
    expectError(await call("GET", "/healthz/x"), 404, 7000);
  });
});

describe("GET /readyz (readiness)", () => {
  it("answers 200 when storage takes a write and the keys load", async () => {
    const reply = await call("GET", "/readyz");
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      success: true,
      errors: [],
      messages: [],
      result: { status: "ready", checks: { storage: "ok", key_encryption_keys: "ok" } },
    });
  });

  it("writes one row of the probe object's own table, and no tenant object is involved", async () => {
    await call("GET", "/readyz");
    await call("GET", "/readyz");
    const rows = await runInDurableObject(probe(), (_instance: ReadinessProbe, state) =>
      state.storage.sql.exec<{ singleton: number; checks: number }>(`SELECT singleton, checks FROM probe`).toArray(),
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.checks).toBeGreaterThanOrEqual(1);
    const tables = await runInDurableObject(probe(), (_instance: ReadinessProbe, state) =>
      state.storage.sql.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'`).toArray(),
    );
    expect(tables.map((t) => t.name).sort()).toEqual(["probe", "schema_version"]);
  });

  it("names every failing check: 1502 storage, 1501 keys, in that order", async () => {
    const failing = {
      get: () => ({ check: async () => ({ ok: true, value: { failures: [{ reason: "storage_unavailable" }, { reason: "key_encryption_unavailable" }] } }) }),
      idFromName: () => ({}),
    } as unknown as Env["READINESS"];
    const reply = await withEnv("/readyz", { READINESS: failing });
    expect(reply.status).toBe(503);
    expect(reply.body.success).toBe(false);
    expect(reply.body.result).toBeNull();
    expect(reply.body.errors.map((e) => e.code)).toEqual([1502, 1501]);
  });

  it("1502 when the probe object cannot run at all (its database does not open)", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const broken = {
      get: () => ({ check: () => Promise.reject(new Error("SQLITE_NOTADB: file is not a database")) }),
      idFromName: () => ({}),
    } as unknown as Env["READINESS"];
    const reply = await withEnv("/readyz", { READINESS: broken });
    expect(reply.status).toBe(503);
    expect(reply.body.errors.map((e) => e.code)).toEqual([1502]);
    // The cause is logged, keyed by request id; the reply says nothing of it.
    expect(JSON.stringify(reply.body)).not.toContain("SQLITE");
  });

  it(`1503 when the probe does not answer within ${READINESS_TIMEOUT_MS} ms`, async () => {
    vi.useFakeTimers();
    const hung = { get: () => ({ check: () => new Promise(() => {}) }), idFromName: () => ({}) } as unknown as Env["READINESS"];
    const pending = withEnv("/readyz", { READINESS: hung });
    await vi.advanceTimersByTimeAsync(READINESS_TIMEOUT_MS);
    const reply = await pending;
    expect(reply.status).toBe(503);
    expect(reply.body.errors.map((e) => e.code)).toEqual([1503]);
  });
});

describe("the readiness checks", () => {
  it("a KEY_ENCRYPTION_KEYS that is missing or malformed fails with 1501", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    const none = { keyStatus: async () => ({ ok: true as const, value: { failures: [] } }) };
    expect(await checkKeys(env.KEY_ENCRYPTION_KEYS, none)).toEqual([]);
    for (const bad of [undefined, "", "k1", "k1:not-base64!", `k1:${btoa("short")}`, `k1:${btoa("x".repeat(32))},k1:${btoa("y".repeat(32))}`]) {
      expect(await checkKeys(bad, none), String(bad)).toEqual([{ ok: false, reason: "key_encryption_unavailable" }]);
    }
  });

  it("a write that does not reach disk fails with 1502", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    await runInDurableObject(probe(), async (_instance: ReadinessProbe, state) => {
      const sql = new Sql(state.storage.sql);
      expect(await checkStorage(sql, () => state.storage.sync())).toBeNull();
      expect(await checkStorage(sql, () => Promise.reject(new Error("disk I/O error")))).toEqual({ ok: false, reason: "storage_unavailable" });
    });
  });
});

describe("Throttled (one readiness write per interval)", () => {
  it("shares a result within the interval and while it runs; runs again after it", async () => {
    let now = 0;
    let runs = 0;
    let release: (value: number) => void = () => {};
    const throttled = new Throttled(
      () => {
        runs++;
        return new Promise<number>((resolve) => (release = resolve));
      },
      1_000,
      () => now,
    );
    const first = [throttled.get(), throttled.get(), throttled.get()];
    release(1);
    expect(await Promise.all(first)).toEqual([1, 1, 1]);
    now = 999;
    expect(await throttled.get()).toBe(1);
    expect(runs).toBe(1);
    now = 1_000;
    const later = throttled.get();
    release(2);
    expect(await later).toBe(2);
    expect(runs).toBe(2);
  });

  it("100 concurrent /readyz requests make at most one storage write", async () => {
    const before = await runInDurableObject(probe(), (_i: ReadinessProbe, state) => state.storage.sql.exec<{ checks: number }>(`SELECT checks FROM probe`).toArray()[0]?.checks ?? 0);
    const replies = await Promise.all(Array.from({ length: 100 }, () => call("GET", "/readyz")));
    expect(replies.every((r) => r.status === 200)).toBe(true);
    const after = await runInDurableObject(probe(), (_i: ReadinessProbe, state) => state.storage.sql.exec<{ checks: number }>(`SELECT checks FROM probe`).toArray()[0]!.checks);
    expect(after - before).toBeLessThanOrEqual(1);
  });
});

describe("LOG_LEVEL", () => {
  it("filters by level; errors always pass; missing or unknown means info", () => {
    const table = Object.fromEntries(LOG_LEVELS.map((configured) => [configured, LOG_LEVELS.filter((level) => logs(configured, level))]));
    expect(table).toEqual({
      debug: ["debug", "info", "warn", "error"],
      info: ["info", "warn", "error"],
      warn: ["warn", "error"],
      error: ["error"],
    });
    expect(LOG_LEVELS.filter((level) => logs(undefined, level))).toEqual(["info", "warn", "error"]);
    expect(LOG_LEVELS.filter((level) => logs("loud", level))).toEqual(["info", "warn", "error"]);
  });

  it("one JSON line per request at info; none at warn or error", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: string) => lines.push(line));
    const s = await scope();
    await s.list();
    expect(lines).toHaveLength(1);
    expect(Object.keys(JSON.parse(lines[0]!))).toEqual(["level", "request_id", "method", "route", "scope", "principal", "status", "duration_ms"]);
    for (const level of ["warn", "error"]) {
      await withEnv("/healthz", { LOG_LEVEL: level });
    }
    expect(lines).toHaveLength(1);
    await withEnv("/healthz", { LOG_LEVEL: "debug" });
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: "info", method: "GET", route: "/healthz", status: 200 });
  });
});

describe("the default export", () => {
  it("is the router: /healthz through the Worker's own fetch answers the envelope, its request id and the security headers", async () => {
    const response = await exports.default.fetch(new Request("https://api.test/healthz"));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ success: true, errors: [], messages: [], result: { status: "ok" } });
    expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    expect(response.headers.get("cache-control")).toBe("no-store");
    // An unknown path through the same export is the router's 404, not the runtime's.
    const unknown = await exports.default.fetch(new Request("https://api.test/nowhere"));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { errors: Array<{ code: number }> }).errors[0]!.code).toBe(7000);
  });
});
