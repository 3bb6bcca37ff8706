"""Dashboards as code: the YAML model, the SQL it builds (DuckDB as the oracle), the loader."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml
from pydantic import ValidationError

from fleuve.dashboards import (
    ChartSpec,
    DashboardSpec,
    DateRange,
    chart_query,
    filter_conditions,
    load_dashboards,
    read_dashboard_file,
    store,
)
from fleuve.dashboards.query import options_query
from fleuve.errors import FleuveError
from fleuve.project import Project

DEMO_YAML = Path(__file__).resolve().parents[2] / "src/fleuve/demo/dashboards/analytique-client.yml"
TODAY = date(2026, 3, 31)


@pytest.fixture
def shop() -> duckdb.DuckDBPyConnection:
    """Orders in a 'gold' schema, including a quote and CJK text in the values."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA gold")
    con.execute(
        """CREATE TABLE gold.orders AS SELECT * FROM (VALUES
        (1, TIMESTAMP '2026-03-31 10:00', 'completed', 'FR', 10.0),
        (2, TIMESTAMP '2026-03-30 23:59', 'completed', 'JP', 20.0),
        (3, TIMESTAMP '2026-03-02 08:00', 'shipped', 'CN', 30.0),
        (4, TIMESTAMP '2026-01-15 12:00', 'cancelled', 'FR', 40.0),
        (5, TIMESTAMP '2026-03-25 12:00', 'it''s', '東京', 50.0)
        ) t(order_id, order_date, status, country_code, amount)"""
    )
    return con


def dashboard(**chart: object) -> DashboardSpec:
    base = {"name": "c", "title": "C", "type": "bar", "dataset": "gold.orders"}
    return DashboardSpec.model_validate(
        {
            "slug": "d",
            "title": "D",
            "filters": [
                {"name": "period", "label": "P", "type": "date_range", "column": "order_date"},
                {"name": "country", "label": "C", "type": "values", "column": "country_code"},
            ],
            "charts": [{**base, **chart}],
        }
    )


def run(con: duckdb.DuckDBPyConnection, spec: DashboardSpec, values: dict) -> list[tuple]:
    chart = spec.charts[0]
    return con.execute(chart_query(chart, filter_conditions(spec, chart, values, TODAY))).fetchall()


def test_bar_chart_aggregates_and_sorts_by_its_measure(shop: duckdb.DuckDBPyConnection) -> None:
    spec = dashboard(x="status", measures=[{"agg": "sum", "column": "amount", "label": "revenue"}])
    result = run(shop, spec, {})
    assert result[:2] == [("it's", 50.0), ("cancelled", 40.0)]
    assert sorted(result[2:]) == [("completed", 30.0), ("shipped", 30.0)]


def test_date_range_presets_and_inclusive_custom_ranges(shop: duckdb.DuckDBPyConnection) -> None:
    spec = dashboard(type="big_number", measures=[{"agg": "count"}])
    assert run(shop, spec, {"period": "last_7_days"}) == [(3,)]  # 25th, 30th 23:59, 31st
    assert run(shop, spec, {"period": "last_30_days"}) == [(4,)]
    assert run(shop, spec, {"period": "all"}) == [(5,)]
    assert run(shop, spec, {"period": {"from": "2026-03-30", "to": "2026-03-30"}}) == [(1,)]
    assert DateRange.parse("last_30_days", TODAY).start == date(2026, 3, 2)
    with pytest.raises(FleuveError, match="unknown date range"):
        DateRange.parse("last_week", TODAY)


def test_values_filter_quotes_its_values(shop: duckdb.DuckDBPyConnection) -> None:
    spec = dashboard(type="big_number", measures=[{"agg": "sum", "column": "amount"}])
    assert run(shop, spec, {"country": ["FR", "東京"]}) == [(100.0,)]
    assert run(shop, spec, {"country": ["x') OR 1=1 --"]}) == [(None,)]
    spec = dashboard(
        type="big_number",
        measures=[{"agg": "count"}],
        where=[{"column": "status", "value": "it's"}],
    )
    assert run(shop, spec, {}) == [(1,)]


def test_time_grain_series_and_ignored_filters(shop: duckdb.DuckDBPyConnection) -> None:
    spec = dashboard(
        type="line",
        x="order_date",
        time_grain="month",
        measures=[{"agg": "count", "label": "orders"}],
        ignore_filters=["period"],
    )
    assert run(shop, spec, {"period": "last_7_days"}) == [
        (date(2026, 1, 1), 1),
        (date(2026, 3, 1), 4),
    ]
    spec = dashboard(
        type="bar",
        x="status",
        series="country_code",
        measures=[{"agg": "count_distinct", "column": "order_id"}],
    )
    assert len(run(shop, spec, {})) == 5


def test_sql_charts_and_table_columns(shop: duckdb.DuckDBPyConnection) -> None:
    spec = dashboard(
        type="table",
        dataset=None,
        sql="SELECT country_code, amount * 2 AS doubled, order_date FROM gold.orders",
        columns=["country_code", "doubled"],
        order_by=["-doubled"],
        limit=2,
    )
    assert run(shop, spec, {"country": ["FR"]}) == [("FR", 80.0), ("FR", 20.0)]
    assert shop.execute(options_query("gold.orders", "country_code")).fetchall() == [
        ("CN",),
        ("FR",),
        ("JP",),
        ("東京",),
    ]


