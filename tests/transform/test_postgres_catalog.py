"""The production layout: a PostgreSQL lake catalog, where dbt runs models on several threads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fleuve.project import Project, init_project
from fleuve.transform import run_transform
from tests.conftest import PG_ADMIN
from tests.transform.conftest import append_orders, land_shop


@pytest.mark.slow
def test_the_project_builds_and_merges_on_a_postgresql_catalog(
    tmp_path: Path, pg_schema: str
) -> None:
    overrides = {"lake.catalog": PG_ADMIN, "lake.catalog_schema": pg_schema}
    init_project(tmp_path / "shop", "shop", overrides)
    project = Project.open(tmp_path / "shop", overrides)
    try:
        land_shop(project.lake)
        profile = yaml.safe_load(
            (project.settings.path("transform") / "profiles.yml").read_text(encoding="utf-8")
        )["fleuve"]["outputs"]["lake"]
        assert profile["threads"] == 4
        assert profile["attach"][0]["options"]["metadata_schema"] == pg_schema

        built = run_transform(project.settings, ["build"], db=project.db)
        assert built.success, built.summary()
        assert built.counts() == {"success": 13, "pass": 36}

        append_orders(project.lake, first=3001, count=50)
        again = run_transform(project.settings, ["build"], db=project.db)
        assert again.success, again.summary()
        orders = project.lake.query("SELECT count(*) AS n FROM gold.fct_orders")["n"][0]
        assert orders.as_py() == 3050
    finally:
        project.close()
