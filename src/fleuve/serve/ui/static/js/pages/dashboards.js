// Dashboards: the list, and one dashboard with its filters, charts and auto-refresh.

import { api, UI } from "../api.js";
import { accelBadge, drawChart } from "../charts.js";
import { errorBox, h, toast } from "../dom.js";
import { slugify } from "../format.js";
import { navigate, render } from "../router.js";

export async function dashboardsPage(root) {
  const { data } = await api(`${UI}/dashboards`);
  const slug = h("input", { name: "slug", pattern: "[a-z0-9][a-z0-9_-]*", required: true, placeholder: "sales-weekly" });
  const title = h("input", { name: "title", required: true, placeholder: "Weekly sales" });
  const form = h("form", { class: "row", "aria-label": "New dashboard" },
    h("label", {}, "Title", title), h("label", {}, "Slug", slug), h("button", { type: "submit" }, "Create dashboard"));
  title.addEventListener("input", () => { slug.value = slugify(title.value); });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api(`${UI}/dashboards`, { method: "POST", body: { slug: slug.value, title: title.value } });
      navigate(`/ui/dashboards/${encodeURIComponent(slug.value)}`);
    } catch (error) { toast(error.message); }
  });
  root.replaceChildren(h("h1", {}, "Dashboards"),
    h("div", { class: "cards" }, data.map((d) => h("a", { class: "panel", href: `/ui/dashboards/${encodeURIComponent(d.slug)}`, style: "text-decoration:none" },
      h("h2", {}, d.title),
      h("p", { class: "muted" }, d.origin === "file" ? `from ${d.sourceFile}` : `made by ${d.owner || "?"}`)))),
    h("section", { class: "panel", style: "margin-top:12px" }, h("h2", {}, "New dashboard"), form));
}

const DATE_PRESETS = [["last_7_days", "Last 7 days"], ["last_30_days", "Last 30 days"], ["last_90_days", "Last 90 days"],
  ["last_365_days", "Last 365 days"], ["all", "All time"], ["custom", "Custom range"]];

// Filter values live in the URL, so a dashboard link shows exactly what its sender saw.
function readFilters(spec, params) {
  const values = {};
  for (const f of spec.filters) {
    if (f.type === "date_range") {
      const v = params.get(f.name);
      if (v && v.includes("..")) { const [from, to] = v.split(".."); values[f.name] = { from, to }; }
      else values[f.name] = v || f.default || "all";
    } else {
      const v = params.getAll(f.name);
      values[f.name] = v.length ? v.filter(Boolean) : (f.default || []);
    }
  }
  return values;
}

function writeFilters(spec, values, refresh) {
  const params = new URLSearchParams();
  for (const f of spec.filters) {
    const v = values[f.name];
    if (f.type === "date_range") params.set(f.name, typeof v === "object" ? `${v.from || ""}..${v.to || ""}` : v);
    else if (v.length) v.forEach((x) => params.append(f.name, x));
    else params.set(f.name, "");
  }
  params.set("refresh", refresh);  // 0 too: "off" must survive a shared link
  return params;
}

