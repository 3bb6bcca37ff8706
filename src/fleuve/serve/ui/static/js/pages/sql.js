// SQL Lab: an editor completing dataset and column names, a paged result grid, downloads.

import { api, completionData, sqlJob, UI } from "../api.js";
import { errorBox, h, table } from "../dom.js";
import { navigate } from "../router.js";

const PAGE_SIZE = 100;
const SQL_WORDS = ["SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "LIMIT", "JOIN", "LEFT JOIN",
  "ON", "AS", "AND", "OR", "COUNT(*)", "SUM(", "AVG(", "MIN(", "MAX(", "DISTINCT", "HAVING", "DESC"];

// A textarea with completion of dataset and column names (Ctrl+Space, or as you type).
function sqlEditor(initial, onRun) {
  const area = h("textarea", { class: "editor", id: "sql-editor", spellcheck: "false", "aria-label": "SQL query",
    "aria-autocomplete": "list", "aria-controls": "sql-completion", "aria-expanded": "false" });
  area.value = initial;
  const list = h("ul", { class: "completion", id: "sql-completion", role: "listbox", "aria-label": "Completions", hidden: true });
  let items = [], selected = 0;

  function word() {
    const before = area.value.slice(0, area.selectionStart);
    const m = before.match(/[A-Za-z0-9_."]*$/);
    return m ? m[0] : "";
  }

  async function suggest(force) {
    const w = word().replaceAll('"', "");
    if (!force && w.length < 2) { close(); return; }
    const datasets = await completionData();
    const lower = w.toLowerCase();
    const used = Object.keys(datasets).filter((d) => area.value.toLowerCase().includes(d.toLowerCase()));
    const out = [];
    for (const d of Object.keys(datasets)) {
      if (d.toLowerCase().startsWith(lower) || d.split(".")[1].toLowerCase().startsWith(lower)) out.push({ text: d, kind: "dataset" });
    }
    const tail = lower.includes(".") ? lower.split(".").pop() : lower;
    for (const d of used) {
      for (const c of datasets[d]) {
        if (c.name.toLowerCase().startsWith(tail)) out.push({ text: c.name, kind: `${c.type} · ${d}`, column: true });
      }
    }
    if (!lower.includes(".")) for (const k of SQL_WORDS) if (k.toLowerCase().startsWith(lower)) out.push({ text: k, kind: "keyword" });
    items = out.slice(0, 50);
    selected = 0;
    if (!items.length) { close(); return; }
    list.replaceChildren(...items.map((it, i) => h("li", { role: "option", id: `completion-${i}`, "aria-selected": i === selected ? "true" : "false",
      onmousedown: (e) => { e.preventDefault(); accept(i); } }, it.text, h("small", {}, it.kind))));
    list.hidden = false;
    list.style.top = `${area.offsetTop + area.offsetHeight}px`;
    area.setAttribute("aria-expanded", "true");
    area.setAttribute("aria-activedescendant", "completion-0");
  }

  function close() {
    list.hidden = true;
    area.setAttribute("aria-expanded", "false");
    area.removeAttribute("aria-activedescendant");
  }

  function accept(i) {
    const it = items[i];
    const w = word();
    const start = area.selectionStart - (it.column && w.includes(".") ? w.split(".").pop().length : w.length);
    area.setRangeText(it.text, start, area.selectionStart, "end");
    close();
    area.focus();
  }

  function move(delta) {
    selected = (selected + delta + items.length) % items.length;
    [...list.children].forEach((li, i) => li.setAttribute("aria-selected", i === selected ? "true" : "false"));
    list.children[selected].scrollIntoView({ block: "nearest" });
    area.setAttribute("aria-activedescendant", `completion-${selected}`);
  }

  area.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); close(); onRun(); return; }
    if (e.ctrlKey && e.key === " ") { e.preventDefault(); suggest(true); return; }
    if (list.hidden) return;
    if (e.key === "ArrowDown") { e.preventDefault(); move(1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); move(-1); }
    else if (e.key === "Enter" || e.key === "Tab") { e.preventDefault(); accept(selected); }
    else if (e.key === "Escape") { e.preventDefault(); close(); }
  });
  area.addEventListener("input", () => suggest(false));
  area.addEventListener("blur", () => setTimeout(close, 150));
  return { el: h("div", { class: "editor-wrap" }, area, list), area };
}

