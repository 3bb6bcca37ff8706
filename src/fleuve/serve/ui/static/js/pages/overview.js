// The overview: last syncs, dbt runs, pipeline runs, reflection freshness, lake size.

import { api, FLEUVE } from "../api.js";
import { badge, errorBox, h, table } from "../dom.js";
import { bytes, when } from "../format.js";

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

export async function overviewPage(root) {
  root.replaceChildren(
    h("h1", {}, "Overview"),
    h("div", { class: "cards" },
      await section("Last syncs", async () => {
        const { data } = await api(`${FLEUVE}/jobs?configType=sync&limit=8`);
        if (!data.length) return h("p", { class: "muted" }, "No sync has run yet.");
        return table(["connection", "status", "updated", "records"], syncRows(data));
      }),
      await section("Last dbt runs and tests", async () => {
        const { data } = await api(`${FLEUVE}/transform/runs?limit=5`);
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
        const { data } = await api("/api/v3/reflection");
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
