// The metrics page's charts: bar charts drawn as inline SVG (no chart library: a few bars do
// not need one, and the page must work offline).

import { STATUSES, fmtRate, fmtSeconds, fmtTime, h, svg, tableWrap } from "./dom.js";

export const STATUS_COLORS = { Completed: "#2e7d32", Failed: "#c62828", Terminated: "#6d4c41", Canceled: "#8d6e63", Running: "#1565c0", Pending: "#90a4ae", Suspended: "#f9a825", ContinuedAsNew: "#5e35b1" };

export function metricsView(m) {
  const out = [h("p", { class: "muted", text: `Instances created ${fmtTime(m.from)} – ${fmtTime(m.to)}` + (m.truncated ? " (only the first rows were read: narrow the range)" : "") })];
  out.push(h("h2", { text: "Started per " + fmtSeconds(m.series.bucketSeconds) }), seriesChart(m.series));
  out.push(h("h2", { text: "Per orchestrator" }));
  if (!m.orchestrators.length) out.push(h("p", { class: "muted", text: "No orchestration was created in this range." }));
  else {
    out.push(countsChart(m.orchestrators));
    out.push(barChart("Duration of finished instances (p50 / p95)", m.orchestrators.map((o) => [o.name, o.durationP50, o.durationP95]), fmtSeconds, "duration-chart"));
    out.push(tableWrap(h("table", { class: "list", id: "orchestrator-metrics" },
      h("thead", {}, h("tr", {}, ["Orchestrator", "Total", "By status", "Duration p50", "p95", "Failure rate", "Compensation rate"].map((t) => h("th", { text: t })))),
      h("tbody", {}, m.orchestrators.map((o) => h("tr", {},
        h("td", {}, h("a", { href: "#/instances?name=" + encodeURIComponent(o.name), text: o.name })),
        h("td", { text: o.total }),
        h("td", { text: Object.entries(o.counts).map(([k, v]) => `${k} ${v}`).join(", ") }),
        h("td", { text: fmtSeconds(o.durationP50) }), h("td", { text: fmtSeconds(o.durationP95) }),
        h("td", { text: fmtRate(o.failureRate) }), h("td", { text: fmtRate(o.compensationRate) })))))));
  }
  out.push(h("h2", { text: "Approvals by workflow type" }));
  if (!m.approvals.length) out.push(h("p", { class: "muted", text: "No approval in this range (or the app reports none)." }));
  else {
    out.push(barChart("Approval latency (p50 / p95)", m.approvals.map((a) => [a.type, a.latencyP50, a.latencyP95]), fmtSeconds, "approval-latency-chart"));
    out.push(barChart("Timeout rate", m.approvals.map((a) => [a.type, a.timeoutRate, null]), fmtRate, "timeout-chart", 1));
    out.push(tableWrap(h("table", { class: "list", id: "approval-metrics" },
      h("thead", {}, h("tr", {}, ["Type", "Total", "Pending", "Decided", "Timed out", "Timeout rate", "Latency p50", "p95"].map((t) => h("th", { text: t })))),
      h("tbody", {}, m.approvals.map((a) => h("tr", {}, h("td", { text: a.type }), h("td", { text: a.total }), h("td", { text: a.pending }), h("td", { text: a.decided }),
        h("td", { text: a.timeouts }), h("td", { text: fmtRate(a.timeoutRate) }), h("td", { text: fmtSeconds(a.latencyP50) }), h("td", { text: fmtSeconds(a.latencyP95) })))))));
  }
  return out;
}

