// The zone's alarm drives managed certificates: a zone with ACME work whose
// alarm is gone (lost between a commit and its setAlarm) gets it back when
// its object starts, and a zone without such work is left without one.
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { TenantStore } from "../src/tenant/tenant-store";
import { call, scope, tenantStub } from "./shared";

describe("the ACME alarm", () => {
  it("is set again when the object starts with an order and no alarm; not for a zone without ACME work", async () => {
    const s = await scope("zones");
    expect((await call("POST", `/client/v4/zones/${s.id}/custom_hostnames`, { token: s.token, body: { hostname: "shop.alarm-one.com" } })).status).toBe(201);
    await runInDurableObject(tenantStub(s.kind, s.id), async (_, state) => {
      await state.storage.deleteAlarm();
      new TenantStore(state, env);
      await new Promise((done) => setTimeout(done, 50));
      expect(await state.storage.getAlarm()).toBeNull();

      const id = String(state.storage.sql.exec("SELECT id FROM custom_hostnames").one().id);
      const now = new Date().toISOString();
      state.storage.sql.exec(
        "INSERT INTO acme_orders (custom_hostname_id, ca, purpose, state, next_at, created_at, updated_at) VALUES (?, 'lets_encrypt', 'issue', 'new', ?, ?, ?)",
        id,
        now,
        now,
        now,
      );
      new TenantStore(state, env);
      await new Promise((done) => setTimeout(done, 50));
      expect(await state.storage.getAlarm()).not.toBeNull();
      await state.storage.deleteAlarm();
      state.storage.sql.exec("DELETE FROM acme_orders");
    });
  });
});
