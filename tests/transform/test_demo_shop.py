"""The scaffolded dbt project on the demo shop, ingested the way `fleuve demo` ingests it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleuve.demo import demo_sources, prepare
from fleuve.pipeline import run_pipeline
from fleuve.project import Project, init_project
from fleuve.transform import lineage, run_history
from tests.conftest import free_port


@pytest.mark.slow
def test_the_pipeline_runs_the_layers_green_and_a_rerun_merges_nothing_new(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "demo"
    prepare(folder, 2000, free_port())
    init_project(folder, "fleuve-demo")
    project = Project.open(folder)
    try:
        with demo_sources(project.settings):
            first = run_pipeline(project)
            assert first.status == "succeeded", first.error
            steps = {s.name: s.summary for s in first.steps}
            assert steps["staging"] == "5 success"
            assert steps["test_staging"] == "22 pass"
            assert steps["intermediate"] == "1 success"
            assert steps["test_intermediate"] == "3 pass"
            assert steps["marts"] == "7 success"
            assert steps["test_marts"] == "11 pass"
            orders = project.lake.query("SELECT count(*) AS n FROM gold.fct_orders")["n"][0]
            assert orders.as_py() == 2000

            before = project.lake.current_snapshot()
            again = run_pipeline(project)
            assert again.status == "succeeded", again.error
        # Nothing changed in the shop's database, so no order was merged again.
        changed = project.lake.query(
            "SELECT count(*) AS n FROM ducklake_table_changes('lake', 'silver', 'stg_orders', "
            f"{before + 1}, {project.lake.current_snapshot()})"
        )["n"][0].as_py()
        assert changed == 0

        runs = run_history(project.db, limit=12)
        assert len(runs) == 12 and all(r.status == "succeeded" for r in runs)
        graph = lineage(project.settings, lake=project.lake)
        assert [n.id for n in graph.upstream("fct_customer_lifetime_value")] == [
            "silver.int_customer_orders",
            "silver.stg_customers",
            "silver.stg_orders",
            "bronze.raw_customers",
            "bronze.raw_orders",
        ]
    finally:
        project.close()
