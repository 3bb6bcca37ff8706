// Jobs: syncs with their logs, dbt runs, pipeline runs, queries and reflection refreshes.

import { api, FLEUVE, UI } from "../api.js";
import { badge, errorBox, h, table, tabs } from "../dom.js";
import { when } from "../format.js";

function logButton(params, label) {
  const out = h("div");
  return h("div", {}, h("button", { type: "button", class: "link", onclick: async () => {
    try {
      const { lines } = await api(`${UI}/logs?${new URLSearchParams(params)}`);
      out.replaceChildren(h("pre", { class: "log" }, lines.length ? lines.join("\n") : "(no log lines)"));
    } catch (error) { out.replaceChildren(errorBox(error)); }
  } }, label), out);
}

export async function jobsPage(root) {
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
