// Fleuve web UI: a small page app over the platform's REST API and the UI's own endpoints.
// Data is only ever inserted as text (never as HTML), so names from the lake cannot inject markup.
"use strict";

const TOKEN_KEY = "fleuve.token";
const UI = "/api/fleuve/v1/ui";
const FLEUVE = "/api/fleuve/v1";
const PAGE_SIZE = 100;
const state = { me: null, completion: null };

// -- DOM helpers ---------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  for (const child of children.flat()) el.append(child instanceof Node ? child : String(child));
  return el;
}

function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 2500);
}

function errorBox(error) {
  return h("div", { class: "error", role: "alert" }, error.message || String(error));
}

const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const compactFormat = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 2 });
function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return numberFormat.format(value);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function bytes(n) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function when(iso) {
  if (!iso) return "";
  const d = typeof iso === "number" ? new Date(iso * 1000) : new Date(iso);
  return d.toLocaleString();
}

function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

// Identifiers read as written (order 146297, not 146,297).
const ID_COLUMN = /(^|_)id$/i;

function table(columns, rows) {
  const ids = columns.map((c) => ID_COLUMN.test(c));
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((v, i) =>
      h("td", { class: typeof v === "number" ? "num" : null },
        v instanceof Node ? v : ids[i] && v !== null ? String(v) : fmt(v)))))));
}

// -- the API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: `_dremio${localStorage.getItem(TOKEN_KEY) || ""}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) {
    localStorage.removeItem(TOKEN_KEY);
    state.me = null;
    showLogin();
    throw new ApiError(401, "please sign in again");
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try { const e = await res.json(); message = e.errorMessage || message; } catch (_) { /* not JSON */ }
    throw new ApiError(res.status, message);
  }
  if (raw) return res;
  return res.status === 204 ? null : res.json();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Run SQL as a job through the REST API v3 and wait for it to finish.
async function sqlJob(sql) {
  const { id } = await api("/api/v3/sql", { method: "POST", body: { sql } });
  let delay = 20;
  for (;;) {
    const job = await api(`/api/v3/job/${id}`);
    if (job.jobState === "COMPLETED") return { id, job };
    if (job.jobState === "FAILED") throw new ApiError(400, job.errorMessage || "the query failed");
    if (job.jobState === "CANCELED") throw new ApiError(400, "the query was cancelled");
    await sleep(delay);
    delay = Math.min(delay * 2, 500);
  }
}

async function completionData(refresh = false) {
  if (!state.completion || refresh) {
    state.completion = api(`${UI}/completion`).then((r) => r.datasets);
  }
  return state.completion;
}

// -- sign in and routing ---------------------------------------------------------------------

const main = () => document.getElementById("main");

function showLogin(message) {
  document.querySelector(".top").hidden = true;
  const error = h("div", { role: "alert", class: message ? "error" : null }, message || "");
  const form = h("form", { class: "panel", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in to Fleuve"),
    h("label", {}, "User name", h("input", { name: "userName", autocomplete: "username", required: true })),
    h("label", {}, "Password", h("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    error,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const res = await fetch("/apiv2/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ userName: data.get("userName"), password: data.get("password") }),
    });
    if (!res.ok) {
      let text = "sign in failed";
      try { text = (await res.json()).errorMessage || text; } catch (_) { /* not JSON */ }
      error.className = "error";
      error.textContent = text;
      return;
    }
    localStorage.setItem(TOKEN_KEY, (await res.json()).token);
    start();
  });
  main().replaceChildren(h("div", { class: "login" }, form));
  form.querySelector("input").focus();
}

const ROUTES = [
  [/^\/$/, overviewPage, "/"],
  [/^\/ui\/?$/, overviewPage, "/"],
  [/^\/ui\/catalog$/, catalogPage, "/ui/catalog"],
  [/^\/ui\/sql$/, sqlPage, "/ui/sql"],
  [/^\/ui\/charts$/, chartsPage, "/ui/charts"],
  [/^\/ui\/charts\/new$/, chartBuilderPage, "/ui/charts"],
  [/^\/ui\/charts\/([^/]+)$/, chartBuilderPage, "/ui/charts"],
  [/^\/ui\/dashboards$/, dashboardsPage, "/ui/dashboards"],
  [/^\/ui\/dashboards\/([^/]+)$/, dashboardPage, "/ui/dashboards"],
  [/^\/ui\/jobs$/, jobsPage, "/ui/jobs"],
  [/^\/ui\/admin$/, adminPage, "/ui/admin"],
];

