"""The web UI in a real headless Chromium against `fleuve serve` on the demo shop."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Response, expect

from fleuve.serve.ui.pages import STATIC
from tests.ui.conftest import ANALYST, Served, login, screenshot

DASHBOARD = "/ui/dashboards/analytique-client"
CHARTS = [
    "revenue-total",
    "orders-total",
    "customers-total",
    "average-basket",
    "daily-revenue",
    "orders-by-status",
    "lifetime-value",
    "revenue-by-country",
    "top-customers",
]
PLOTTED = ["daily-revenue", "orders-by-status", "lifetime-value", "revenue-by-country"]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no token, no cache) at 1280x800."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


def open_dashboard(page: Page, served: Served, query: str = "") -> None:
    page.goto(served.url + DASHBOARD + query)
    login(page, served)
    page.wait_for_selector("#dash-grid[data-state=ready]")


def rows(page: Page, chart: str) -> int:
    return int(page.get_attribute(f'[data-chart="{chart}"]', "data-rows") or -1)


def test_dashboard_renders_every_chart_with_data(page: Page, served: Served) -> None:
    open_dashboard(page, served)
    for chart in CHARTS:
        card = page.locator(f'[data-chart="{chart}"]')
        expect(card).to_have_attribute("data-state", "ready")
        assert rows(page, chart) > 0, chart
        expect(card.locator(".meta .badge").first).to_have_text(re.compile("reflection"))
    for chart in PLOTTED:  # bars, lines or slices were drawn, not an empty frame
        assert page.locator(f'[data-chart="{chart}"] svg.chart-svg .mark').count() > 0, chart
    assert page.locator('[data-chart="revenue-total"] .big-number').inner_text().strip()
    expect(page.locator('[data-chart="top-customers"] table tbody tr')).not_to_have_count(0)
    screenshot(page, "dashboard")


def test_filter_change_updates_the_charts(page: Page, served: Served) -> None:
    open_dashboard(page, served)
    before = int(page.get_attribute("#dash-grid", "data-generation") or 0)
    days_before = rows(page, "daily-revenue")
    page.select_option("#filter-period", "last_7_days")
    expect(page.locator("#dash-grid")).to_have_attribute("data-generation", str(before + 1))
    assert rows(page, "daily-revenue") <= 7 < days_before
    assert "period=last_7_days" in page.url
    generation = int(page.get_attribute("#dash-grid", "data-generation") or 0)
    page.wait_for_selector("#filter-country option[value=FR]", state="attached")
    page.select_option("#filter-country", ["FR"])
    expect(page.locator("#dash-grid")).to_have_attribute("data-generation", str(generation + 1))
    assert rows(page, "revenue-by-country") == 1
    assert "country=FR" in page.url
    # The URL is shareable: opening it elsewhere shows the same filters.
    shared = page.url
    page.goto(shared)
    page.wait_for_selector("#dash-grid[data-state=ready]")
    expect(page.locator("#filter-period")).to_have_value("last_7_days")
    assert rows(page, "revenue-by-country") == 1


def test_sql_lab_completes_names_and_fills_the_grid(page: Page, served: Served) -> None:
    page.goto(served.url + "/ui/sql")
    login(page, served)
    editor = page.locator("#sql-editor")
    editor.fill("")
    editor.type("SELECT * FROM gold.fct_d")
    expect(page.locator("#sql-completion li").first).to_contain_text("gold.fct_daily_revenue")
    page.keyboard.press("Enter")
    expect(editor).to_have_value("SELECT * FROM gold.fct_daily_revenue")
    editor.type(" ORDER BY ord")
    expect(page.locator("#sql-completion")).to_contain_text("order_date")
    page.keyboard.press("Escape")
    editor.fill("SELECT order_id, status, amount FROM gold.fct_orders ORDER BY order_id")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#sql-grid table tbody tr")
    expect(page.locator("#sql-grid tbody tr")).to_have_count(100)
    expect(page.locator("#sql-results")).to_contain_text("rows 1-100 of 1000")
    page.get_by_role("button", name="Next").click()
    expect(page.locator("#sql-results")).to_contain_text("rows 101-200 of 1000")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    csv = download.value.path().read_text(encoding="utf-8").splitlines()
    assert csv[0] == '"order_id","status","amount"' and len(csv) == 1001
    screenshot(page, "sql-lab")


def test_user_without_a_grant_sees_an_error_not_data(page: Page, served: Served) -> None:
    page.goto(served.url + DASHBOARD)
    login(page, served, *ANALYST)
    page.wait_for_selector("#dash-grid[data-state=ready]")
    for chart in CHARTS:
        card = page.locator(f'[data-chart="{chart}"]')
        expect(card).to_have_attribute("data-state", "error")
        expect(card.get_by_role("alert")).not_to_be_empty()
        assert card.get_attribute("data-rows") is None
    assert page.locator(".chart-plot, .big-number, .dash-grid table").count() == 0
    screenshot(page, "dashboard-no-grant")


def test_overview_catalog_and_lineage(page: Page, served: Served) -> None:
    page.goto(served.url + "/")
    login(page, served)
    overview = page.get_by_role("region", name="Last syncs")
    expect(overview.locator("tbody tr")).to_have_count(3)
    expect(page.get_by_role("region", name="Lake size per layer")).to_contain_text("gold")
    screenshot(page, "overview")
    page.get_by_role("link", name="Catalog").click()
    page.get_by_role("button", name=re.compile("^fct_orders")).click()
    expect(page.get_by_role("region", name="Columns")).to_contain_text("order_date")
    expect(page.get_by_role("region", name="Preview").locator("tbody tr")).to_have_count(50)
    lineage = page.get_by_role("region", name="Lineage")
    expect(lineage).to_contain_text("raw_orders")
    expect(lineage).to_contain_text("Analytique Client")
    screenshot(page, "catalog")


def test_narrow_screen_and_keyboard(browser: Browser, served: Served) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        open_dashboard(page, served)
        boxes = [
            page.locator(f'[data-chart="{c}"]').bounding_box()
            for c in ("daily-revenue", "orders-by-status")
        ]
        assert boxes[0] and boxes[1] and boxes[1]["y"] > boxes[0]["y"]  # one column
        assert all(b["width"] <= 390 for b in boxes if b)
        menu = page.get_by_role("button", name="Menu")
        menu.focus()
        page.keyboard.press("Enter")
        expect(menu).to_have_attribute("aria-expanded", "true")
        expect(page.get_by_role("link", name="SQL Lab")).to_be_visible()
        screenshot(page, "dashboard-narrow")
    finally:
        context.close()


def test_each_chart_says_whether_a_reflection_served_it(page: Page, served: Served) -> None:
    headers = {"Authorization": f"Bearer {served.token()}"}
    job = httpx.post(
        f"{served.url}/api/v3/sql",
        headers=headers,
        json={
            "sql": "CREATE REFLECTION ui_daily_revenue ON gold.fct_daily_revenue "
            "USING DIMENSIONS (order_date) MEASURES (SUM(amount), SUM(orders))"
        },
    ).json()["id"]
    deadline = time.monotonic() + 60
    while True:
        listed = httpx.get(f"{served.url}/api/v3/reflection", headers=headers).json()
        mine = [r for r in listed["data"] if r["name"] == "ui_daily_revenue"]
        if mine and mine[0]["status"]["availability"] == "AVAILABLE":
            break
        assert time.monotonic() < deadline, httpx.get(
            f"{served.url}/api/v3/job/{job}", headers=headers
        ).text
        time.sleep(0.2)
    open_dashboard(page, served, "?period=last_90_days")
    for chart in ("daily-revenue", "revenue-total", "orders-total"):
        card = page.locator(f'[data-chart="{chart}"]')
        expect(card).to_have_attribute("data-accelerated", "true")
        expect(card.locator(".meta")).to_contain_text("reflection ui_daily_revenue")
    # The demo's own reflection serves the orders charts; a distinct count it cannot answer.
    orders = page.locator('[data-chart="orders-by-status"]')
    expect(orders).to_have_attribute("data-accelerated", "true")
    expect(orders.locator(".meta")).to_contain_text("reflection demo_orders_daily")
    customers = page.locator('[data-chart="customers-total"]')
    expect(customers).to_have_attribute("data-accelerated", "false")
    expect(customers.locator(".meta")).to_contain_text("no reflection")
    page.goto(served.url + "/")
    expect(page.get_by_role("region", name="Reflection freshness")).to_contain_text(
        "ui_daily_revenue"
    )


def test_chart_builder_saves_a_chart_onto_a_new_dashboard(page: Page, served: Served) -> None:
    page.goto(served.url + "/ui/dashboards")
    login(page, served)
    page.get_by_label("Title").fill("Ventes par canal")
    expect(page.get_by_label("Slug")).to_have_value("ventes-par-canal")
    page.get_by_role("button", name="Create dashboard").click()
    expect(page.get_by_role("heading", name="Ventes par canal")).to_be_visible()

    page.goto(served.url + "/ui/charts/new?dataset=gold.fct_orders")
    page.wait_for_selector("#chart-preview-run")
    page.get_by_label("Title").fill("Orders per channel")
    page.get_by_label("Chart type").select_option("bar")
    page.get_by_label("X axis / dimension").select_option("channel")
    page.get_by_label("Aggregate").select_option("sum")
    page.get_by_label("Of column").select_option("amount")
    page.get_by_label("Filter column").select_option("channel")
    page.get_by_label("Operator").select_option("!=")
    page.get_by_label("Value(s)").fill("web")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#chart-preview svg.chart-svg .mark")
    expect(page.locator(".chart-card .meta")).to_contain_text("2 rows")
    page.get_by_role("button", name="Save chart").click()
    expect(page.locator("#toast")).to_contain_text("Saved chart Orders per channel")
    page.get_by_label("Dashboard to add the chart to").select_option("ventes-par-canal")
    page.get_by_role("button", name="Add to dashboard").click()
    expect(page.locator("#toast")).to_contain_text("Added to the dashboard")

    page.get_by_role("link", name="Charts").click()
    expect(page.get_by_role("link", name="Orders per channel")).to_be_visible()
    page.goto(served.url + "/ui/dashboards/ventes-par-canal")
    card = page.locator('[data-chart="orders-per-channel"]')
    expect(card).to_have_attribute("data-state", "ready")
    assert rows(page, "orders-per-channel") == 2


def test_admin_grants_and_revokes_through_the_engine(page: Page, served: Served) -> None:
    page.goto(served.url + "/ui/admin")
    login(page, served)
    expect(page.get_by_role("tab", name="Users")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_contain_text(ANALYST[0])
    page.get_by_role("tab", name="Users").press("ArrowRight")  # tabs follow the arrow keys
    expect(page.get_by_role("tab", name="Roles")).to_be_focused()
    page.get_by_role("tab", name="Grants").click()
    statement = page.get_by_label("GRANT or REVOKE statement")
    statement.fill("GRANT SELECT ON gold.fct_daily_revenue TO ROLE finance")
    statement.press("Enter")
    expect(page.get_by_role("tabpanel")).to_contain_text("role finance")
    statement.fill("REVOKE SELECT ON gold.fct_daily_revenue FROM ROLE finance")
    statement.press("Enter")
    expect(page.get_by_role("tabpanel")).not_to_contain_text("role finance")


def test_auto_refresh_reloads_the_charts(page: Page, served: Served) -> None:
    open_dashboard(page, served, "?refresh=2")
    expect(page.locator("#dash-refresh")).to_have_value("2")
    generation = int(page.get_attribute("#dash-grid", "data-generation") or 0)
    expect(page.locator("#dash-grid")).to_have_attribute("data-generation", str(generation + 1))
    expect(page.locator('[data-chart="daily-revenue"]')).to_have_attribute("data-state", "ready")
    page.select_option("#dash-refresh", "0")
    assert "refresh=0" in page.url


def module_versions() -> dict[str, str]:
    """Each ES module of the app by its plain URL, with the content hash its URL must carry."""
    return {
        f"/ui/static/{path.relative_to(STATIC).as_posix()}": hashlib.sha256(
            path.read_bytes()
        ).hexdigest()[:16]
        for path in STATIC.glob("js/**/*.js")
    }


def test_every_module_loads_pinned_to_its_content_and_no_page_logs_an_error(
    page: Page, served: Served
) -> None:
    expected = module_versions()
    assert {"/ui/static/js/main.js", "/ui/static/js/pages/dashboards.js"} <= expected.keys()
    loaded: dict[str, list[str]] = {}  # module path -> the v= of each request for it
    cached_for_good: dict[str, str] = {}
    errors: list[str] = []

    def response(res: Response) -> None:
        url = urlsplit(res.url)
        if url.path.endswith(".js"):
            loaded.setdefault(url.path, []).append(parse_qs(url.query).get("v", [""])[0])
            cached_for_good[url.path] = res.headers.get("cache-control", "")

    page.on("response", response)
    page.on(
        "console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None
    )
    page.goto(served.url + "/")
    login(page, served)
    for path in (
        "/",
        "/ui/catalog",
        "/ui/catalog?dataset=gold.fct_orders",
        "/ui/sql",
        "/ui/charts",
        "/ui/charts/new?dataset=gold.fct_orders",
        "/ui/dashboards",
        DASHBOARD,
        "/ui/jobs",
        "/ui/admin",
    ):
        page.goto(served.url + path, wait_until="networkidle")
        expect(page.locator("#main h1").first).to_be_visible()
        expect(page.locator("#main")).not_to_contain_text("Loading…")
        expect(page.locator("#main [role=alert]")).to_have_count(0)
    assert set(loaded) == set(expected), "the page loads every module, and only the app's own"
    for path, versions in loaded.items():
        assert set(versions) == {expected[path]}, f"{path} requested as ?v={versions}"
        assert "immutable" in cached_for_good[path], path
    assert not errors, errors


def test_jobs_page_runs_a_schedule_now_and_shows_its_history(
    page: Page, served: Served, browser: Browser
) -> None:
    page.goto(served.url + "/ui/jobs")
    login(page, served)
    row = page.locator("#schedules tbody tr").filter(
        has=page.locator("details[data-schedule=reflections]")
    )
    expect(row).to_contain_text("every_1_minutes")
    expect(row.get_by_role("button", name="Pause")).to_be_visible()
    row.get_by_role("button", name="Run now").click()
    # The server's scheduler starts the run asked for; the page follows it until it ends.
    asked = row.locator("details tbody tr").filter(has_text="run_now by admin")
    expect(asked.first).to_contain_text("succeeded", timeout=60_000)
    screenshot(page, "jobs-schedules")

    # Pausing shows the state and offers Resume; resuming puts it back.
    row.get_by_role("button", name="Pause").click()
    expect(row.locator(".badge").first).to_have_text("paused")
    row.get_by_role("button", name="Resume").click()
    expect(row.get_by_role("button", name="Pause")).to_be_visible()

    # A user without MANAGE SCHEDULES is offered no button.
    other = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    other.goto(served.url + "/ui/jobs")
    login(other, served, *ANALYST)
    expect(other.locator("#main")).not_to_contain_text("Loading…")
    assert other.get_by_role("button", name="Run now").count() == 0
    other.context.close()
