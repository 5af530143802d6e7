// The benchmark's outputs: markdown tables, and an SVG chart of list latency
// against scope size (hand-written SVG, no dependencies).
import type { Machine } from "./machine.ts";
import type { ListPoint, Row, Seeding, Startup, Storage, Target } from "./results.ts";

type Figure = number | null | undefined;

const fmt = (n: Figure, digits = 1) => (n === null || n === undefined || Number.isNaN(n) ? "–" : Number(n).toFixed(digits));
const ms = (n: Figure) => (n === null || n === undefined ? "–" : n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));
const rate = (n: Figure) => (n === null || n === undefined ? "–" : n < 100 ? n.toFixed(1) : Math.round(n).toLocaleString("en"));

/** Everything a report shows; the heading line only when `machine` is given. */
export interface Report {
  machine?: Machine;
  command?: string;
  date?: string;
  rows: Row[];
  targets: Target[];
  startup?: Startup[];
  storage: Storage[];
  seeding: Seeding[];
  notes: string[];
}

/** The whole report as markdown. */
export function markdown({ machine, command, date, rows, targets, startup = [], storage, seeding, notes }: Report): string {
  const lines = [
    ...(machine ? [`Measured ${date} on ${machine.summary}, with \`${command}\`.`, ""] : []),
    "| scenario | load | req/s | p50 ms | p99 ms | idle p50 ms | idle p99 ms | server cores | server CPU µs/req | failed |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) => {
      const idle = r.idle;
      return `| ${r.name} | ${r.loadLabel} | ${rate(r.rps)} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(idle?.p50)} | ${ms(idle?.p99)} | ${fmt(r.cores, 2)} | ${r.cpuUsPerRequest ? Math.round(r.cpuUsPerRequest).toLocaleString("en") : "–"} | ${r.non2xx + r.errors + (idle?.non2xx ?? 0) + (idle?.errors ?? 0)} |`;
    }),
    "",
    "| ratio | measured | target | verdict |",
    "|---|---:|---:|---|",
    ...targets.map((t) => `| ${t.name} | ${fmt(t.value, t.value !== null && Math.abs(t.value) < 10 ? 3 : 1)} | ${t.goal ?? "–"} | ${t.verdict === "fail" ? "**FAIL**" : t.verdict} |`),
  ];
  lines.push(...startupTable(startup));
  lines.push(...storageTable(storage));
  const bigSeeds = seeding.filter((s) => s.count >= 100);
  if (bigSeeds.length) {
    lines.push("", "| seeding | CSRs | seconds | CSRs/s |", "|---|---:|---:|---:|");
    for (const s of bigSeeds) lines.push(`| ${s.name} | ${s.count.toLocaleString("en")} | ${fmt(s.seconds, 1)} | ${rate(s.rate)} |`);
  }
  if (notes.length) lines.push("", ...notes.map((n) => `- ${n}`));
  return `${lines.join("\n")}\n`;
}

/** Start-up times: each run, and their median. */
function startupTable(startup: Startup[]): string[] {
  if (!startup.length) return [];
  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    const at = (i: number) => s[i] ?? Number.NaN;
    return s.length % 2 ? at((s.length - 1) / 2) : (at(s.length / 2 - 1) + at(s.length / 2)) / 2;
  };
  return [
    "",
    "| start to first answered request | runs | median ms | each run, ms |",
    "|---|---:|---:|---|",
    ...startup.map((s) => `| ${s.name} | ${s.runs.length} | ${Math.round(median(s.runs)).toLocaleString("en")} | ${s.runs.map((x) => Math.round(x)).join(", ")} |`),
  ];
}

/** Bytes per CSR (per entry for the audit scope): database growth, the file after close, and by table/index (dbstat). */
function storageTable(storage: Storage[]): string[] {
  const names: string[] = [];
  for (const s of storage) for (const b of s.breakdown ?? []) if (!names.includes(b.name)) names.push(b.name);
  const fixed = "fixed (schema, counters, other tables)";
  const parts = names.filter((n) => n !== fixed);
  const lines = [
    "",
    `| stored per CSR or entry (bytes) | CSRs or entries | growth per one | file per one | ${parts.join(" | ")} |`,
    `|---|---:|---:|---:|${parts.map(() => "---:").join("|")}|`,
  ];
  for (const s of storage) {
    const cells = parts.map((n) => fmt(s.breakdown?.find((b) => b.name === n)?.perUnit, 0));
    lines.push(`| ${s.scope} (${s.keyType}) | ${(s.units ?? s.n).toLocaleString("en")} | ${fmt(s.growthPerCsr, 0)} | ${fmt(s.filePerUnit, 0)} | ${cells.join(" | ")} |`);
  }
  return lines;
}

