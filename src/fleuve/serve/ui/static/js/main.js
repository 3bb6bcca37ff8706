// Fleuve web UI: a small page app over the platform's REST API and the UI's own endpoints.
// This module is the shell: sign in and out, the menu, and which page answers which URL.

import { api, onSignedOut, state, TOKEN_KEY, UI } from "./api.js";
import { errorBox, h, main } from "./dom.js";
import { adminPage } from "./pages/admin.js";
import { catalogPage } from "./pages/catalog.js";
import { chartBuilderPage, chartsPage } from "./pages/charts.js";
import { dashboardPage, dashboardsPage } from "./pages/dashboards.js";
import { jobsPage } from "./pages/jobs.js";
import { overviewPage } from "./pages/overview.js";
import { sqlPage } from "./pages/sql.js";
import { render, useRoutes } from "./router.js";

useRoutes([
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
]);
onSignedOut(showLogin);

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
