// The benchmark's outputs: a markdown table, JSON, and an SVG chart of list
// latency against scope size (hand-drawn, no dependencies).
const fmt = (n, digits = 1) => (n === null || n === undefined || Number.isNaN(n) ? "–" : Number(n).toFixed(digits));

/** Markdown for the scenario rows and the target ratios. */
export function markdown({ machine, command, date, rows, ratios, storage, notes }) {
  const lines = [
    `Measured ${date} on ${machine} with \`${command}\`.`,
    "",
    "| scenario | path | req/s | p50 ms | p99 ms | cores used | req/s per core | non-2xx |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.path} | ${fmt(r.rps)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.cores, 2)} | ${fmt(r.cores ? r.rps / r.cores : null)} | ${r.non2xx + r.errors} |`,
    ),
    "",
    "| target | measured | goal | verdict |",
    "|---|---:|---|---|",
    ...ratios.map((t) => `| ${t.name} | ${fmt(t.value, 2)} | ${t.goal} | ${t.pass ? "pass" : "**miss**"} |`),
    "",
    "| stored per CSR | bytes |",
    "|---|---:|",
    ...Object.entries(storage).map(([k, v]) => `| ${k} | ${fmt(v, 0)} |`),
  ];
  if (notes.length) lines.push("", ...notes.map((n) => `- ${n}`));
  return `${lines.join("\n")}\n`;
}

/** A line chart: list p50 (and p99) against scope size, log-scaled x, first and last page. */
export function listChart(points) {
  const W = 640;
  const H = 360;
  const M = { l: 60, r: 20, t: 30, b: 50 };
  const sizes = [...new Set(points.map((p) => p.size))].sort((a, b) => a - b);
  const maxY = Math.max(1, ...points.map((p) => p.p99)) * 1.1;
  const x = (size) => M.l + ((Math.log10(size) - Math.log10(sizes[0])) / (Math.log10(sizes.at(-1)) - Math.log10(sizes[0]) || 1)) * (W - M.l - M.r);
  const y = (ms) => H - M.b - (ms / maxY) * (H - M.t - M.b);
  const series = [
    { key: "first", stat: "p50", color: "#1f77b4", dash: "" },
    { key: "last", stat: "p50", color: "#d62728", dash: "" },
    { key: "first", stat: "p99", color: "#1f77b4", dash: "5,4" },
    { key: "last", stat: "p99", color: "#d62728", dash: "5,4" },
  ];
  const paths = series
    .map((s) => {
      const pts = points.filter((p) => p.page === s.key).sort((a, b) => a.size - b.size);
      const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p.size).toFixed(1)},${y(p[s.stat]).toFixed(1)}`).join(" ");
      return `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2" stroke-dasharray="${s.dash}"/>`;
    })
    .join("\n  ");
  const ticksY = Array.from({ length: 5 }, (_, i) => (maxY * i) / 4);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
  <rect width="${W}" height="${H}" fill="white"/>
  <text x="${W / 2}" y="18" text-anchor="middle" font-size="14">List one page of 50: latency against CSRs in the scope</text>
  <line x1="${M.l}" y1="${H - M.b}" x2="${W - M.r}" y2="${H - M.b}" stroke="black"/>
  <line x1="${M.l}" y1="${M.t}" x2="${M.l}" y2="${H - M.b}" stroke="black"/>
  ${sizes.map((s) => `<text x="${x(s)}" y="${H - M.b + 18}" text-anchor="middle">${s.toLocaleString("en")}</text>`).join("\n  ")}
  ${ticksY.map((t) => `<text x="${M.l - 6}" y="${y(t) + 4}" text-anchor="end">${t.toFixed(1)}</text><line x1="${M.l}" x2="${W - M.r}" y1="${y(t)}" y2="${y(t)}" stroke="#eee"/>`).join("\n  ")}
  <text x="${W / 2}" y="${H - 12}" text-anchor="middle">CSRs in the scope (log scale)</text>
  <text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">ms</text>
  ${paths}
  <g transform="translate(${W - 200},${M.t + 6})">
    <line x1="0" x2="20" y1="0" y2="0" stroke="#1f77b4" stroke-width="2"/><text x="26" y="4">first page p50</text>
    <line x1="0" x2="20" y1="16" y2="16" stroke="#d62728" stroke-width="2"/><text x="26" y="20">last page p50</text>
    <line x1="0" x2="20" y1="32" y2="32" stroke="#555" stroke-width="2" stroke-dasharray="5,4"/><text x="26" y="36">p99 (dashed)</text>
  </g>
</svg>
`;
}
