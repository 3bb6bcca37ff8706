"""Dashboard load time in a real browser: the demo's "Analytique Client", cold and warm.

    fleuve demo DIR --scale 1000000 --no-serve
    python bench/dashboard.py DIR [--runs 5]

Starts `fleuve serve` on DIR (free ports), then drives Debian's headless chromium:

- cold: the first load after the server started, in a browser with an empty cache;
- cold browser: a new browser context (empty cache) against the running server;
- warm: reloads in the same browser context (assets cached, the server warm).

A load is timed from navigation start to the moment every chart of the dashboard has drawn its
rows (the page records `performance.now()` then). Targets: cold < 2 s, warm < 500 ms.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
from pathlib import Path

import httpx
from playwright.sync_api import Browser, BrowserContext, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, start_server, stop_server

DASHBOARD = "/ui/dashboards/analytique-client"
TARGETS = {"cold": 2000.0, "cold browser": 2000.0, "warm": 500.0}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _context(browser: Browser, token: str) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    # The token is placed as the login form would leave it, before any page script runs.
    context.add_init_script(f"localStorage.setItem('fleuve.token', {token!r})")
    return context


def _load(context: BrowserContext, url: str, reload: bool = False) -> tuple[float, float]:
    """Milliseconds from navigation start until every chart has drawn, and those of the request
    streaming the charts' rows (the server's share)."""
    page = context.pages[0] if reload and context.pages else context.new_page()
    if reload:
        page.reload()
    else:
        page.goto(url + DASHBOARD)
    page.wait_for_selector("#dash-grid[data-state=ready]", timeout=60_000)
    failed = page.locator(".chart-card[data-state=error]").count()
    if failed:
        raise SystemExit(f"{failed} charts failed: {page.locator('.error').first.inner_text()}")
    slowest = page.evaluate(
        "Math.max(...performance.getEntriesByType('resource')"
        ".filter((e) => e.name.endsWith('/data')).map((e) => e.duration))"
    )
    return float(page.evaluate("window.fleuveDashboardLoadedMs")), float(slowest)


def main() -> None:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="a demo project folder")
    parser.add_argument("--runs", type=int, default=5, help="loads per measure after the cold one")
    args = parser.parse_args()
    password = (args.project / ".fleuve" / "initial-admin-password").read_text().strip()
    http_port = _free_port()
    proc = start_server(args.project, http_port, _free_port())
    url = f"http://127.0.0.1:{http_port}"
    results: dict[str, list[tuple[float, float]]] = {"cold": [], "cold browser": [], "warm": []}
    try:
        token = httpx.post(
            f"{url}/apiv2/login", json={"userName": "admin", "password": password}
        ).json()["token"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            first = _context(browser, token)
            results["cold"].append(_load(first, url))
            first.close()
            for _ in range(args.runs):
                context = _context(browser, token)
                results["cold browser"].append(_load(context, url))
                context.close()
            context = _context(browser, token)
            _load(context, url)
            for _ in range(args.runs):
                results["warm"].append(_load(context, url, reload=True))
            context.close()
            browser.close()
    finally:
        stop_server(proc)
    print(f"load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| load | runs | median ms | min ms | max ms | data request ms | target ms | met |")
    print("|---|---:|---:|---:|---:|---:|---:|:-:|")
    for name, values in results.items():
        totals = [t for t, _ in values]
        median = statistics.median(totals)
        server = statistics.median(s for _, s in values)
        print(
            f"| {name} | {len(values)} | {median:.0f} | {min(totals):.0f} | {max(totals):.0f} "
            f"| {server:.0f} | {TARGETS[name]:.0f} | {'yes' if median < TARGETS[name] else 'no'} |"
        )


if __name__ == "__main__":
    main()