let currentCleanup = null;
let rendering = 0;

// Each render draws into its own container: a page still loading when the user moves on
// finishes into a detached element instead of over the next page.
async function render() {
  if (currentCleanup) { currentCleanup(); currentCleanup = null; }
  const mine = ++rendering;
  const path = location.pathname;
  const route = ROUTES.find(([re]) => re.test(path));
  for (const a of document.querySelectorAll("#nav a")) {
    a.toggleAttribute("aria-current", false);
    if (route && a.getAttribute("href") === route[2]) a.setAttribute("aria-current", "page");
  }
  const view = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  main().replaceChildren(view);
  if (!route) {
    view.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No page at ", path, "."));
    return;
  }
  try {
    const params = path.match(route[0]).slice(1).map(decodeURIComponent);
    const cleanup = await route[1](view, ...params);
    if (typeof cleanup === "function") {
      if (mine === rendering) currentCleanup = cleanup;
      else cleanup();
    }
  } catch (error) {
    if (error.status !== 401) view.replaceChildren(errorBox(error));
  }
}

function navigate(url, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render().then(() => main().focus({ preventScroll: true }));
}

document.addEventListener("click", (event) => {
  const a = event.target.closest("a[href]");
  if (!a || a.target || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  const url = new URL(a.getAttribute("href"), location.href);
  if (url.origin !== location.origin || !(url.pathname === "/" || url.pathname.startsWith("/ui"))) return;
  event.preventDefault();
  document.getElementById("nav").classList.remove("open");
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", render);

async function start() {
  if (!localStorage.getItem(TOKEN_KEY)) { showLogin(); return; }
  try {
    state.me = await api(`${UI}/me`);
  } catch (error) {
    if (error.status !== 401) main().replaceChildren(errorBox(error));
    return;
  }
  document.querySelector(".top").hidden = false;
  document.getElementById("whoami").textContent = state.me.userName;
  document.getElementById("nav-admin").hidden = !state.me.admin;
  await render();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("logout").addEventListener("click", async () => {
    try { await api("/apiv2/login", { method: "DELETE" }); } catch (_) { /* already signed out */ }
    localStorage.removeItem(TOKEN_KEY);
    state.completion = null;
    showLogin();
  });
  const toggle = document.getElementById("menu-toggle");
  toggle.addEventListener("click", () => {
    const nav = document.getElementById("nav");
    nav.classList.toggle("open");
    toggle.setAttribute("aria-expanded", nav.classList.contains("open"));
  });
  start();
});

// -- overview --------------------------------------------------------------------------------

async function section(title, load) {
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const panel = h("section", { class: "panel", "aria-label": title }, h("h2", {}, title), body);
  load().then((content) => body.replaceChildren(h("div", { class: "scroll" }, content))).catch((error) => body.replaceChildren(errorBox(error)));
  return panel;
}

function syncRows(jobs) {
  return jobs.map(({ job, attempts }) => {
    const last = attempts[attempts.length - 1]?.attempt || {};
    return [job.configId, badge(job.status), when(job.updatedAt), last.recordsSynced ?? 0];
  });
}

async function overviewPage(root) {
  root.replaceChildren(
    h("h1", {}, "Overview"),
    h("div", { class: "cards" },
      await section("Last syncs", async () => {
        const { data } = await api(`${FLEUVE}/jobs?configType=sync&limit=8`);
        if (!data.length) return h("p", { class: "muted" }, "No sync has run yet.");
        return table(["connection", "status", "updated", "records"], syncRows(data));
      }),
      await section("Last dbt runs and tests", async () => {
        const { data } = await api(`${UI}/dbt/runs?limit=5`);
        if (!data.length) return h("p", { class: "muted" }, "No dbt run recorded yet.");
        return table(["run", "status", "started", "models", "tests", "failed nodes"], data.map((r) => [
          r.run_id.slice(0, 8), badge(r.status), when(r.started_at), r.models_run, r.tests_run,
          r.nodes.filter((n) => ["error", "fail", "runtime error"].includes(n.status)).map((n) => n.name).join(", ") || "none"]));
      }),
      await section("Pipeline runs", async () => {
        const { data } = await api(`${FLEUVE}/pipeline/runs?limit=3`);
        if (!data.length) return h("p", { class: "muted" }, "No pipeline run yet: run `fleuve run`.");
        return h("div", { class: "stack" }, data.map((run) => h("div", {},
          h("h3", {}, `Run ${run.id} `, badge(run.status), " ", h("span", { class: "muted" }, when(run.startedAt))),
          table(["step", "status", "seconds", "summary"],
            run.steps.map((s) => [s.name, badge(s.status), s.seconds === null ? "" : s.seconds.toFixed(2), s.summary || ""])))));
      }),
      await section("Reflection freshness", async () => {
        const { data } = await api(`${UI}/reflections`);
        if (!data.length) return h("p", { class: "muted" }, "No reflection defined.");
        return table(["reflection", "dataset", "status", "last refresh"],
          data.map((r) => [r.name, (r.datasetPath || [r.datasetId]).join("."),
            badge(r.status?.availability || r.status?.combinedStatus || "unknown"),
            when(r.status?.lastRefreshFinished)]));
      }),
      await section("Lake size per layer", async () => {
        const { data } = await api(`${FLEUVE}/lake/layers`);
        const max = Math.max(1, ...data.map((l) => l.bytes));
        return table(["layer", "size", "", "compression"], data.map((l) => [
          l.schema, bytes(l.bytes),
          h("div", { class: "bar", style: `width:${Math.max(2, (100 * l.bytes) / max)}px`, "aria-hidden": "true" }),
          l.compression]));
      })));
}

// -- catalog and lineage -----------------------------------------------------------------------

async function catalogPage(root) {
  const params = new URLSearchParams(location.search);
  const [{ data }, graph] = await Promise.all([api(`${FLEUVE}/datasets`), api(`${UI}/lineage`)]);
  const detail = h("div", { class: "stack" });
  const search = h("input", { type: "search", placeholder: "Filter datasets", "aria-label": "Filter datasets" });
  const tree = h("div", { class: "tree", role: "navigation", "aria-label": "Datasets" });
  const bySchema = {};
  for (const d of data) (bySchema[d.path[0]] ||= []).push(d);

  function drawTree() {
    const q = search.value.toLowerCase();
    tree.replaceChildren(...Object.entries(bySchema).map(([schema, items]) => {
      const shown = items.filter((d) => d.name.toLowerCase().includes(q));
      if (!shown.length) return "";
      return h("div", {}, h("h3", {}, schema), h("ul", {}, shown.map((d) => h("li", {},
        h("button", { type: "button", "aria-current": d.name === params.get("dataset") ? "true" : null,
          onclick: () => { params.set("dataset", d.name); history.replaceState(null, "", `?${params}`); drawTree(); showDataset(d); } },
          d.path[1], " ", h("span", { class: "badge" }, d.type))))));
    }));
  }

  let showing = 0;
  async function showDataset(d) {
    const mine = ++showing;
    detail.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    const pathUrl = d.path.map(encodeURIComponent).join("/");
    try {
      const [entity, preview] = await Promise.all([
        api(`/api/v3/catalog/by-path/${pathUrl}`),
        api(`${FLEUVE}/lake/tables/${pathUrl}?limit=50`),
      ]);
      if (mine !== showing) return;
      const fields = entity.fields || [];
      const columns = fields.map((f) => f.name);
      detail.replaceChildren(
        h("div", { class: "row" }, h("h2", {}, d.name),
          h("a", { class: "button secondary", href: `/ui/sql?sql=${encodeURIComponent(`SELECT * FROM ${d.path.map((p) => `"${p}"`).join(".")} LIMIT 100`)}` }, "Query in SQL Lab"),
          h("a", { class: "button secondary", href: `/ui/charts/new?dataset=${encodeURIComponent(d.name)}` }, "Chart this")),
        h("section", { class: "panel", "aria-label": "Columns" }, h("h3", {}, `Columns (${fields.length})`),
          table(["column", "type"], fields.map((f) => [f.name, f.type?.name || ""]))),
        h("section", { class: "panel", "aria-label": "Preview" }, h("h3", {}, `Preview (${preview.rows.length} rows)`),
          h("div", { class: "scroll" }, table(columns, preview.rows.map((r) => columns.map((c) => r[c]))))),
        h("section", { class: "panel lineage", "aria-label": "Lineage" }, h("h3", {}, "Lineage"), lineageSvg(graph, d.name)));
    } catch (error) {
      detail.replaceChildren(errorBox(error));
    }
  }

  search.addEventListener("input", drawTree);
  drawTree();
  root.replaceChildren(h("h1", {}, "Catalog"), h("div", { class: "split" },
    h("div", { class: "panel stack" }, search, tree),
    detail));
  const chosen = data.find((d) => d.name === params.get("dataset"));
  if (chosen) showDataset(chosen);
  else detail.replaceChildren(h("section", { class: "panel lineage", "aria-label": "Lineage" },
    h("h2", {}, "Lineage: sources to dashboards"), lineageSvg(graph, null)));
}

// Layered drawing: one column per layer, edges as curves; with a focus, only its upstream and
// downstream are drawn.
function lineageSvg(graph, focus) {
  let nodes = graph.nodes;
  if (focus && nodes.some((n) => n.id === focus)) {
    const keep = new Set([focus]);
    for (const [from, to] of [["from", "to"], ["to", "from"]]) {
      const queue = [focus];
      while (queue.length) {
        const id = queue.shift();
        for (const e of graph.edges) {
          if (e[from] === id && !keep.has(e[to])) { keep.add(e[to]); queue.push(e[to]); }
        }
      }
    }
    nodes = nodes.filter((n) => keep.has(n.id));
  }
  const layers = graph.layers.filter((l) => nodes.some((n) => n.layer === l));
  const colW = 190, rowH = 30, boxW = 170, boxH = 22;
  const pos = {};
  let maxRows = 1;
  layers.forEach((layer, i) => {
    const inLayer = nodes.filter((n) => n.layer === layer);
    maxRows = Math.max(maxRows, inLayer.length);
    inLayer.forEach((n, j) => { pos[n.id] = { x: 10 + i * colW, y: 30 + j * rowH }; });
  });
  const width = 20 + layers.length * colW, height = 40 + maxRows * rowH;
  const colors = { bronze: "var(--bronze)", staging: "var(--silver)", intermediate: "var(--silver)",
    silver: "var(--silver)", marts: "var(--gold)", gold: "var(--gold)", dashboards: "var(--dash)" };
  const el = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", style: `max-width:${width}px`,
    "aria-label": `Lineage graph with ${nodes.length} nodes${focus ? ` around ${focus}` : ""}` });
  layers.forEach((layer, i) => el.append(svg("text", { x: 10 + i * colW, y: 16, "font-size": 12, "font-weight": 700 }, layer)));
  for (const e of graph.edges) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2, mx = (x1 + x2) / 2;
    el.append(svg("path", { class: "edge", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
  }
  for (const n of nodes) {
    const p = pos[n.id];
    const label = n.name.length > 24 ? `${n.name.slice(0, 23)}…` : n.name;
    const g = svg("g", { class: `node${n.id === focus ? " focus" : ""}`, transform: `translate(${p.x},${p.y})` },
      svg("title", {}, `${n.id}${n.description ? ` — ${n.description}` : ""}`),
      svg("rect", { width: boxW, height: boxH, fill: colors[n.layer] || "#b0bec5", "fill-opacity": 0.35 }),
      svg("text", { x: 6, y: 15 }, label));
    el.append(n.url && n.url.startsWith("/ui/") ? svg("a", { href: n.url }, g) : g);
  }
  return h("div", { class: "scroll" }, el);
}

// -- SQL Lab -----------------------------------------------------------------------------------

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

async function sqlPage(root) {
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

// -- charts --------------------------------------------------------------------------------------

// Draw a chart's rows (columns + rows from the API) into `body`; resolves when drawn.
// Charts are drawn as SVG by the code below: no chart library to download and compile, so a
// dashboard draws as soon as its rows arrive.
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

// Traces: one per metric and series value, each with the y of every x category.
function traces(chart, data) {
  const names = data.columns.map((c) => c.name);
  const at = (name) => names.indexOf(name);
  const metrics = chart.metrics.map((m) => m.label || `${m.agg}_${m.column || "rows"}`);
  const categories = [...new Set(data.rows.map((r) => r[at(chart.x)]))];
  const groups = chart.series ? [...new Set(data.rows.map((r) => r[at(chart.series)]))] : [null];
  const out = [];
  for (const m of metrics) {
    for (const g of groups) {
      const values = new Map();
      for (const r of data.rows) if (g === null || r[at(chart.series)] === g) values.set(r[at(chart.x)], r[at(m)]);
      out.push({ name: g === null ? m : `${g}${metrics.length > 1 ? ` · ${m}` : ""}`, y: categories.map((c) => values.get(c) ?? null) });
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
  const metric = chart.metrics[0].label || `${chart.metrics[0].agg}_${chart.metrics[0].column || "rows"}`;
  const slices = data.rows.map((r) => [r[names.indexOf(chart.x)], Number(r[names.indexOf(metric)]) || 0]).filter(([, v]) => v > 0);
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
function drawChart(body, chart, data) {
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

function accelBadge(data) {
  const acc = data.acceleration || {};
  const cached = data.cached ? h("span", { class: "badge", title: "answered from the result cache" }, "cached") : "";
  if (acc.accelerated) {
    const names = acc.reflections.map((r) => r.reflectionName || r.reflectionId).join(", ");
    return h("span", {}, h("span", { class: "badge accel", title: "a reflection served this chart" }, `⚡ reflection ${names}`), " ", cached);
  }
  return h("span", {}, h("span", { class: "badge", title: "read from the tables; no reflection matched" }, "no reflection"), " ", cached);
}

async function chartsPage(root) {
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

function slugify(text) {
  return text.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 60) || "chart";
}

async function chartBuilderPage(root, slug) {
  const params = new URLSearchParams(location.search);
  let spec = { type: "bar", metrics: [{ agg: "count" }], limit: 1000, width: 6 };
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
  const agg = h("select", {}, ["count", "sum", "avg", "min", "max", "count_distinct"].map((a) => h("option", { value: a, selected: a === spec.metrics?.[0]?.agg }, a)));
  const measure = h("select", {});
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
    fillColumns(measure, spec.metrics?.[0]?.column, "rows (count)");
    fillColumns(whereColumn, condition.column, "no filter");
    sqlBox.closest("label").hidden = Boolean(source.value);
  }

  function current() {
    const metric = { agg: agg.value };
    if (measure.value) metric.column = measure.value;
    const out = {
      name: slug || slugify(title.value || "chart"),
      title: title.value || "Untitled chart",
      type: type.value,
      limit: Number(limit.value) || 1000,
      metrics: [metric],
    };
    if (source.value) out.dataset = source.value; else out.sql = sqlBox.value.trim();
    if (type.value !== "big_number" && x.value) out.x = x.value;
    if (grain.value && out.x) out.time_grain = grain.value;
    if (series.value && !["pie", "big_number"].includes(type.value)) out.series = series.value;
    if (type.value === "table" && !x.value) { out.columns = columns.slice(0, 20); out.metrics = []; }
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
        field("Aggregate", agg), field("Of column", measure), field("Row limit", limit)),
      h("div", { class: "row" }, field("Filter column", whereColumn), field("Operator", whereOp), field("Value(s)", whereValue)),
      h("div", { class: "row" },
        h("button", { type: "button", id: "chart-preview-run", onclick: runPreview }, "Preview"),
        h("button", { type: "button", class: "secondary", onclick: save }, "Save chart"),
        dashSelect, h("button", { type: "button", class: "secondary", onclick: addToDashboard }, "Add to dashboard"))),
    h("div", { class: "chart-card", style: "margin-top:12px" }, h("header", {}, h("h2", {}, "Preview"), meta), preview));
  await loadColumns().catch((e) => toast(e.message));
}

// -- dashboards -----------------------------------------------------------------------------------

async function dashboardsPage(root) {
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

async function dashboardPage(root, slug) {
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

// -- jobs ----------------------------------------------------------------------------------------------

function tabs(defs) {
  const panel = h("div", { role: "tabpanel" });
  const buttons = defs.map(([label, load], i) => h("button", { type: "button", role: "tab", id: `tab-${i}`, "aria-selected": "false",
    onclick: () => select(i), onkeydown: (e) => {
      if (e.key === "ArrowRight") select((i + 1) % defs.length, true);
      if (e.key === "ArrowLeft") select((i - 1 + defs.length) % defs.length, true);
    } }, label));
  let shown = 0;
  async function select(i, focus) {
    const mine = ++shown;  // a slower, earlier tab must not overwrite the one chosen since
    buttons.forEach((b, j) => { b.setAttribute("aria-selected", i === j ? "true" : "false"); b.tabIndex = i === j ? 0 : -1; });
    if (focus) buttons[i].focus();
    panel.setAttribute("aria-labelledby", `tab-${i}`);
    panel.replaceChildren(h("p", { class: "muted" }, "Loading…"));
    let content;
    try { content = await defs[i][1](); } catch (error) { content = errorBox(error); }
    if (mine === shown) panel.replaceChildren(content);
  }
  select(0);
  return h("div", {}, h("div", { class: "tabs", role: "tablist" }, buttons), panel);
}

function logButton(params, label) {
  const out = h("div");
  return h("div", {}, h("button", { type: "button", class: "link", onclick: async () => {
    try {
      const { lines } = await api(`${UI}/logs?${new URLSearchParams(params)}`);
      out.replaceChildren(h("pre", { class: "log" }, lines.length ? lines.join("\n") : "(no log lines)"));
    } catch (error) { out.replaceChildren(errorBox(error)); }
  } }, label), out);
}

async function jobsPage(root) {
  root.replaceChildren(h("h1", {}, "Jobs"), h("div", { class: "panel" }, tabs([
    ["Syncs", async () => {
      const { data } = await api(`${FLEUVE}/jobs?configType=sync&limit=50`);
      return table(["job", "connection", "status", "updated", "records", "log"], data.map(({ job, attempts }) => {
        const last = attempts[attempts.length - 1]?.attempt || {};
        return [job.id, job.configId, badge(job.status), when(job.updatedAt), last.recordsSynced ?? 0,
          h("div", {}, last.failureSummary ? h("div", { class: "error" }, JSON.stringify(last.failureSummary)) : "",
            logButton({ jobId: job.id }, "Show log"))];
      }));
    }],
    ["dbt runs", async () => {
      const { data } = await api(`${UI}/dbt/runs?limit=20`);
      if (!data.length) return h("p", { class: "muted" }, "No dbt run recorded yet.");
      return table(["run", "status", "started", "models", "tests", "nodes"], data.map((r) => [r.run_id.slice(0, 8), badge(r.status), when(r.started_at),
        r.models_run, r.tests_run,
        h("details", {}, h("summary", {}, `${r.nodes.length} nodes`),
          table(["node", "type", "status", "s", "message"], r.nodes.map((n) => [n.name, n.resource_type, badge(n.status), n.seconds.toFixed(2), n.message || ""])))]));
    }],
    ["Pipeline", async () => {
      const { data } = await api(`${FLEUVE}/pipeline/runs?limit=20`);
      return table(["run", "status", "started", "failed step", "steps"], data.map((r) => [r.id, badge(r.status), when(r.startedAt), r.failedStep || "",
        h("details", {}, h("summary", {}, `${r.steps.length} steps`),
          table(["step", "status", "s", "summary"], r.steps.map((s) => [s.name, badge(s.status), s.seconds?.toFixed(2) ?? "", s.summary || ""])))]));
    }],
    ["Queries", async () => {
      const { data } = await api(`${UI}/queries?limit=100`);
      return table(["when", "user", "via", "outcome", "rows", "ms", "reflections", "SQL"], data.map((q) => [when(q.at), q.userName, q.action, badge(q.outcome),
        q.detail.rows ?? "", q.detail.duration_ms ?? "", (q.detail.reflections || []).join(", "),
        h("code", {}, q.detail.sql || q.target || "", q.detail.error ? h("div", { class: "error" }, q.detail.error) : "")]));
    }],
    ["Reflection refreshes", async () => {
      const { data } = await api(`${UI}/reflections`);
      if (!data.length) return h("p", { class: "muted" }, "No reflection defined.");
      return table(["reflection", "dataset", "state", "last refresh", "mode", "seconds", "rows", "failures"], data.map((r) => [
        r.name, (r.datasetPath || []).join("."), badge(r.status?.availability || "unknown"), when(r.status?.lastRefreshFinished),
        r.metrics?.lastRefreshMode || "", r.metrics?.lastRefreshSeconds?.toFixed(2) ?? "", r.metrics?.rows ?? "",
        r.status?.failureCount ? h("div", { class: "error" }, `${r.status.failureCount}: ${r.status.lastFailureMessage || ""}`) : "0"]));
    }],
  ])));
}

// -- admin -----------------------------------------------------------------------------------------------

async function adminPage(root) {
  if (!state.me?.admin) { root.replaceChildren(errorBox(new Error("the admin pages need the admin role"))); return; }
  const usersPanel = async () => {
    const { data } = await api(`${FLEUVE}/users`);
    const name = h("input", { required: true, autocomplete: "off" });
    const password = h("input", { type: "password", required: true, minlength: 8, autocomplete: "new-password" });
    const roles = h("input", { placeholder: "analyst, data_engineer" });
    const form = h("form", { class: "row", "aria-label": "New user" }, h("label", {}, "User name", name), h("label", {}, "Password", password),
      h("label", {}, "Roles (comma separated)", roles), h("button", { type: "submit" }, "Create user"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api(`${UI}/admin/users`, { method: "POST", body: { userName: name.value, password: password.value, roles: roles.value.split(",").map((r) => r.trim()).filter(Boolean) } });
        toast(`Created ${name.value}`);
        render();
      } catch (error) { toast(error.message); }
    });
    return h("div", { class: "stack" }, table(["user", "roles", "state", "created"], data.map((u) => {
      const input = h("input", { value: u.roles.join(", "), "aria-label": `Roles of ${u.userName}` });
      return [u.userName,
        h("div", { class: "row" }, input, h("button", { type: "button", class: "secondary", onclick: async () => {
          try { await api(`${UI}/admin/users/${encodeURIComponent(u.userName)}`, { method: "PATCH", body: { roles: input.value.split(",").map((r) => r.trim()).filter(Boolean) } }); toast("Roles saved"); } catch (error) { toast(error.message); }
        } }, "Save roles")),
        h("button", { type: "button", class: u.disabled ? "secondary" : "danger", onclick: async () => {
          try { await api(`${UI}/admin/users/${encodeURIComponent(u.userName)}`, { method: "PATCH", body: { disabled: !u.disabled } }); render(); } catch (error) { toast(error.message); }
        } }, u.disabled ? "Enable" : "Disable"),
        when(u.createdAt)];
    })), h("h3", {}, "New user"), form);
  };
  const rolesPanel = async () => {
    const { data } = await api(`${FLEUVE}/users`);
    const roles = {};
    for (const u of data) for (const r of u.roles) (roles[r] ||= []).push(u.userName);
    return table(["role", "members"], Object.entries(roles).sort().map(([r, m]) => [r, m.join(", ")]));
  };
  const grantsPanel = async () => {
    const statement = h("input", { placeholder: "GRANT SELECT ON gold.customer_metrics TO ROLE analyst" });
    const out = h("div");
    const form = h("form", { class: "row", "aria-label": "Grant or revoke" }, h("label", { class: "wide" }, "GRANT or REVOKE statement", statement), h("button", { type: "submit" }, "Run"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!/^\s*(GRANT|REVOKE)\s/i.test(statement.value)) { toast("write a GRANT or REVOKE statement"); return; }
      try { await sqlJob(statement.value); toast("Done"); grants(); } catch (error) { out.replaceChildren(errorBox(error)); }
    });
    const list = h("div");
    async function grants() {
      try {
        const { data } = await api(`${UI}/admin/grants`);
        list.replaceChildren(data.length ? table(["grantee", "privilege", "on", "granted by"], data.map((g) => [`${g.granteeType.toLowerCase()} ${g.grantee}`, g.privilege, g.object, g.grantedBy || ""]))
          : h("p", { class: "muted" }, "No grant yet: only admins can read data."));
      } catch (error) { list.replaceChildren(errorBox(error)); }
    }
    grants();
    return h("div", { class: "stack" }, list, form, out);
  };
  const connectionsPanel = async () => {
    const { data } = await api(`${FLEUVE}/connections`);
    return table(["connection", "source", "streams", ""], data.map((c) => [c.name, c.source.type, c.streams.map((s) => s.name).join(", "),
      h("button", { type: "button", class: "secondary", onclick: async () => {
        try { const r = await api(`${FLEUVE}/connections/${encodeURIComponent(c.name)}/sync`, { method: "POST" }); toast(`Sync job ${r.job.id} started`); } catch (error) { toast(error.message); }
      } }, "Sync now")]));
  };
  root.replaceChildren(h("h1", {}, "Admin"), h("div", { class: "panel" }, tabs([
    ["Users", usersPanel], ["Roles", rolesPanel], ["Grants", grantsPanel], ["Connections", connectionsPanel]])));
}
