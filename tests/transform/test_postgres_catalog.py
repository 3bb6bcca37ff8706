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


def test_dbt_gets_the_catalog_password_from_the_environment_only_during_its_run(
    tmp_path: Path,
) -> None:
    # The shared test server trusts every login, so the password itself cannot be refused here;
    # what is checked is that the profile never holds it and libpq's variable carries it.
    import os

    from fleuve.config import load_settings
    from fleuve.transform.dbt import _env
    from fleuve.transform.dbt_project import write_profile

    catalog = "postgresql://lake:s%40cret@127.0.0.1:5432/test"
    settings = load_settings(tmp_path, {"lake.catalog": catalog})
    (tmp_path / "transform").mkdir()
    write_profile(settings)
    profile = (settings.path("transform") / "profiles.yml").read_text(encoding="utf-8")
    assert "s@cret" not in profile and "s%40cret" not in profile
    before = os.environ.get("PGPASSWORD")
    with _env(settings):
        assert os.environ["PGPASSWORD"] == "s@cret"
    assert os.environ.get("PGPASSWORD") == before