export async function dashboardPage(root, slug) {
  const dash = await api(`${UI}/dashboards/${encodeURIComponent(slug)}`);
  const spec = dash.spec;
  const params = new URLSearchParams(location.search);
  const values = readFilters(spec, params);
  let refresh = Number(params.get("refresh") ?? spec.refresh_seconds ?? 0);
  let timer = null, generation = 0;
  const status = h("span", { class: "muted", "aria-live": "polite", id: "dash-status" });
  const grid = h("div", { class: "dash-grid", id: "dash-grid" });
  const cards = {};

  for (const chart of spec.charts) {
    const body = h("div", { class: "chart-body" });
    const meta = h("div", { class: "meta" });
    const card = h("section", { class: "chart-card", "aria-label": chart.title, dataset: { chart: chart.name, state: "loading" },
      style: `grid-column: span ${chart.width}` },
      h("header", {}, h("h2", {}, chart.title), meta),
      chart.description ? h("p", { class: "muted", style: "margin:0;font-size:12px" }, chart.description) : "",
      body);
    if (dash.origin === "ui") {
      meta.after(h("button", { type: "button", class: "link", "aria-label": `Remove ${chart.title} from the dashboard`,
        onclick: async () => { await api(`${UI}/dashboards/${encodeURIComponent(slug)}/charts/${encodeURIComponent(chart.name)}`, { method: "DELETE" }); render(); } }, "Remove"));
    }
    cards[chart.name] = { card, body, meta, chart };
    grid.append(card);
  }

  function show(result) {
    const target = cards[result.chart];
    if (!target) return;
    const { card, body, meta, chart } = target;
    if (result.errorMessage) {
      meta.replaceChildren();
      body.replaceChildren(errorBox(new Error(result.errorMessage)));
      delete card.dataset.rows;
      card.dataset.state = "error";
      return;
    }
    drawChart(body, chart, result);
    meta.replaceChildren(accelBadge(result), h("span", {}, `${result.rowCount} rows · ${Math.round(result.elapsedMs)} ms`));
    card.dataset.rows = result.rowCount;
    card.dataset.accelerated = result.acceleration?.accelerated ? "true" : "false";
    card.dataset.state = "ready";
  }

  // One request for every chart; the server answers a JSON line per chart as each is ready.
  async function loadAll() {
    const gen = ++generation;
    const started = performance.now();
    grid.dataset.state = "loading";
    for (const c of Object.values(cards)) c.card.dataset.state = "loading";
    try {
      const res = await api(`${UI}/dashboards/${encodeURIComponent(slug)}/data`, { method: "POST", body: { filters: values }, raw: true });
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { done, value } = await reader.read();
        if (gen !== generation) { reader.cancel(); return; }
        buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
        let end;
        while ((end = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, end);
          buffer = buffer.slice(end + 1);
          if (line.trim()) show(JSON.parse(line));
        }
        if (done) break;
      }
    } catch (error) {
      if (gen !== generation) return;
      for (const c of Object.values(cards)) if (c.card.dataset.state === "loading") show({ chart: c.chart.name, errorMessage: error.message });
    }
    if (gen !== generation) return;
    for (const c of Object.values(cards)) {
      if (c.card.dataset.state === "loading") show({ chart: c.chart.name, errorMessage: "the server sent no answer for this chart" });
    }
    grid.dataset.state = "ready";
    grid.dataset.generation = gen;
    window.fleuveDashboardLoadedMs = performance.now();
    status.textContent = `Updated ${new Date().toLocaleTimeString()} in ${Math.round(performance.now() - started)} ms`;
  }

  function changed() {
    history.replaceState(null, "", `?${writeFilters(spec, values, refresh)}`);
    loadAll();
  }

  const controls = [];
  for (const f of spec.filters) {
    if (f.type === "date_range") {
      const v = values[f.name];
      const preset = h("select", { id: `filter-${f.name}`, name: f.name },
        DATE_PRESETS.map(([k, label]) => h("option", { value: k, selected: (typeof v === "object" ? "custom" : v) === k }, label)));
      const from = h("input", { type: "date", "aria-label": `${f.label} from`, value: typeof v === "object" ? v.from || "" : "" });
      const to = h("input", { type: "date", "aria-label": `${f.label} to`, value: typeof v === "object" ? v.to || "" : "" });
      const custom = h("span", { class: "row", hidden: typeof v !== "object" }, from, to);
      preset.addEventListener("change", () => {
        custom.hidden = preset.value !== "custom";
        if (preset.value === "custom") { values[f.name] = { from: from.value, to: to.value }; return; }
        values[f.name] = preset.value;
        changed();
      });
      for (const input of [from, to]) input.addEventListener("change", () => { values[f.name] = { from: from.value, to: to.value }; changed(); });
      controls.push(h("div", { class: "row" }, h("label", { for: `filter-${f.name}` }, f.label, preset), custom));
    } else {
      const select = h("select", { id: `filter-${f.name}`, name: f.name, multiple: true, size: 3 });
      const fill = (options) => select.replaceChildren(...options.map((o) => h("option", { value: o, selected: values[f.name].includes(o) }, o)));
      fill(values[f.name]);
      api(`${UI}/dashboards/${encodeURIComponent(slug)}/filters/${encodeURIComponent(f.name)}/options`)
        .then((r) => fill([...new Set([...r.values, ...values[f.name]])]))
        .catch(() => { /* the filter still works with the values in the URL */ });
      select.addEventListener("change", () => { values[f.name] = [...select.selectedOptions].map((o) => o.value); changed(); });
      const clear = h("button", { type: "button", class: "link", onclick: () => { values[f.name] = []; [...select.options].forEach((o) => { o.selected = false; }); changed(); } }, `All ${f.label.toLowerCase()}`);
      controls.push(h("div", { class: "row" }, h("label", { for: `filter-${f.name}` }, `${f.label} (none = all)`, select), clear));
    }
  }

  const refreshSelect = h("select", { id: "dash-refresh" },
    [[0, "Off"], [30, "30 s"], [60, "1 min"], [300, "5 min"], [900, "15 min"]].concat(
      [[0, 30, 60, 300, 900].includes(refresh) ? null : [refresh, `${refresh} s`]].filter(Boolean))
      .map(([s, label]) => h("option", { value: s, selected: s === refresh }, label)));
  function schedule() {
    clearInterval(timer);
    timer = refresh ? setInterval(loadAll, refresh * 1000) : null;
  }
  refreshSelect.addEventListener("change", () => {
    refresh = Number(refreshSelect.value);
    history.replaceState(null, "", `?${writeFilters(spec, values, refresh)}`);
    schedule();
  });
  const share = h("button", { type: "button", class: "secondary", onclick: async () => {
    const url = `${location.origin}${location.pathname}?${writeFilters(spec, values, refresh)}`;
    try { await navigator.clipboard.writeText(url); toast("Link copied"); } catch (_) { toast(url); }
  } }, "Copy link");

  root.replaceChildren(
    h("div", { class: "row" }, h("h1", {}, spec.title), status),
    spec.description ? h("p", { class: "muted" }, spec.description) : "",
    h("div", { class: "filters panel", role: "group", "aria-label": "Dashboard filters" }, controls,
      h("label", { for: "dash-refresh" }, "Auto-refresh", refreshSelect),
      h("button", { type: "button", class: "secondary", onclick: loadAll }, "Refresh now"), share),
    spec.charts.length ? grid : h("p", { class: "muted" }, "No chart yet: add one from the chart builder."));
  history.replaceState(null, "", `?${writeFilters(spec, values, refresh)}`);
  schedule();
  loadAll();
  return () => { clearInterval(timer); generation++; };
}
