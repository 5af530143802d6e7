// GET /metrics at fleet scale (issue 22): 100,000 certificates across
// 10,000 zones, reported to the fleet's metrics object through the RPC every
// zone's object reports with (bench/workers/seed.js `fleet=1`), then scraped
// as Prometheus does (the admin secret, the whole body) while no zone's
// object is woken. Measures the reports' rate, and the scrape's time and
// size, at the default bound on per-certificate series and with it raised
// to every certificate.
import { join } from "node:path";
import type { Secrets } from "../lib/fixtures.ts";
import type { Log } from "../lib/lifecycle.ts";
import { onCleanup } from "../lib/lifecycle.ts";
import { ROOT, apiWorker, bundle, startWorkerd } from "../lib/workerd.ts";

export interface MetricsReport {
  zones: number;
  perZone: number;
  certificates: number;
  seedSeconds: number;
  reportsPerSecond: number;
  /** Scrapes in a row per bound. */
  rounds: number;
  scrapes: Array<{ bound: number; p50Ms: number; maxMs: number; bytes: number; lines: number; expirySeries: number; zoneSeries: number }>;
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;

/** Seeds the fleet in parallel batches of zones, then scrapes `rounds` times per bound. */
export async function fleetMetrics({ work, secrets, log, quick }: { work: string; secrets: Secrets; log: Log; quick: boolean }): Promise<MetricsReport> {
  const zones = quick ? 1_000 : 10_000;
  const perZone = 10;
  const rounds = quick ? 3 : 5;
  const report: MetricsReport = { zones, perZone, certificates: zones * perZone, seedSeconds: 0, reportsPerSecond: 0, rounds, scrapes: [] };
  for (const bound of [10_000, zones * perZone]) {
    const module = await bundle(join(work, `metrics-build-${bound}`));
    const workerd = await startWorkerd({
      dir: join(work, `metrics-workerd-${bound}`),
      workers: [
        await apiWorker({ module, secrets: { ...secrets, METRICS_MAX_CERTIFICATE_SERIES: String(bound) } as Secrets }),
        {
          name: "seed",
          module: join(ROOT, "bench/workers/seed.js"),
          bindings: [
            { name: "TENANTS", durableObject: "TenantStore", service: "api" },
            { name: "METRICS", durableObject: "FleetMetrics", service: "api" },
          ],
        },
      ],
    });
    onCleanup(workerd.stop);
    try {
      const seed = `http://127.0.0.1:${workerd.ports.seed}`;
      const started = performance.now();
      const batch = 250;
      const batches = Array.from({ length: zones / batch }, (_, i) => i * batch);
      // Four batches at a time: the fleet object takes one report at a time anyway.
      for (let i = 0; i < batches.length; i += 4) {
        await Promise.all(
          batches.slice(i, i + 4).map(async (from) => {
            const reply = await fetch(`${seed}/?fleet=1&from=${from}&zones=${batch}&per_zone=${perZone}`);
            if (!reply.ok) throw new Error(`seeding the fleet failed: ${reply.status} ${await reply.text()}`);
          }),
        );
      }
      const seconds = (performance.now() - started) / 1000;
      if (report.seedSeconds === 0) {
        report.seedSeconds = seconds;
        report.reportsPerSecond = zones / seconds;
      }
      log(`metrics: ${zones} zones × ${perZone} certificates reported in ${seconds.toFixed(1)} s (${(zones / seconds).toFixed(0)} reports/s)`);

      const times: number[] = [];
      let body = "";
      for (let r = 0; r < rounds; r++) {
        const t0 = performance.now();
        const reply = await fetch(`http://127.0.0.1:${workerd.ports.api}/metrics`, { headers: { authorization: `Bearer ${secrets.ADMIN_SECRET}` } });
        body = await reply.text();
        times.push(performance.now() - t0);
        if (reply.status !== 200) throw new Error(`GET /metrics answered ${reply.status}: ${body.slice(0, 300)}`);
      }
      const lines = body.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
      const scrape = {
        bound,
        p50Ms: percentile(times, 0.5),
        maxMs: Math.max(...times),
        bytes: Buffer.byteLength(body),
        lines: lines.length,
        expirySeries: lines.filter((l) => l.startsWith("custom_csr_certificate_expiry_timestamp_seconds{")).length,
        zoneSeries: lines.filter((l) => l.startsWith("custom_csr_zone_certificate_expiry_min_timestamp_seconds{")).length,
      };
      report.scrapes.push(scrape);
      log(`metrics: bound ${bound}: scrape p50 ${scrape.p50Ms.toFixed(0)} ms, ${(scrape.bytes / 1e6).toFixed(1)} MB, ${scrape.expirySeries} certificate series, ${scrape.zoneSeries} zone series`);
    } finally {
      await workerd.stop();
    }
  }
  return report;
}

/** The scenario's section of bench/RESULTS.md. */
export function metricsMarkdown(report: MetricsReport, { command, date, machine }: { command: string; date: string; machine: { summary: string } }): string {
  const lines = [
    "## GET /metrics at fleet scale",
    "",
    `\`${command}\`, ${date}, ${machine.summary}.`,
    "",
    `${report.zones.toLocaleString("en-US")} zones × ${report.perZone} custom certificates (${report.certificates.toLocaleString("en-US")}), each zone's report made through the RPC a zone's object reports with (\`FleetMetrics.report\`, bench/workers/seed.js): ${report.reportsPerSecond.toFixed(0)} reports/s (${report.seedSeconds.toFixed(1)} s). Then \`GET /metrics\` with the admin secret, the whole body read, ${report.rounds} scrapes in a row per bound (a fresh server, seeded the same way, for each); a scrape reads the fleet's metrics object and the edge registry, and wakes no zone's object.`,
    "",
    "| `METRICS_MAX_CERTIFICATE_SERIES` | scrape p50 | slowest | body | samples | certificate series | zone series |",
    "|---:|---:|---:|---:|---:|---:|---:|",
    ...report.scrapes.map(
      (s) =>
        `| ${s.bound.toLocaleString("en-US")} | ${s.p50Ms.toFixed(0)} ms | ${s.maxMs.toFixed(0)} ms | ${(s.bytes / 1e6).toFixed(1)} MB | ${s.lines.toLocaleString("en-US")} | ${s.expirySeries.toLocaleString("en-US")} | ${s.zoneSeries.toLocaleString("en-US")} |`,
    ),
    "",
  ];
  return lines.join("\n");
}
