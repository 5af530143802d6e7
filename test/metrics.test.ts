// GET /metrics in Prometheus's text format: behind the admin secret, the
// fleet's certificates as each zone reported them after its writes (its
// object's alarm), requests by route, bounded per-certificate series.
import { env, exports } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { FLEET_METRICS_NAME } from "../src/core/objects";
import { adminHeaders, call, csrBody, scope, tenantStub } from "./shared";
import { createCa, issueLeaf } from "./test-ca";

async function scrape(headers: Record<string, string> = adminHeaders): Promise<{ status: number; type: string | null; text: string }> {
  const response = await exports.default.fetch(new Request("https://api.test/metrics", { headers }));
  return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
}

/** The samples of one metric: labels (as text) → value. */
function samples(text: string, name: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (match) found.set(match[1] ?? "", Number(match[2]));
  }
  return found;
}

describe("GET /metrics", () => {
  it("needs the admin secret, refused as every admin route refuses", async () => {
    const none = await scrape({});
    const wrong = await scrape({ authorization: "Bearer wrong" });
    expect([none.status, JSON.parse(none.text).errors[0].code]).toEqual([400, 1402]);
    expect(wrong.status).toBe(403);
    expect(wrong.text).not.toContain("custom_csr_");
  });

  it("reports a zone's custom certificate expiry once its object has reported, and counts requests by route", async () => {
    const s = await scope("zones");
    const created = await s.create(csrBody({ key_type: "p256v1", common_name: "metrics.customer-one.com", sans: ["metrics.customer-one.com"] }));
    expect(created.status).toBe(201);
    const csr = created.body.result;
    const notAfter = new Date(Date.now() + 20 * 86_400_000);
    const leaf = await issueLeaf(await createCa("p256v1"), csr.csr, { notAfter });
    const uploaded = await call<{ id: string }>("POST", `/client/v4/zones/${s.id}/custom_certificates`, { token: s.token, body: { certificate: leaf, custom_csr_id: csr.id } });
    expect(uploaded.status).toBe(200);
    // The zone reports a moment after its writes, from its alarm (run now if it has not run yet).
    await runDurableObjectAlarm(tenantStub("zones", s.id));
    const label = `{zone="${s.id}",certificate_id="${uploaded.body.result.id}",kind="custom_certificate",custom_csr_id="${csr.id}",hostname=""}`;
    let scraped = await scrape();
    for (let i = 0; i < 50 && !scraped.text.includes(label); i++) {
      await new Promise((done) => setTimeout(done, 100));
      scraped = await scrape();
    }
    expect(scraped.status).toBe(200);
    expect(scraped.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    const expiry = samples(scraped.text, "custom_csr_certificate_expiry_timestamp_seconds");
    expect(expiry.get(label)).toBe(Math.floor(notAfter.getTime() / 1000));
    expect(samples(scraped.text, "custom_csr_zone_certificate_expiry_min_timestamp_seconds").get(`{zone="${s.id}"}`)).toBe(Math.floor(notAfter.getTime() / 1000));
    expect(samples(scraped.text, "custom_csr_http_requests_total").get(`{route="/client/v4/zones/:scopeId/custom_certificates",method="POST",status="200"}`)).toBeGreaterThanOrEqual(1);
    expect(scraped.text).toMatch(/^# TYPE custom_csr_http_request_duration_seconds histogram$/m);
    expect(scraped.text).toMatch(/^custom_csr_acme_orders_placed_total \d+$/m);
  });

  it("bounds the per-certificate series to the soonest-expiring, and says how many it left out", async () => {
    const fleet = env.METRICS.get(env.METRICS.idFromName(FLEET_METRICS_NAME));
    const at = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();
    await fleet.report({
      scope: "zones:boundedzone",
      at: new Date().toISOString(),
      certificates: [3, 1, 2].map((d) => ({ id: `cert-${d}`, kind: "custom_certificate", custom_csr_id: null, hostname: null, expires_on: at(d - 1000), status: "active" })),
      pool: null,
      counters: {},
    });
    const text = (await fleet.render(2, Date.now())).value as string;
    const listed = [...samples(text, "custom_csr_certificate_expiry_timestamp_seconds").keys()].filter((k) => k.includes("boundedzone"));
    expect(listed.map((k) => /certificate_id="([^"]+)"/.exec(k)![1])).toEqual(["cert-1", "cert-2"]);
    expect(samples(text, "custom_csr_certificate_expiry_series_omitted").get("")).toBeGreaterThanOrEqual(1);
  });
});