function resultGrid(container, id, rowCount, jobInfo) {
  let offset = 0;
  const info = h("span", { class: "muted", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "secondary", onclick: () => page(offset - PAGE_SIZE) }, "Previous");
  const next = h("button", { type: "button", class: "secondary", onclick: () => page(offset + PAGE_SIZE) }, "Next");
  const grid = h("div", { class: "scroll", id: "sql-grid" });
  async function page(at) {
    offset = Math.max(0, at);
    const res = await api(`/api/v3/job/${id}/results?offset=${offset}&limit=${PAGE_SIZE}`);
    const columns = res.schema.map((c) => c.name);
    grid.replaceChildren(table(columns, res.rows.map((r) => columns.map((c) => r[c]))));
    const last = Math.min(offset + PAGE_SIZE, rowCount);
    info.textContent = rowCount ? `rows ${offset + 1}-${last} of ${rowCount}` : "no rows";
    prev.disabled = offset === 0;
    next.disabled = last >= rowCount;
  }
  const download = (format) => async () => {
    const res = await api(`${UI}/sql/${id}/download?format=${format}`, { raw: true });
    const url = URL.createObjectURL(await res.blob());
    const a = h("a", { href: url, download: `fleuve-result.${format}` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  const accel = jobInfo.acceleration?.reflectionRelationships?.filter((r) => r.relationship === "CHOSEN") || [];
  container.replaceChildren(
    h("div", { class: "row" }, prev, next, info,
      accel.length ? h("span", { class: "badge accel" }, `⚡ served by reflection ${accel.map((r) => r.reflectionName || r.reflectionId).join(", ")}`)
        : h("span", { class: "badge" }, "no reflection"),
      h("button", { type: "button", class: "secondary", onclick: download("csv") }, "Download CSV"),
      h("button", { type: "button", class: "secondary", onclick: download("parquet") }, "Download Parquet")),
    grid);
  return page(0);
}

export async function sqlPage(root) {
  const params = new URLSearchParams(location.search);
  const results = h("div", { class: "panel", id: "sql-results", "aria-live": "polite" }, h("p", { class: "muted" }, "Run a query to see its rows."));
  const runButton = h("button", { type: "button", id: "sql-run" }, "Run (Ctrl+Enter)");
  const chartButton = h("button", { type: "button", class: "secondary", disabled: true }, "Chart this");
  const editor = sqlEditor(params.get("sql") || sessionStorage.getItem("fleuve.sql") || "SELECT * FROM gold.fct_daily_revenue ORDER BY order_date DESC", run);
  async function run() {
    const sql = editor.area.value.trim();
    if (!sql) return;
    sessionStorage.setItem("fleuve.sql", sql);
    runButton.disabled = true;
    results.replaceChildren(h("p", { class: "muted" }, "Running…"));
    const started = performance.now();
    try {
      const { id, job } = await sqlJob(sql);
      await resultGrid(results, id, job.rowCount, job);
      results.prepend(h("p", { class: "muted" }, `${job.rowCount} rows in ${Math.round(performance.now() - started)} ms (job ${id})`));
      chartButton.disabled = false;
    } catch (error) {
      results.replaceChildren(errorBox(error));
    } finally {
      runButton.disabled = false;
    }
  }
  runButton.addEventListener("click", run);
  chartButton.addEventListener("click", () => navigate(`/ui/charts/new?sql=${encodeURIComponent(editor.area.value.trim())}`));
  root.replaceChildren(h("h1", {}, "SQL Lab"),
    h("div", { class: "panel stack" }, editor.el,
      h("div", { class: "row" }, runButton, chartButton,
        h("span", { class: "muted" }, "Ctrl+Space completes dataset and column names."))),
    h("div", { style: "margin-top:12px" }, results));
  completionData().catch(() => { /* completion is optional */ });
  editor.area.focus();
}
