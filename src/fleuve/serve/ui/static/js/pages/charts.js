// Saved charts, and the chart builder: a chart from a dataset or a query, previewed, saved,
// added to a dashboard.

import { api, completionData, sqlJob, UI } from "../api.js";
import { accelBadge, drawChart } from "../charts.js";
import { errorBox, h, table, toast } from "../dom.js";
import { slugify, when } from "../format.js";
import { render } from "../router.js";

export async function chartsPage(root) {
  const [{ data }, dashboards] = await Promise.all([api(`${UI}/charts`), api(`${UI}/dashboards`)]);
  root.replaceChildren(
    h("div", { class: "row" }, h("h1", {}, "Charts"), h("a", { class: "button", href: "/ui/charts/new" }, "New chart")),
    h("section", { class: "panel", "aria-label": "Saved charts" },
      data.length ? table(["chart", "type", "source", "owner", "updated", ""], data.map((c) => [
        h("a", { href: `/ui/charts/${encodeURIComponent(c.slug)}` }, c.title), c.spec.type, c.spec.dataset || "SQL query",
        c.owner || "", when(c.updatedAt),
        h("button", { type: "button", class: "link", "aria-label": `Delete chart ${c.title}`,
          onclick: async () => { await api(`${UI}/charts/${encodeURIComponent(c.slug)}`, { method: "DELETE" }); render(); } }, "Delete")]))
        : h("p", { class: "muted" }, "No saved chart yet: chart a dataset from the catalog or a query from SQL Lab.")),
    h("section", { class: "panel", "aria-label": "Charts on dashboards", style: "margin-top:12px" },
      h("h2", {}, "Charts on dashboards"),
      h("ul", {}, dashboards.data.map((d) => h("li", {}, h("a", { href: `/ui/dashboards/${encodeURIComponent(d.slug)}` }, d.title))))));
}

