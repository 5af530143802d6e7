import { type Exposition, labels } from "./exposition";

// Latency buckets, in seconds: from a cached read to an RSA generation under load.
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

type Histogram = { counts: number[]; sum: number; count: number };

// Since this isolate started: `npm start` runs one, so these are the server's; on Cloudflare each isolate has its
// own, and Workers analytics is the place for request metrics (docs/metrics.md).
const requests = new Map<string, number>();
const latency = new Map<string, Histogram>();

/** Counts one answered request: its route pattern (or `unmatched`), method and status, and its duration. */
export function recordRequest(route: string | null, method: string, status: number, durationMs: number): void {
  // A method nobody registered is "OTHER": a client cannot make series at will.
  const verb = METHODS.has(method) ? method : "OTHER";
  const key = JSON.stringify([route ?? "unmatched", verb, String(status)]);
  requests.set(key, (requests.get(key) ?? 0) + 1);
  const name = route ?? "unmatched";
  let histogram = latency.get(name);
  if (!histogram) latency.set(name, (histogram = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
  const s = durationMs / 1000;
  BUCKETS.forEach((le, i) => {
    if (s <= le) histogram.counts[i]!++;
  });
  histogram.sum += s;
  histogram.count++;
}

/** The request series: `custom_csr_http_requests_total` and the `custom_csr_http_request_duration_seconds` histogram. */
export function renderRequests(out: Exposition): void {
  out.push("# HELP custom_csr_http_requests_total Requests answered, by route pattern, method and status (since this server process started).");
  out.push("# TYPE custom_csr_http_requests_total counter");
  for (const [key, n] of [...requests].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const [route, method, status] = JSON.parse(key) as [string, string, string];
    out.push(`custom_csr_http_requests_total${labels({ route, method, status })} ${n}`);
  }
  out.push("# HELP custom_csr_http_request_duration_seconds Time from a request's arrival to its answer, by route pattern.");
  out.push("# TYPE custom_csr_http_request_duration_seconds histogram");
  for (const [route, h] of [...latency].sort(([a], [b]) => (a < b ? -1 : 1))) {
    BUCKETS.forEach((le, i) => out.push(`custom_csr_http_request_duration_seconds_bucket${labels({ route, le: String(le) })} ${h.counts[i]}`));
    out.push(`custom_csr_http_request_duration_seconds_bucket${labels({ route, le: "+Inf" })} ${h.count}`);
    out.push(`custom_csr_http_request_duration_seconds_sum${labels({ route })} ${h.sum}`);
    out.push(`custom_csr_http_request_duration_seconds_count${labels({ route })} ${h.count}`);
  }
}
