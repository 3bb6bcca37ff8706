"""Plain dbt and Fleuve-driven dbt share the lake with other processes on a SQLite catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleuve.project import Project
from fleuve.transform import run_transform

# Reads the lake the way `fleuve serve` does, until told to stop; prints what it saw.
READER = """
import json, sys, time
from pathlib import Path
from fleuve.project import Project
project = Project.open(sys.argv[1])
stop = Path(sys.argv[2])
reads, errors = 0, []
while not stop.exists():
    try:
        with project.lake.session() as con:
            con.execute("SELECT count(*), sum(amount) FROM bronze.raw_orders").fetchall()
            for schema, table in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() "
                "WHERE database_name = 'lake' AND schema_name = 'gold'"
            ).fetchall():
                con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchall()
        reads += 1
    except Exception as exc:
        errors.append(str(exc).splitlines()[0])
    time.sleep(0.02)
print(json.dumps({"reads": reads, "errors": errors}))
project.close()
"""

# Holds the catalog's SQLite write lock for a while, as a long commit of another process would.
LOCKER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("COMMIT")
"""


def _dbt(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    return subprocess.run(
        [str(dbt), *args, "--profiles-dir", "."],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_plain_dbt_runs_tests_and_documents_while_another_process_reads(
    shop: Project, tmp_path: Path
) -> None:
    folder = shop.settings.path(shop.settings.transform.project_dir)
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(shop.settings.project_dir), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # This process keeps the lake attached too, reading between dbt's commands.
        shop.lake.query("SELECT count(*) FROM bronze.raw_customers")
        run = _dbt(folder, "run")
        assert run.returncode == 0, run.stdout + run.stderr
        assert "Completed successfully" in run.stdout
        shop.lake.query("SELECT count(*) FROM gold.fct_orders")
        test = _dbt(folder, "test")
        assert test.returncode == 0, test.stdout + test.stderr
        docs = _dbt(folder, "docs", "generate")
        assert docs.returncode == 0, docs.stdout + docs.stderr
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    seen = json.loads(out)
    assert seen["errors"] == [] and seen["reads"] > 10, err
    catalog = json.loads((folder / "target" / "catalog.json").read_text(encoding="utf-8"))
    assert "model.fleuve_shop.fct_customer_lifetime_value" in catalog["nodes"]
    assert shop.lake.query("SELECT count(*) AS n FROM gold.orders")["n"][0].as_py() == 3000


@pytest.mark.slow
def test_fleuve_waits_out_another_process_holding_the_catalog(shop: Project) -> None:
    catalog = shop.settings.lake_catalog.removeprefix("sqlite:")
    shop.lake.close()  # only dbt and the locker touch the catalog from here on
    first = run_transform(shop.settings, ["run", "--select", "stg_products"])
    assert first.success, first.summary()
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, catalog, "3"], stdout=subprocess.PIPE, text=True
    )
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    started = time.monotonic()
    run = run_transform(shop.settings, ["run", "--select", "stg_products"], db=shop.db)
    locker.wait(timeout=30)
    assert run.success, run.summary()
    # The first attempt lost to the lock; a later one went through once it was released.
    assert run.attempts > 1
    assert time.monotonic() - started >= 2.5