export async function chartBuilderPage(root, slug) {
  const params = new URLSearchParams(location.search);
  let spec = { type: "bar", measures: [{ agg: "count" }], limit: 1000, width: 6 };
  if (slug) spec = (await api(`${UI}/charts/${encodeURIComponent(slug)}`)).spec;
  else if (params.get("sql")) spec.sql = params.get("sql");
  else spec.dataset = params.get("dataset") || "gold.fct_daily_revenue";

  const datasets = await completionData().catch(() => ({}));
  let columns = [];
  const field = (label, control, wide) => h("label", { class: wide ? "wide" : null }, label, control);
  const source = h("select", { "aria-label": "Source" },
    h("option", { value: "" }, "SQL query"),
    Object.keys(datasets).map((d) => h("option", { value: d, selected: d === spec.dataset }, d)));
  const sqlBox = h("textarea", { class: "editor", "aria-label": "Chart SQL", rows: 4 });
  sqlBox.value = spec.sql || "";
  const type = h("select", {}, ["line", "bar", "area", "pie", "table", "big_number"].map((t) => h("option", { value: t, selected: t === spec.type }, t)));
  const x = h("select", {});
  const grain = h("select", {}, ["", "day", "week", "month", "quarter", "year"].map((g) => h("option", { value: g, selected: g === (spec.time_grain || "") }, g || "none")));
  const series = h("select", {});
  const agg = h("select", {}, ["count", "sum", "avg", "min", "max", "count_distinct"].map((a) => h("option", { value: a, selected: a === spec.measures?.[0]?.agg }, a)));
  const aggColumn = h("select", {});
  const limit = h("input", { type: "number", min: 1, max: 100000, value: spec.limit || 1000 });
  const condition = spec.where?.[0] || {};
  const whereColumn = h("select", {});
  const whereOp = h("select", {}, ["=", "!=", ">", ">=", "<", "<=", "in", "is null", "is not null"].map((o) => h("option", { value: o, selected: o === condition.op }, o)));
  const whereValue = h("input", { value: Array.isArray(condition.value) ? condition.value.join(", ") : condition.value ?? "", placeholder: "completed, shipped" });
  const title = h("input", { value: spec.title || "", placeholder: "Revenue per day", required: true });
  const preview = h("div", { class: "chart-body", id: "chart-preview" }, h("p", { class: "muted" }, "Preview shows here."));
  const meta = h("div", { class: "meta" });
  const dashSelect = h("select", { "aria-label": "Dashboard to add the chart to" });

  function fillColumns(select, chosen, blank) {
    select.replaceChildren(...(blank ? [h("option", { value: "" }, blank)] : []),
      ...columns.map((c) => h("option", { value: c, selected: c === chosen }, c)));
  }

  async function loadColumns() {
    if (source.value) columns = (datasets[source.value] || []).map((c) => c.name);
    else if (sqlBox.value.trim()) {
      const { id } = await sqlJob(`SELECT * FROM (${sqlBox.value.trim()}) AS q LIMIT 0`);
      columns = (await api(`/api/v3/job/${id}/results?offset=0&limit=1`)).schema.map((c) => c.name);
    } else columns = [];
    fillColumns(x, spec.x, "none");
    fillColumns(series, spec.series, "none");
    fillColumns(aggColumn, spec.measures?.[0]?.column, "rows (count)");
    fillColumns(whereColumn, condition.column, "no filter");
    sqlBox.closest("label").hidden = Boolean(source.value);
  }

  function current() {
    const measure = { agg: agg.value };
    if (aggColumn.value) measure.column = aggColumn.value;
    const out = {
      name: slug || slugify(title.value || "chart"),
      title: title.value || "Untitled chart",
      type: type.value,
      limit: Number(limit.value) || 1000,
      measures: [measure],
    };
    if (source.value) out.dataset = source.value; else out.sql = sqlBox.value.trim();
    if (type.value !== "big_number" && x.value) out.x = x.value;
    if (grain.value && out.x) out.time_grain = grain.value;
    if (series.value && !["pie", "big_number"].includes(type.value)) out.series = series.value;
    if (type.value === "table" && !x.value) { out.columns = columns.slice(0, 20); out.measures = []; }
    if (whereColumn.value) {
      const raw = whereValue.value.trim();
      const value = whereOp.value === "in" ? raw.split(",").map((v) => v.trim()).filter(Boolean) : raw;
      out.where = [{ column: whereColumn.value, op: whereOp.value, value: whereOp.value.startsWith("is") ? null : value }];
    }
    return out;
  }

  async function runPreview() {
    meta.replaceChildren();
    preview.replaceChildren(h("p", { class: "muted" }, "Running…"));
    try {
      const chart = current();
      const data = await api(`${UI}/charts/preview`, { method: "POST", body: { chart } });
      meta.replaceChildren(accelBadge(data), `${data.rowCount} rows · ${data.elapsedMs} ms`);
      drawChart(preview, data.chart, data);
    } catch (error) {
      preview.replaceChildren(errorBox(error));
    }
  }

  async function save() {
    try {
      const saved = await api(`${UI}/charts`, { method: "POST", body: { chart: current() } });
      toast(`Saved chart ${saved.title}`);
      history.replaceState(null, "", `/ui/charts/${encodeURIComponent(saved.slug)}`);
    } catch (error) { toast(error.message); }
  }

  async function addToDashboard() {
    if (!dashSelect.value) return;
    try {
      await api(`${UI}/dashboards/${encodeURIComponent(dashSelect.value)}/charts`, { method: "POST", body: { chart: current() } });
      toast("Added to the dashboard");
    } catch (error) { toast(error.message); }
  }

  const { data: dashboards } = await api(`${UI}/dashboards`);
  dashSelect.replaceChildren(h("option", { value: "" }, "choose a dashboard"),
    ...dashboards.filter((d) => d.origin === "ui").map((d) => h("option", { value: d.slug }, d.title)));
  source.addEventListener("change", () => loadColumns().catch((e) => toast(e.message)));
  sqlBox.addEventListener("change", () => loadColumns().catch((e) => toast(e.message)));
  root.replaceChildren(
    h("h1", {}, slug ? `Chart ${spec.title}` : "New chart"),
    h("div", { class: "panel stack" },
      h("div", { class: "row" }, field("Title", title), field("Source", source), field("Chart type", type)),
      field("SQL", sqlBox, true),
      h("div", { class: "row" }, field("X axis / dimension", x), field("Time grain", grain), field("Series", series),
        field("Aggregate", agg), field("Of column", aggColumn), field("Row limit", limit)),
      h("div", { class: "row" }, field("Filter column", whereColumn), field("Operator", whereOp), field("Value(s)", whereValue)),
      h("div", { class: "row" },
        h("button", { type: "button", id: "chart-preview-run", onclick: runPreview }, "Preview"),
        h("button", { type: "button", class: "secondary", onclick: save }, "Save chart"),
        dashSelect, h("button", { type: "button", class: "secondary", onclick: addToDashboard }, "Add to dashboard"))),
    h("div", { class: "chart-card", style: "margin-top:12px" }, h("header", {}, h("h2", {}, "Preview"), meta), preview));
  await loadColumns().catch((e) => toast(e.message));
}
