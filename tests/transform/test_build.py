"""The scaffolded dbt project builds the shop into silver and gold, recorded and traced."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner

from fleuve.cli import cli
from fleuve.project import Project, init_project
from fleuve.security import auth
from fleuve.serve.server import FleuveServer
from fleuve.transform import DbtRun, get_run, node_timings, run_history, run_transform
from fleuve.transform.lineage import (
    Lineage,
    LineageContext,
    LineageNode,
    lineage,
    register_lineage_provider,
    unregister_lineage_provider,
)
from tests.transform.conftest import land_shop

Built = tuple[Project, DbtRun]
MODELS = 13
TESTS = 36
EXPOSURES = """
version: 2
exposures:
  - name: customer_analytics
    type: dashboard
    description: The seed's customer analytics dashboard.
    url: https://bi.example/customer-analytics
    depends_on: [ref('fct_customer_lifetime_value'), ref('customer_metrics')]
    owner: {name: Data team}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The test shop after one `fleuve transform build`."""
    folder = tmp_path_factory.mktemp("built") / "shop"
    init_project(folder, "shop")
    project = Project.open(folder)
    land_shop(project.lake)
    # A dashboard declared the dbt way, as an exposure.
    (project.settings.path("transform") / "models" / "marts" / "exposures.yml").write_text(
        EXPOSURES, encoding="utf-8"
    )
    run = run_transform(project.settings, ["build"], db=project.db)
    try:
        yield project, run
    finally:
        project.close()


def test_the_scaffolded_project_builds_green_into_silver_and_gold(built: Built) -> None:
    project, run = built
    assert run.success, run.summary()
    counts = run.counts()
    assert counts.get("success") == MODELS and counts.get("pass") == TESTS, counts
    lake = project.lake
    assert {t for _, t in lake.tables("silver")} == {
        "stg_customers",
        "stg_orders",
        "stg_order_lines",
        "stg_products",
        "stg_web_events",
        "int_customer_orders",
    }
    assert {t for _, t in lake.tables("gold")} == {
        "fct_orders",
        "fct_customer_lifetime_value",
        "fct_daily_revenue",
        "dim_customers",
        "customer_metrics",
    }
    # The seed's own queries on gold.orders and gold.customers answer.
    assert lake.query("SELECT count(*) AS n FROM gold.orders")["n"][0].as_py() == 3000
    rich = lake.query(
        "SELECT count(*) AS n FROM gold.customers WHERE state = 'Paris' AND lifetime_value > 100"
    )["n"][0].as_py()
    assert rich > 0
    # Every passing test left nothing in the failing-rows schema.
    assert lake.tables("test_failures") == []


def test_gold_is_zstd_and_partitioned_by_period_silver_snappy(built: Built) -> None:
    project, _ = built
    con = project.lake.connect()

    def files(schema: str, table: str) -> list[str]:
        return [
            r[0]
            for r in con.execute(
                f"SELECT data_file FROM ducklake_list_files('lake', '{table}', schema => '{schema}')"
            ).fetchall()
        ]

    def codecs(paths: list[str]) -> set[str]:
        return {
            r[0]
            for p in paths
            for r in con.execute(
                f"SELECT DISTINCT compression FROM parquet_metadata('{p}')"
            ).fetchall()
        }

    orders = files("gold", "fct_orders")
    assert orders and all("/year=" in f for f in orders)
    assert codecs(orders) == {"ZSTD"}
    assert all("/year=" in f for f in files("gold", "fct_daily_revenue"))
    assert codecs(files("silver", "stg_orders")) == {"SNAPPY"}


def test_names_in_every_script_survive_the_layers(built: Built) -> None:
    project, _ = built
    names = set(
        project.lake.query("SELECT customer_name FROM gold.dim_customers")[
            "customer_name"
        ].to_pylist()
    )
    assert {"FRANÇOIS MÜLLER-HÉLIE", "محمد العلوي", "王 伟", "中村 さくら"} <= names


def test_every_run_is_recorded_with_the_timing_of_each_node(built: Built) -> None:
    project, run = built
    [record] = [r for r in run_history(project.db) if r.run_id == run.run_id]
    assert record.status == "succeeded"
    assert record.project_name == "fleuve_shop"
    assert (record.models_run, record.tests_run) == (MODELS, TESTS)
    assert record.metadata["command"] == ["build"]
    assert record.metadata["fleuve_project"] == "shop"
    assert record.started_at <= record.completed_at
    assert len(record.nodes) == MODELS + TESTS + 1  # and the exposure, as a no-op
    models = {n.name: n for n in record.nodes if n.resource_type == "model"}
    assert models["fct_customer_lifetime_value"].relation == "gold.fct_customer_lifetime_value"
    assert all(n.seconds > 0 and n.started_at <= n.completed_at for n in models.values())
    assert get_run(project.db, run.run_id[:8]).run_id == run.run_id
    assert [t.status for t in node_timings(project.db, "stg_orders")] == ["success"]
    json.dumps(record.to_dict())


def test_lineage_traces_the_seeds_chain_tables_and_columns(built: Built) -> None:
    project, _ = built
    graph = lineage(project.settings, lake=project.lake)
    edges = set(graph.edges)
    # The seed's lineage: bronze → staging → intermediate → marts → its dashboard.
    assert {
        ("bronze.raw_customers", "silver.stg_customers"),
        ("bronze.raw_orders", "silver.stg_orders"),
        ("silver.stg_customers", "silver.int_customer_orders"),
        ("silver.stg_orders", "silver.int_customer_orders"),
        ("silver.int_customer_orders", "gold.fct_customer_lifetime_value"),
        ("gold.fct_customer_lifetime_value", "dashboard:customer_analytics"),
    } <= edges
    assert [n.id for n in graph.upstream("fct_customer_lifetime_value")] == [
        "silver.int_customer_orders",
        "silver.stg_customers",
        "silver.stg_orders",
        "bronze.raw_customers",
        "bronze.raw_orders",
    ]
    assert {n.layer for n in graph.nodes.values()} == {
        "bronze",
        "staging",
        "intermediate",
        "marts",
        "dashboards",
    }
    assert graph.node("stg_orders").layer == "staging"
    assert graph.node("dashboard:customer_analytics").url == "https://bi.example/customer-analytics"
    assert "assert_positive_amounts" in graph.node("silver.stg_orders").tests
    # Column level: where the lifetime value and the customer's name come from.
    sources = {
        str(c) for c in graph.column_sources("fct_customer_lifetime_value", "lifetime_value")
    }
    assert sources == {"bronze.raw_orders.amount", "bronze.raw_orders.status"}
    assert [str(c) for c in graph.column_sources("gold.customers", "customer_name")] == [
        "bronze.raw_customers.full_name"
    ]
    assert "gold.fct_daily_revenue.amount" in {
        str(c) for c in graph.column_dependents("bronze.raw_orders", "amount")
    }
    data = graph.to_dict()
    assert {"nodes", "edges", "columns"} == set(data) and json.dumps(data, ensure_ascii=False)


def test_other_layers_attach_to_the_lineage_through_providers(built: Built) -> None:
    project, _ = built

    def reflections(graph: Lineage, context: LineageContext) -> None:
        graph.add(
            LineageNode(
                id="reflection:agg_daily_revenue",
                kind="reflection",
                name="agg_daily_revenue",
                layer="reflections",
            ),
            upstream=["gold.orders"],
        )

    register_lineage_provider(reflections)
    try:
        graph = lineage(project.settings, lake=project.lake, columns=False)
    finally:
        unregister_lineage_provider(reflections)
    assert "reflection:agg_daily_revenue" in {n.id for n in graph.downstream("bronze.raw_orders")}
    assert list(graph.layers())[-1] == "reflections"


def test_cli_builds_shows_history_and_lineage(built: Built) -> None:
    project, _ = built
    where = ["--project", str(project.settings.project_dir)]
    runner = CliRunner()
    done = runner.invoke(cli, [*where, "transform", "run", "--select", "staging"])
    assert done.exit_code == 0, done.output
    assert "stg_orders" in done.output
    assert "dbt run: 5 success" in done.output
    history = runner.invoke(cli, [*where, "transform", "history", "--json"])
    assert history.exit_code == 0, history.output
    assert json.loads(history.output)[0]["metadata"]["command"] == ["run", "--select", "staging"]
    tree = runner.invoke(cli, [*where, "transform", "lineage", "fct_customer_lifetime_value"])
    assert tree.exit_code == 0, tree.output
    assert "bronze.raw_orders" in tree.output and "dashboard:customer_analytics" in tree.output
    unknown = runner.invoke(cli, [*where, "transform", "lineage", "fct_customer_lifetime"])
    assert unknown.exit_code == 1
    assert "no lineage node 'fct_customer_lifetime'" in unknown.output
    assert "fct_customer_lifetime_value" in unknown.output


def test_freshness_warns_about_a_stale_bronze_table(built: Built) -> None:
    project, _ = built
    project.lake.commit(
        lambda c: c.execute(
            "UPDATE bronze.raw_products SET _fleuve_extracted_at = now() - INTERVAL 30 HOUR"
        )
    )
    where = ["--project", str(project.settings.project_dir)]
    done = CliRunner().invoke(cli, [*where, "transform", "freshness"])
    assert done.exit_code == 0, done.output  # a warning, not yet an error (after 48 hours)
    assert "raw_products" in done.output and "dbt source freshness: 4 pass, 1 warn" in done.output


def test_profile_keeps_secrets_out_and_waits_for_other_writers(tmp_path: Path) -> None:
    from fleuve.config import load_settings
    from fleuve.transform import write_profile

    (tmp_path / "fleuve.yml").write_text(
        "lake:\n  data_path: s3://bucket/lake/\n  s3:\n    endpoint: 127.0.0.1:9000\n"
        "    access_key_id: key\n    secret_access_key: ${S3_SECRET}\n",
        encoding="utf-8",
    )
    settings = load_settings(tmp_path, environ={"S3_SECRET": "very-secret-value"})
    write_profile(settings)
    text = (tmp_path / "transform" / "profiles.yml").read_text(encoding="utf-8")
    assert "very-secret-value" not in text
    output = yaml.safe_load(text)["fleuve"]["outputs"]["lake"]
    assert output["secrets"][0]["secret"] == "{{ env_var('FLEUVE_LAKE__S3__SECRET_ACCESS_KEY') }}"
    # A SQLite catalog: one dbt thread, WAL and a busy timeout so that writers queue.
    assert output["threads"] == 1
    assert output["attach"][0]["options"]["meta_journal_mode"] == "wal"
    assert output["attach"][0]["options"]["meta_busy_timeout"] == 5000
    assert output["settings"]["ducklake_max_retry_count"] == 10
    assert output["config_options"]["autoinstall_known_extensions"] is False


REVENUE_DASHBOARD = """
slug: revenue
title: Chiffre d'affaires
charts:
  - {name: daily, title: Par jour, type: line, dataset: gold.fct_daily_revenue, x: order_date,
     measures: [{agg: sum, column: revenue}]}
  - name: by-status
    title: Par statut
    type: bar
    sql: "SELECT status, count(*) AS orders FROM gold.fct_orders GROUP BY status"
    x: status
    measures: [{agg: sum, column: orders}]