def test_sql_charts_keep_the_meaning_of_their_sql(shop: duckdb.DuckDBPyConnection) -> None:
    """A chart's SQL is read as the engine reads queries: an interval keeps its time."""
    spec = dashboard(
        type="table",
        dataset=None,
        sql="SELECT order_id, order_date + INTERVAL '3 days 04:05:06.789' AS due FROM gold.orders",
        columns=["order_id", "due"],
        order_by=["order_id"],
        limit=1,
    )
    due = shop.execute(
        "SELECT TIMESTAMP '2026-03-31 10:00' + to_days(3) + to_hours(4) + to_minutes(5) "
        "+ to_microseconds(6789000)"
    ).fetchone()[0]
    assert run(shop, spec, {}) == [(1, due)]


@pytest.mark.parametrize(
    "chart, problem",
    [
        ({"type": "bar", "measures": [{"agg": "count"}]}, "needs an 'x' column"),
        ({"type": "pie", "x": "a", "measures": []}, "at least one measure"),
        ({"type": "big_number", "x": "a", "measures": [{"agg": "count"}]}, "no x"),
        ({"type": "bar", "x": "a", "measures": [{"agg": "sum"}]}, "needs a column"),
        ({"type": "table", "sql": "SELECT 1", "columns": ["a"]}, "exactly one of"),
        ({"type": "table", "columns": ["a"], "name": "Bad Name"}, "lowercase"),
    ],
)
def test_invalid_charts_say_what_is_wrong(chart: dict, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ChartSpec.model_validate({"name": "c", "title": "C", "dataset": "gold.orders", **chart})


OLD_KEY_YAML = """
slug: old
title: Old
charts:
  - {name: revenue, title: Revenue, type: bar, dataset: gold.orders, x: status,
     metrics: [{agg: sum, column: amount, label: revenue}]}
"""


def test_a_dashboard_file_saying_metrics_still_loads_with_a_note(
    tmp_path: Path, shop: duckdb.DuckDBPyConnection, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "old.yml"
    path.write_text(OLD_KEY_YAML, encoding="utf-8")
    with caplog.at_level("WARNING", logger="fleuve.dashboards"):
        spec = read_dashboard_file(path)
    assert [m.name for m in spec.charts[0].measures] == ["revenue"]
    assert "measures" in spec.model_dump()["charts"][0]
    assert "old.yml" in caplog.text and "'measures:'" in caplog.text
    assert dict(run(shop, spec, {})) == {
        "it's": 50,
        "cancelled": 40,
        "completed": 30,
        "shipped": 30,
    }


def test_a_chart_giving_both_measures_and_metrics_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "both.yml"
    both = OLD_KEY_YAML.replace("metrics:", "measures: [{agg: count}], metrics:")
    path.write_text(both, encoding="utf-8")
    with pytest.raises(FleuveError, match=r"both 'measures' and 'metrics'.*keep only 'measures'"):
        read_dashboard_file(path)


def test_the_demo_dashboard_is_valid_and_reads_the_gold_marts() -> None:
    spec = read_dashboard_file(DEMO_YAML)
    assert spec.title == "Analytique Client"
    assert {c.type for c in spec.charts} >= {"big_number", "area", "bar", "pie", "table"}
    sources = {c.dataset for c in spec.charts if c.dataset}
    assert sources <= {
        "gold.fct_daily_revenue",
        "gold.fct_orders",
        "gold.fct_customer_lifetime_value",
    }
    for chart in spec.charts:
        assert "FROM" in chart_query(chart, filter_conditions(spec, chart, {}))


def test_loader_upserts_files_reports_errors_and_drops_vanished(project: Project) -> None:
    folder = project.settings.project_dir / "dashboards"
    folder.mkdir()
    (folder / "a.yml").write_text(DEMO_YAML.read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "broken.yml").write_text("slug: x\ntitle: X\ncharts: [{name: c}]\n", encoding="utf-8")
    report = load_dashboards(project.db, project.settings.project_dir)
    assert report.loaded == ["analytique-client"]
    assert len(report.errors) == 1 and "broken.yml" in report.errors[0]
    row, spec = store.get_dashboard(project.db, "analytique-client")
    assert row.origin == "file" and len(spec.charts) == 9
    with pytest.raises(FleuveError, match="comes from"):
        store.save_dashboard(project.db, spec, "someone")
    data = yaml.safe_load(DEMO_YAML.read_text(encoding="utf-8"))
    data["title"] = "Analytique Client v2"
    (folder / "a.yml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    load_dashboards(project.db, project.settings.project_dir)
    assert store.get_dashboard(project.db, "analytique-client")[0].title == "Analytique Client v2"
    (folder / "a.yml").unlink()
    assert load_dashboards(project.db, project.settings.project_dir).removed == [
        "analytique-client"
    ]
    assert not store.dashboard_exists(project.db, "analytique-client")


def test_cli_checks_every_chart_through_the_engine(project: Project) -> None:
    from click.testing import CliRunner

    from fleuve.cli import cli

    project.lake.commit(
        lambda c: c.execute("CREATE TABLE gold.sales AS SELECT 1 AS id, 2.5 AS amount"),
        what="cli test data",
    )
    folder = project.settings.project_dir / "dashboards"
    folder.mkdir()
    chart = {"title": "T", "type": "big_number", "dataset": "gold.sales"}
    spec = {
        "slug": "s",
        "title": "S",
        "charts": [
            {**chart, "name": "good", "measures": [{"agg": "sum", "column": "amount"}]},
            {**chart, "name": "typo", "measures": [{"agg": "sum", "column": "amuont"}]},
        ],
    }
    (folder / "s.yml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["-p", str(project.settings.project_dir), "dashboards", "check"]
    )
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert any("good" in line and "ok" in line for line in lines)
    assert any("typo" in line and "amuont" in line for line in lines)
