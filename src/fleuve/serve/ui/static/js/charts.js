// Charts drawn as SVG by the UI itself: no chart library to download and compile, so a
// dashboard draws as soon as its rows arrive.

import { h, svg, table } from "./dom.js";
import { compactFormat, fmt } from "./format.js";

const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const CHART_HEIGHT = 300;

function niceStep(span, ticks) {
  const raw = span / Math.max(1, ticks);
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((step) => step >= raw) || raw;
}

function scaleTicks(values) {
  const lo = Math.min(0, ...values), hi = Math.max(0, ...values);
  const step = niceStep(hi - lo || 1, 5);
  const min = Math.floor(lo / step) * step, max = Math.ceil(hi / step) * step || step;
  const ticks = [];
  for (let v = min; v <= max + step / 2; v += step) ticks.push(v);
  return { min, max, ticks };
}

function axisLabel(value, timeGrain) {
  if (timeGrain && typeof value === "string" && /^\d{4}-\d{2}-\d{2}/.test(value)) {
    const d = new Date(`${value.slice(0, 10)}T00:00:00`);
    const opts = timeGrain === "day" || timeGrain === "week" ? { month: "short", day: "numeric" } : { month: "short", year: "numeric" };
    return d.toLocaleDateString(undefined, opts);
  }
  const text = fmt(value);
  return text.length > 22 ? `${text.slice(0, 21)}…` : text;
}

function legend(names) {
  return h("ul", { class: "legend" }, names.map((name, i) =>
    h("li", {}, h("span", { class: "swatch", style: `background:${PALETTE[i % PALETTE.length]}`, "aria-hidden": "true" }), name)));
}

// Traces: one per measure and series value, each with the y of every x category.
function traces(chart, data) {
  const names = data.columns.map((c) => c.name);
  const at = (name) => names.indexOf(name);
  const measures = chart.measures.map((m) => m.label || `${m.agg}_${m.column || "rows"}`);
  const categories = [...new Set(data.rows.map((r) => r[at(chart.x)]))];
  const groups = chart.series ? [...new Set(data.rows.map((r) => r[at(chart.series)]))] : [null];
  const out = [];
  for (const m of measures) {
    for (const g of groups) {
      const values = new Map();
      for (const r of data.rows) if (g === null || r[at(chart.series)] === g) values.set(r[at(chart.x)], r[at(m)]);
      out.push({ name: g === null ? m : `${g}${measures.length > 1 ? ` · ${m}` : ""}`, y: categories.map((c) => values.get(c) ?? null) });
    }
  }
  return { categories, traces: out };
}