/**
 * List latency against scope size, log-scaled x: p50 of the first and last
 * page, idle (one connection, solid) and under load (8 connections, dashed).
 */
export function listChart(points: ListPoint[]): string {
  const W = 680;
  const H = 380;
  const M = { l: 64, r: 200, t: 40, b: 56 };
  const sizes = [...new Set(points.map((p) => p.size))].sort((a, b) => a - b);
  const values = points.flatMap((p) => [p.idleP50, p.p50]).filter((v) => typeof v === "number");
  const smallest = sizes[0] ?? 1;
  const largest = sizes.at(-1) ?? 1;
  const maxY = niceCeil(Math.max(0.1, ...values) * 1.1);
  const span = Math.log10(largest) - Math.log10(smallest) || 1;
  const x = (size: number) => M.l + ((Math.log10(size) - Math.log10(smallest)) / span) * (W - M.l - M.r);
  const y = (v: number) => H - M.b - (v / maxY) * (H - M.t - M.b);
  const series: Array<{ page: ListPoint["page"]; key: "idleP50" | "p50"; color: string; dash: string; label: string }> = [
    { page: "first", key: "idleP50", color: "#1f77b4", dash: "", label: "first page, idle p50" },
    { page: "last", key: "idleP50", color: "#d62728", dash: "", label: "last page, idle p50" },
    { page: "first", key: "p50", color: "#1f77b4", dash: "6,4", label: "first page, p50 loaded" },
    { page: "last", key: "p50", color: "#d62728", dash: "6,4", label: "last page, p50 loaded" },
  ];
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${(W - M.r + M.l) / 2}" y="22" text-anchor="middle" font-size="14">List one page of 50 (order=created_at): latency against scope size</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const v = (maxY * i) / 5;
    svg.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`);
    svg.push(`<text x="${M.l - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v < 10 ? v.toFixed(1) : v.toFixed(0)}</text>`);
  }
  for (const s of sizes) {
    svg.push(`<line x1="${x(s).toFixed(1)}" x2="${x(s).toFixed(1)}" y1="${H - M.b}" y2="${H - M.b + 5}" stroke="black"/>`);
    svg.push(`<text x="${x(s).toFixed(1)}" y="${H - M.b + 20}" text-anchor="middle">${s.toLocaleString("en")}</text>`);
  }
  svg.push(`<line x1="${M.l}" y1="${H - M.b}" x2="${W - M.r}" y2="${H - M.b}" stroke="black"/>`);
  svg.push(`<line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${H - M.b}" stroke="black"/>`);
  svg.push(`<text x="${(W - M.r + M.l) / 2}" y="${H - 14}" text-anchor="middle">CSRs in the scope (log scale)</text>`);
  svg.push(`<text x="18" y="${(H - M.b + M.t) / 2}" transform="rotate(-90 18 ${(H - M.b + M.t) / 2})" text-anchor="middle">latency, ms</text>`);
  series.forEach((s, i) => {
    const pts = points.flatMap((p) => {
      const v = p[s.key];
      return p.page === s.page && typeof v === "number" ? [{ size: p.size, v }] : [];
    }).sort((a, b) => a.size - b.size);
    if (pts.length) {
      const d = pts.map((p, j) => `${j ? "L" : "M"}${x(p.size).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
      svg.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
      for (const p of pts) svg.push(`<circle cx="${x(p.size).toFixed(1)}" cy="${y(p.v).toFixed(1)}" r="3" fill="${s.color}"/>`);
    }
    const ly = M.t + 10 + i * 20;
    svg.push(`<line x1="${W - M.r + 16}" x2="${W - M.r + 40}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ""}/>`);
    svg.push(`<text x="${W - M.r + 46}" y="${ly + 4}">${s.label}</text>`);
  });
  svg.push("</svg>");
  return `${svg.join("\n")}\n`;
}

function niceCeil(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