export function seriesChart(series) {
  const W = 720, H = 160, pad = 24;
  const max = Math.max(1, ...series.buckets.map((b) => b.started));
  const w = (W - pad * 2) / Math.max(1, series.buckets.length);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H + 20}`, class: "chart", id: "series-chart", role: "img", "aria-label": "Instances started over time" });
  chart.appendChild(svg("text", { x: 2, y: 12, class: "axis-label" }, String(max)));
  series.buckets.forEach((b, i) => {
    const x = pad + i * w;
    let y = H;
    for (const [key, color] of [["completed", STATUS_COLORS.Completed], ["failed", STATUS_COLORS.Failed], ["other", STATUS_COLORS.Running]]) {
      const value = key === "other" ? b.started - b.completed - b.failed : b[key];
      if (value <= 0) continue;
      const height = (value / max) * (H - 16);
      y -= height;
      chart.appendChild(svg("rect", { x: x + 1, y, width: Math.max(1, w - 2), height, fill: color }, svg("title", {}, `${fmtTime(b.start)}: ${value} ${key}`)));
    }
  });
  chart.appendChild(svg("line", { x1: pad, y1: H, x2: W - pad, y2: H, class: "axis" }));
  if (series.buckets.length) {
    chart.appendChild(svg("text", { x: pad, y: H + 14, class: "axis-label" }, fmtTime(series.buckets[0].start)));
    chart.appendChild(svg("text", { x: W - pad, y: H + 14, class: "axis-label", "text-anchor": "end" }, fmtTime(series.buckets[series.buckets.length - 1].start)));
  }
  return h("figure", {}, chart, legend([["completed", STATUS_COLORS.Completed], ["failed", STATUS_COLORS.Failed], ["other", STATUS_COLORS.Running]]));
}

export function legend(items) {
  return h("figcaption", { class: "legend" }, items.map(([label, color]) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.background = color;
    return h("span", {}, swatch, label);
  }));
}

export function countsChart(orchestrators) {
  const W = 720, row = 22, labelW = 200;
  const max = Math.max(1, ...orchestrators.map((o) => o.total));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${orchestrators.length * row + 4}`, class: "chart", id: "counts-chart", role: "img", "aria-label": "Instances by status per orchestrator" });
  orchestrators.forEach((o, i) => {
    const y = i * row + 2;
    chart.appendChild(svg("text", { x: labelW - 6, y: y + 15, "text-anchor": "end", class: "axis-label" }, o.name));
    let x = labelW;
    for (const status of STATUSES) {
      const count = o.counts[status] || 0;
      if (!count) continue;
      const width = (count / max) * (W - labelW - 40);
      chart.appendChild(svg("rect", { x, y, width, height: row - 6, fill: STATUS_COLORS[status] || "#999" }, svg("title", {}, `${o.name}: ${count} ${status}`)));
      x += width;
    }
    chart.appendChild(svg("text", { x: x + 4, y: y + 15, class: "axis-label" }, String(o.total)));
  });
  return h("figure", {}, h("figcaption", { text: "Instances by status" }), chart, legend(STATUSES.map((s) => [s, STATUS_COLORS[s]])));
}

export function barChart(title, rows, fmt, id, fixedMax) {
  const W = 720, row = 26, labelW = 200;
  const max = fixedMax || Math.max(1e-9, ...rows.flatMap(([, a, b]) => [a || 0, b || 0]));
  const chart = svg("svg", { viewBox: `0 0 ${W} ${rows.length * row + 4}`, class: "chart", id, role: "img", "aria-label": title });
  rows.forEach(([label, a, b], i) => {
    const y = i * row + 2;
    chart.appendChild(svg("text", { x: labelW - 6, y: y + 15, "text-anchor": "end", class: "axis-label" }, label));
    const scale = (v) => ((v || 0) / max) * (W - labelW - 90);
    if (b !== null && b !== undefined) chart.appendChild(svg("rect", { x: labelW, y: y + 2, width: scale(b), height: row - 10, class: "p95" }, svg("title", {}, `${label} p95: ${fmt(b)}`)));
    chart.appendChild(svg("rect", { x: labelW, y: y + 5, width: scale(a), height: row - 16, class: "p50" }, svg("title", {}, `${label}: ${fmt(a)}`)));
    chart.appendChild(svg("text", { x: labelW + Math.max(scale(a), scale(b)) + 4, y: y + 15, class: "axis-label" }, b !== null && b !== undefined ? `${fmt(a)} / ${fmt(b)}` : fmt(a)));
  });
  return h("figure", {}, h("figcaption", { text: title }), chart);
}
