// Client-side routing: each page draws into its own container, links stay in the app.

import { errorBox, h, main } from "./dom.js";

let routes = [];
let currentCleanup = null;
let rendering = 0;

// Routes as [pattern, page, nav link]: a page is `async (root, ...matched) => cleanup?`.
export function useRoutes(table) {
  routes = table;
}

// Each render draws into its own container: a page still loading when the user moves on
// finishes into a detached element instead of over the next page.
export async function render() {
  if (currentCleanup) { currentCleanup(); currentCleanup = null; }
  const mine = ++rendering;
  const path = location.pathname;
  const route = routes.find(([re]) => re.test(path));
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

export function navigate(url, { replace = false } = {}) {
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