"""


def test_cli_lineage_is_the_apis_graph_down_to_dashboards_and_charts(built: Built) -> None:
    project, _ = built
    folder = project.settings.project_dir
    (folder / "dashboards").mkdir(exist_ok=True)
    (folder / "dashboards" / "revenue.yml").write_text(REVENUE_DASHBOARD, encoding="utf-8")
    # A process of its own, as a user runs it: nothing else there has loaded the dashboards.
    command = [sys.executable, "-m", "fleuve", "-p", str(folder), "transform", "lineage"]
    shown = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    from_cli = json.loads(shown.stdout)
    edges = {(e["from"], e["to"]) for e in from_cli["edges"]}
    assert {
        ("gold.fct_daily_revenue", "chart:revenue/daily"),
        ("gold.fct_orders", "chart:revenue/by-status"),
        ("chart:revenue/daily", "dashboard:revenue"),
        ("chart:revenue/by-status", "dashboard:revenue"),
    } <= edges
    kinds = {n["id"]: n["kind"] for n in from_cli["nodes"]}
    assert kinds["chart:revenue/daily"] == "chart" and kinds["dashboard:revenue"] == "dashboard"

    token, _ = auth.issue_token(project.db, auth.get_user(project.db, "admin"))
    server = FleuveServer(project, host="127.0.0.1", http_port=0, flight_port=0)
    server.start()
    try:
        from_api = httpx.get(
            f"{server.addresses.http}/api/fleuve/v1/lineage",
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
    finally:
        server.stop()
    assert from_api.status_code == 200, from_api.text
    assert from_cli == from_api.json()

    text = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert text.returncode == 0, text.stderr
    assert "dashboards" in text.stdout
    assert "dashboard:revenue  ← chart:revenue/by-status, chart:revenue/daily" in text.stdout
