// Building the page: elements, tables, tabs and messages.
// Data is only ever inserted as text (never as HTML), so names from the lake cannot inject markup.

import { fmt } from "./format.js";

export const main = () => document.getElementById("main");

export function h(tag, attrs, ...children) {
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

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, value);
  for (const child of children.flat()) el.append(child instanceof Node ? child : String(child));
  return el;
}

export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => el.classList.remove("show"), 2500);
}

export function errorBox(error) {
  return h("div", { class: "error", role: "alert" }, error.message || String(error));
}

export function badge(status) {
  return h("span", { class: `badge ${status}` }, status);
}

// Identifiers read as written (order 146297, not 146,297).
const ID_COLUMN = /(^|_)id$/i;

export function table(columns, rows) {
  const ids = columns.map((c) => ID_COLUMN.test(c));
  return h("table", { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((v, i) =>
      h("td", { class: typeof v === "number" ? "num" : null },
        v instanceof Node ? v : ids[i] && v !== null ? String(v) : fmt(v)))))));
}

// Tabs that load their panel when chosen; the arrow keys move between them.
export function tabs(defs) {
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