function cartesianSvg(chart, data, width) {
  const { categories, traces: series } = traces(chart, data);
  const horizontal = chart.type === "bar" && !chart.time_grain && categories.some((v) => typeof v === "string" && v.length > 12);
  const values = series.flatMap((t) => t.y.filter((v) => typeof v === "number"));
  const { min, max, ticks } = scaleTicks(values);
  const longest = Math.max(...categories.map((c) => axisLabel(c, chart.time_grain).length));
  const left = horizontal ? Math.min(180, 12 + longest * 6.5) : 56;
  const bottom = horizontal ? 28 : 34;
  const height = horizontal ? Math.max(CHART_HEIGHT, categories.length * 18 + bottom + 10) : CHART_HEIGHT;
  const plotW = width - left - 12, plotH = height - bottom - 10;
  const el = svg("svg", { class: "chart-svg", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": `${chart.title}: ${chart.type} chart of ${data.rowCount} rows` });
  const value = (v) => (horizontal ? left + ((v - min) / (max - min)) * plotW : 10 + plotH - ((v - min) / (max - min)) * plotH);
  const band = (horizontal ? plotH : plotW) / Math.max(1, categories.length);
  const center = (i) => (horizontal ? 10 + band * (i + 0.5) : left + band * (i + 0.5));
  for (const t of ticks) {
    const p = value(t);
    el.append(horizontal
      ? svg("line", { x1: p, x2: p, y1: 10, y2: 10 + plotH, class: "grid-line" })
      : svg("line", { x1: left, x2: left + plotW, y1: p, y2: p, class: "grid-line" }));
    el.append(horizontal
      ? svg("text", { x: p, y: height - 8, "text-anchor": "middle", class: "tick" }, compactFormat.format(t))
      : svg("text", { x: left - 6, y: p + 4, "text-anchor": "end", class: "tick" }, compactFormat.format(t)));
  }
  const labelWidth = Math.min(longest, 22) * 5.8 + 10;  // 11px labels: about 5.8px a character
  const every = Math.max(1, Math.ceil(categories.length / (horizontal ? 40 : Math.max(2, Math.floor(plotW / labelWidth)))));
  categories.forEach((c, i) => {
    if (i % every) return;
    el.append(horizontal
      ? svg("text", { x: left - 6, y: center(i) + 4, "text-anchor": "end", class: "tick" }, axisLabel(c, chart.time_grain))
      : svg("text", { x: center(i), y: height - bottom + 16, "text-anchor": "middle", class: "tick" }, axisLabel(c, chart.time_grain)));
  });
  const zero = value(0);
  series.forEach((t, k) => {
    const color = PALETTE[k % PALETTE.length];
    if (chart.type === "bar") {
      const inner = (band * 0.8) / series.length;
      t.y.forEach((v, i) => {
        if (typeof v !== "number") return;
        const offset = center(i) - band * 0.4 + inner * k;
        const a = value(v);
        const rect = horizontal
          ? { x: Math.min(a, zero), y: offset, width: Math.abs(a - zero), height: inner }
          : { x: offset, y: Math.min(a, zero), width: inner, height: Math.abs(a - zero) };
        el.append(svg("rect", { ...rect, fill: color, class: "mark" }, svg("title", {}, `${axisLabel(categories[i], chart.time_grain)} · ${t.name}: ${fmt(v)}`)));
      });
      return;
    }
    const points = t.y.map((v, i) => (typeof v === "number" ? [center(i), value(v)] : null)).filter(Boolean);
    if (!points.length) return;
    if (chart.type === "area") {
      const path = `M${points[0][0]},${zero} L${points.map((p) => p.join(",")).join(" L")} L${points[points.length - 1][0]},${zero} Z`;
      el.append(svg("path", { d: path, fill: color, "fill-opacity": 0.3, class: "mark" }));
    }
    el.append(svg("polyline", { points: points.map((p) => p.join(",")).join(" "), fill: "none", stroke: color, "stroke-width": 2, class: "mark" }));
    t.y.forEach((v, i) => {
      if (typeof v !== "number") return;
      el.append(svg("circle", { cx: center(i), cy: value(v), r: points.length > 60 ? 1.5 : 3, fill: color, class: "point" },
        svg("title", {}, `${axisLabel(categories[i], chart.time_grain)} · ${t.name}: ${fmt(v)}`)));
    });
  });
  el.append(horizontal
    ? svg("line", { x1: zero, x2: zero, y1: 10, y2: 10 + plotH, class: "axis" })
    : svg("line", { x1: left, x2: left + plotW, y1: zero, y2: zero, class: "axis" }));
  return { el, names: series.map((t) => t.name) };
}

function pieSvg(chart, data, width) {
  const names = data.columns.map((c) => c.name);
  const measure = chart.measures[0].label || `${chart.measures[0].agg}_${chart.measures[0].column || "rows"}`;
  const slices = data.rows.map((r) => [r[names.indexOf(chart.x)], Number(r[names.indexOf(measure)]) || 0]).filter(([, v]) => v > 0);
  const total = slices.reduce((sum, [, v]) => sum + v, 0) || 1;
  const r = CHART_HEIGHT / 2 - 14, cx = width / 2, cy = CHART_HEIGHT / 2;
  const el = svg("svg", { class: "chart-svg", viewBox: `0 0 ${width} ${CHART_HEIGHT}`, width, height: CHART_HEIGHT, role: "img",
    "aria-label": `${chart.title}: pie chart of ${data.rowCount} rows` });
  let angle = -Math.PI / 2;
  slices.forEach(([label, v], i) => {
    const sweep = (v / total) * Math.PI * 2;
    const end = angle + Math.min(sweep, Math.PI * 2 - 1e-6);
    const [x1, y1, x2, y2] = [cx + r * Math.cos(angle), cy + r * Math.sin(angle), cx + r * Math.cos(end), cy + r * Math.sin(end)];
    const inner = r * 0.55;
    const [x3, y3, x4, y4] = [cx + inner * Math.cos(end), cy + inner * Math.sin(end), cx + inner * Math.cos(angle), cy + inner * Math.sin(angle)];
    const large = sweep > Math.PI ? 1 : 0;
    const d = `M${x1},${y1} A${r},${r} 0 ${large} 1 ${x2},${y2} L${x3},${y3} A${inner},${inner} 0 ${large} 0 ${x4},${y4} Z`;
    const share = `${((100 * v) / total).toFixed(1)}%`;
    el.append(svg("path", { d, fill: PALETTE[i % PALETTE.length], class: "mark" }, svg("title", {}, `${fmt(label)}: ${fmt(v)} (${share})`)));
    if (sweep > 0.25) {
      const mid = angle + sweep / 2, lr = (r + inner) / 2;
      el.append(svg("text", { x: cx + lr * Math.cos(mid), y: cy + lr * Math.sin(mid) + 4, "text-anchor": "middle", class: "slice-label" }, share));
    }
    angle += sweep;
  });
  return { el, names: slices.map(([label]) => fmt(label)) };
}

// Draw a chart's rows (columns + rows from the API) into `body`.
export function drawChart(body, chart, data) {
  const names = data.columns.map((c) => c.name);
  if (chart.type === "table") {
    body.replaceChildren(h("div", { class: "scroll" }, table(names, data.rows)));
    return;
  }
  if (chart.type === "big_number") {
    const value = data.rows[0]?.[0];
    body.replaceChildren(h("div", { class: "big-number", title: fmt(value), "aria-label": `${chart.title}: ${fmt(value)}` },
      typeof value === "number" && Math.abs(value) >= 1e6 ? compactFormat.format(value) : fmt(value ?? "–")));
    return;
  }
  if (!data.rows.length) {
    body.replaceChildren(h("p", { class: "muted" }, "No rows for these filters."));
    return;
  }
  const width = Math.max(260, Math.floor(body.clientWidth || 600));
  const drawn = chart.type === "pie" ? pieSvg(chart, data, width) : cartesianSvg(chart, data, width);
  body.replaceChildren(h("div", { class: "chart-plot" }, drawn.el),
    drawn.names.length > 1 ? legend(drawn.names) : "");
}

export function accelBadge(data) {
  const acc = data.acceleration || {};
  const cached = data.cached ? h("span", { class: "badge", title: "answered from the result cache" }, "cached") : "";
  if (acc.accelerated) {
    const names = acc.reflections.map((r) => r.reflectionName || r.reflectionId).join(", ");
    return h("span", {}, h("span", { class: "badge accel", title: "a reflection served this chart" }, `⚡ reflection ${names}`), " ", cached);
  }
  return h("span", {}, h("span", { class: "badge", title: "read from the tables; no reflection matched" }, "no reflection"), " ", cached);
}
