// The catalog: datasets by schema, their columns and preview rows, and the lineage graph.

import { api, FLEUVE } from "../api.js";
import { errorBox, h, svg, table } from "../dom.js";

export async function catalogPage(root) {
  const params = new URLSearchParams(location.search);
  const [{ data }, graph] = await Promise.all([api(`${FLEUVE}/datasets`), api(`${FLEUVE}/lineage?columns=false`)]);
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
  // The graph lists its nodes layer by layer, in the order data flows.
  const layers = [...new Set(nodes.map((n) => n.layer))];
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
