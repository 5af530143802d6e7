// GET /metrics on `npm start`, scraped as Prometheus does it: with the admin
// secret, in the text format `promtool check metrics` accepts, with the
// fleet's certificates as the zones reported them (a custom certificate and
// a custom hostname's, through the official SDK), an edge's last sync after
// a real `edge sync`, and this server's requests; the example alerting
// rules pass `promtool check rules`.
import { join } from "node:path";
import type Cloudflare from "cloudflare";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { call, csrBody } from "./api";
import { mintToken, scopeId } from "./credentials";
import { opensslCa } from "./openssl-ca";
import { sdkClient } from "./sdk-client";
import { REPO_ROOT, type TestServer, startServer } from "./server";
import { type EnrolledEdge, edgeAgent, enrolEdge, runAsync } from "./tls-edge";

const PROMTOOL = process.env.E2E_PROMTOOL ?? "/usr/bin/promtool";
const ZONE = scopeId("metrics");
const EDGE = "metrics-edge-1";

let server: TestServer;
let client: Cloudflare;
let edge: EnrolledEdge;

/** A scrape with this bearer (the admin secret unless told; null: no Authorization at all). */
async function scrape(token: string | null = server.secrets.ADMIN_SECRET): Promise<{ status: number; type: string | null; text: string }> {
  const response = await fetch(`${server.origin}/metrics`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
}

/** The value of one sample, by its exact labels text (`{a="b"}`, or "" for none); undefined when absent. */
function sample(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(name.length + labels.length + 1));
}

describe("GET /metrics on npm start", () => {
  beforeAll(async () => {
    const root = inject("e2eRoot");
    server = await startServer({ root, name: "metrics" });
    client = sdkClient(server.baseURL, { apiToken: mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] }) });
    edge = await enrolEdge(server, join(server.dir, "edge"), EDGE, ZONE);
  }, 120_000);

  afterAll(async () => {
    await server?.stop();
  });

  it("refuses a scrape without the admin secret, and says nothing", async () => {
    const none = await scrape(null);
    const wrong = await scrape("not-the-secret");
    expect([none.status, wrong.status]).toEqual([400, 403]);
    expect(`${none.text}${wrong.text}`).not.toContain("custom_csr_");
  });

  it("the zone's certificates, the edge's last sync and the requests, in a format promtool accepts", async () => {
    const token = mintToken(server.secrets.API_TOKEN_SECRET, { zones: [ZONE] });
    const ca = opensslCa(join(server.dir, "ca"));
    const csr = await call<{ id: string; csr: string }>(server.origin, "POST", `/client/v4/zones/${ZONE}/custom_csrs`, { token, json: csrBody({ common_name: "shop.customer-metrics.com", sans: ["shop.customer-metrics.com"] }) });
    expect(csr.status, csr.text).toBe(201);
    const certificate = await client.customCertificates.create({ zone_id: ZONE, certificate: ca.issue(csr.body!.result!.csr, "shop", 20), custom_csr_id: csr.body!.result!.id } as Parameters<Cloudflare["customCertificates"]["create"]>[0]);
    const hostname = await client.customHostnames.create({ zone_id: ZONE, hostname: "shop.customer-metrics.com", ssl: { custom_csr_id: csr.body!.result!.id, custom_certificate: ca.issue(csr.body!.result!.csr, "shop-hostname", 25) } });
    const synced = await edgeAgent(process.execPath, [
      "sync", "--dir", edge.edgeDir, "--url", server.origin, "--token-file", edge.tokenFile, "--zone", ZONE, "--out", join(server.dir, "edge", "certs"), "--service-key", edge.serviceKey,
    ]);
    expect(synced.code, synced.stderr).toBe(0);

    const certLabels = `{zone="${ZONE}",certificate_id="${certificate.id}",kind="custom_certificate",custom_csr_id="${csr.body!.result!.id}",hostname=""}`;
    let scraped = await scrape();
    for (let i = 0; i < 100 && sample(scraped.text, "custom_csr_certificate_expiry_timestamp_seconds", certLabels) === undefined; i++) {
      await new Promise((done) => setTimeout(done, 100));
      scraped = await scrape();
    }
    expect(scraped.status).toBe(200);
    expect(scraped.type).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(sample(scraped.text, "custom_csr_certificate_expiry_timestamp_seconds", certLabels)).toBe(Math.floor(Date.parse(certificate.expires_on!) / 1000));
    const hostLabels = `{zone="${ZONE}",certificate_id="${hostname.id}",kind="custom_hostname",custom_csr_id="${csr.body!.result!.id}",hostname="shop.customer-metrics.com"}`;
    expect(sample(scraped.text, "custom_csr_certificate_expiry_timestamp_seconds", hostLabels)).toBe(Math.floor(Date.parse(hostname.ssl!.expires_on!) / 1000));
    expect(sample(scraped.text, "custom_csr_zone_certificate_expiry_min_timestamp_seconds", `{zone="${ZONE}"}`)).toBe(Math.floor(Date.parse(certificate.expires_on!) / 1000));
    expect(sample(scraped.text, "custom_csr_certificates", `{kind="custom_hostname",status="active"}`)).toBeGreaterThanOrEqual(1);
    const lastSync = sample(scraped.text, "custom_csr_edge_last_sync_timestamp_seconds", `{edge="${EDGE}"}`)!;
    expect(Math.abs(lastSync - Date.now() / 1000)).toBeLessThan(120);
    expect(sample(scraped.text, "custom_csr_http_requests_total", `{route="/client/v4/zones/:scopeId/custom_certificates",method="POST",status="200"}`)).toBe(1);
    expect(sample(scraped.text, "custom_csr_http_request_duration_seconds_count", `{route="/client/v4/zones/:scopeId/key_delivery/certificates"}`)).toBeGreaterThanOrEqual(1);

    // promtool, Prometheus's own checker, reads the scrape as it is (its lint included).
    const checked = await runAsync(PROMTOOL, ["check", "metrics"], { input: scraped.text });
    expect(checked.code, `${checked.stdout}${checked.stderr}`).toBe(0);
  });

  it("the documented alerting rules are valid rules", async () => {
    const checked = await runAsync(PROMTOOL, ["check", "rules", join(REPO_ROOT, "docs", "prometheus-rules.yml")]);
    expect(checked.code, `${checked.stdout}${checked.stderr}`).toBe(0);
    expect(checked.stdout).toMatch(/SUCCESS: 6 rules found/);
  });
});
