// Jobs: schedules, syncs with their logs, dbt runs, pipeline runs, queries and reflection refreshes.

import { api, FLEUVE, state, UI } from "../api.js";
import { badge, errorBox, h, table, tabs, toast } from "../dom.js";
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

const SCHEDULES = `${FLEUVE}/schedules`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function scheduleText(s) {
  const parts = [s.schedule + (s.timezone && s.timezone !== "UTC" ? ` (${s.timezone})` : "")];
  if (s.after.length) parts.push(`after ${s.after.join(", ")}`);
  if (s.onNewData) parts.push("on new data");
  return parts.join(" · ");
}

async function history(name) {
  const { data } = await api(`${SCHEDULES}/${encodeURIComponent(name)}/runs?limit=20`);
  if (!data.length) return h("p", { class: "muted" }, "No run yet.");
  return table(["run", "trigger", "status", "started", "ended", "job", "error"], data.map((r) => [
    r.id, r.trigger, badge(r.status), when(r.startedAt), when(r.endedAt), r.jobId ?? "", r.error ? h("div", { class: "error" }, r.error) : ""]));
}

// Schedules with their state, last and next run and history; run now, pause and resume for
// users holding MANAGE SCHEDULES (the server checks it again).
function schedulesPanel() {
  const box = h("div", { class: "stack", id: "schedules" });
  const opened = new Set();
  const manage = (state.me?.privileges || []).includes("MANAGE SCHEDULES");
  async function act(name, action, label) {
    try {
      const before = (await api(`${SCHEDULES}/${encodeURIComponent(name)}`)).lastRun?.id ?? 0;
      await api(`${SCHEDULES}/${encodeURIComponent(name)}/${action}`, { method: "POST" });
      toast(`${label}: ${name}`);
      opened.add(name);
      await load();
      // A run asked for starts in the first free process: follow it until it ends.
      for (let i = 0; action === "run" && i < 60; i++) {
        await sleep(1000);
        const last = (await api(`${SCHEDULES}/${encodeURIComponent(name)}`)).lastRun;
        if (last && last.id > before && last.status !== "running") break;
        if (i % 5 === 4) await load();
      }
      if (action === "run") await load();
    } catch (error) { toast(error.message); }
  }
  async function load() {
    let content;
    try {
      const { data } = await api(SCHEDULES);
      const rows = await Promise.all(data.map(async (s) => {
        const details = h("details", { "data-schedule": s.name, open: opened.has(s.name) },
          h("summary", {}, "History"));
        const fill = async () => {
          if (!details.open) { opened.delete(s.name); return; }
          opened.add(s.name);
          try { details.append(await history(s.name)); } catch (error) { details.append(errorBox(error)); }
        };
        details.addEventListener("toggle", () => { details.replaceChildren(details.firstChild); fill(); });
        const actions = manage ? h("div", { class: "row" },
          h("button", { type: "button", class: "secondary", onclick: () => act(s.name, "run", "Run asked for") }, "Run now"),
          s.state === "paused"
            ? h("button", { type: "button", class: "secondary", onclick: () => act(s.name, "resume", "Resumed") }, "Resume")
            : h("button", { type: "button", class: "secondary", onclick: () => act(s.name, "pause", "Paused") }, "Pause")) : "";
        return [s.name, s.kind, scheduleText(s), badge(s.state),
          s.lastRun ? h("div", {}, badge(s.lastRun.status), " ", when(s.lastRun.startedAt)) : "never",
          when(s.nextRun), actions, details];
      }));
      content = table(["schedule", "kind", "runs", "state", "last run", "next run", manage ? "actions" : "", "history"], rows);
    } catch (error) { content = errorBox(error); }
    box.replaceChildren(content);
  }
  return load().then(() => box);
}

export async function jobsPage(root) {
  root.replaceChildren(h("h1", {}, "Jobs"), h("div", { class: "panel" }, tabs([
    ["Schedules", schedulesPanel],
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
      const { data } = await api(`${FLEUVE}/transform/runs?limit=20`);
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
      const { data } = await api("/api/v3/reflection");
      if (!data.length) return h("p", { class: "muted" }, "No reflection defined.");
      return table(["reflection", "dataset", "state", "last refresh", "mode", "seconds", "rows", "failures"], data.map((r) => [
        r.name, (r.datasetPath || []).join("."), badge(r.status?.availability || "unknown"), when(r.status?.lastRefreshFinished),
        r.metrics?.lastRefreshMode || "", r.metrics?.lastRefreshSeconds?.toFixed(2) ?? "", r.metrics?.rows ?? "",
        r.status?.failureCount ? h("div", { class: "error" }, `${r.status.failureCount}: ${r.status.lastFailureMessage || ""}`) : "0"]));
    }],
  ])));
}
