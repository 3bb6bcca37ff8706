"""Reflections: both DDL spellings, REST objects, freshness, staleness, refresh policies,
incremental refresh from the change feed, and the fallback to a full rebuild."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from fleuve.engine import Engine, EngineError, ObjectNotFound
from fleuve.engine.reflections.model import REFLECTION_SCHEMA
from fleuve.metadata import Job
from fleuve.metadata.engine import EngineReflection
from fleuve.schedule.clock import ManualClock
from fleuve.schedule.scheduler import Scheduler, describe

DAILY = (
    "CREATE REFLECTION daily ON gold.orders USING DIMENSIONS "
    "(status, date_trunc('day', ordered_at)) MEASURES (SUM(amount), COUNT(*), AVG(amount), "
    "MIN(amount), MAX(amount), APPROX_COUNT_DISTINCT(customer_id))"
)
QUERY = "SELECT status, SUM(amount) AS s, COUNT(*) AS n FROM gold.orders GROUP BY status"


def run(engine: Engine, sql: str, user: str = "admin") -> tuple[pa.Table, list[str]]:
    """Rows and the reflections chosen for them."""
    result = engine.execute(sql, user=user)
    rows = result.read_all()
    job = engine.job(result.job_id)
    return rows, [r["reflectionName"] for r in job.reflections if r["relationship"] == "CHOSEN"]


def reasons(engine: Engine, sql: str) -> dict[str, str]:
    result = engine.execute(sql, user="admin")
    result.read_all()
    return {r["reflectionName"]: r.get("reason", "") for r in engine.job(result.job_id).reflections}


def contents(engine: Engine, name: str) -> list[tuple]:
    """The rows of a reflection's table, sorted, for comparing two builds."""
    r = engine.reflections.get(name)
    table = engine.reflections.materialization(r)
    with engine.project.lake.session() as con:
        rows = con.execute(f"SELECT * FROM {table}").fetchall()
    return sorted(rows, key=repr)


def test_dremio_spelling_status_and_rest_shape(engine: Engine) -> None:
    run(
        engine,
        "ALTER TABLE gold.orders CREATE AGGREGATE REFLECTION by_country USING DIMENSIONS "
        "(country, ordered_at BY DAY) MEASURES (amount (SUM, COUNT), quantity (MIN, MAX)) "
        "PARTITION BY (country) LOCALSORT BY (country)",
    )
    run(
        engine,
        "ALTER TABLE gold.orders CREATE RAW REFLECTION ids USING DISPLAY (order_id, status) LOCALSORT BY (order_id)",
    )
    body = engine.reflection("by_country", user="admin")
    assert body["type"] == "AGGREGATION" and body["enabled"] is True
    assert body["dimensionFields"] == [
        {"name": "country", "granularity": "NORMAL"},
        {"name": "ordered_at", "granularity": "DATE"},
    ]
    assert body["measureFields"] == [
        {"name": "amount", "measureTypeList": ["SUM", "COUNT"]},
        {"name": "quantity", "measureTypeList": ["MIN", "MAX"]},
    ]
    assert body["partitionFields"] == [{"name": "country"}]
    assert body["status"]["availability"] == "AVAILABLE"
    assert body["status"]["combinedStatus"] == "CAN_ACCELERATE"
    assert body["metrics"]["rows"] > 0 and body["metrics"]["sizeBytes"] > 0
    assert body["datasetId"] == engine.dataset("gold.orders", user="admin").id
    raw = engine.reflection("ids", user="admin")
    assert raw["displayFields"] == [{"name": "order_id"}, {"name": "status"}]
    run(engine, "ALTER TABLE gold.orders DROP REFLECTION ids")
    with pytest.raises(ObjectNotFound):
        engine.reflection("ids", user="admin")


def test_seed_spelling_enable_disable_and_policy(engine: Engine) -> None:
    run(engine, DAILY)
    assert run(engine, QUERY)[1] == ["daily"]
    run(engine, "ALTER REFLECTION daily SET ENABLED = FALSE")
    assert run(engine, QUERY)[1] == []
    run(engine, "ALTER REFLECTION daily SET ENABLED = TRUE")
    assert run(engine, QUERY)[1] == ["daily"]
    run(engine, "ALTER REFLECTION daily SET REFRESH EVERY 1 HOUR")
    body = engine.reflection("daily", user="admin")
    assert body["refreshPolicy"] == {"type": "EVERY", "everySeconds": 3600}
    assert body["status"]["expiresAt"] is not None
    status = run(
        engine, "SELECT reflection_name, status, refresh_policy, chosen_count FROM sys.reflections"
    )[0]
    assert status.to_pylist()[0]["reflection_name"] == "daily"
    assert status.to_pylist()[0]["chosen_count"] >= 2
    run(engine, "DROP REFLECTION daily")
    assert run(engine, QUERY)[1] == []


def test_rest_crud(engine: Engine) -> None:
    dataset = engine.dataset("gold.orders", user="admin")
    created = engine.create_reflection(
        {
            "type": "AGGREGATION",
            "name": "rest_agg",
            "datasetId": dataset.id,
            "enabled": True,
            "dimensionFields": [{"name": "status"}],
            "measureFields": [{"name": "amount", "measureTypeList": ["SUM", "COUNT"]}],
        },
        user="admin",
    )
    assert created["status"]["availability"] == "AVAILABLE"
    assert run(engine, QUERY)[1] == ["rest_agg"]
    assert [r["id"] for r in engine.list_reflections(user="admin", dataset_id=dataset.id)] == [
        created["id"]
    ]
    # Changing the dimensions rebuilds it; the query it no longer covers goes to the source.
    updated = engine.update_reflection(
        created["id"], {"dimensionFields": [{"name": "country"}]}, user="admin"
    )
    assert updated["dimensionFields"] == [{"name": "country", "granularity": "NORMAL"}]
    assert run(engine, QUERY)[1] == []
    assert run(engine, "SELECT country, SUM(amount) FROM gold.orders GROUP BY country")[1] == [
        "rest_agg"
    ]
    engine.delete_reflection(created["id"], user="admin")
    assert engine.list_reflections(user="admin") == []
    with pytest.raises(EngineError):
        engine.create_reflection(
            {"type": "AGGREGATION", "datasetId": dataset.id, "dimensionFields": [{"name": "nope"}]},
            user="admin",
        )


def test_stale_reflection_is_not_used_until_refreshed(engine: Engine) -> None:
    run(engine, DAILY)
    before, _ = run(engine, QUERY)
    run(
        engine,
        "INSERT INTO gold.orders (order_id, status, amount, ordered_at) VALUES (100000, 'paid', 1000.00, TIMESTAMP '2024-06-01 10:00')",
    )
    after, chosen = run(engine, QUERY)
    assert chosen == []
    assert "stale" in reasons(engine, QUERY)["daily"]
    assert after != before
    assert engine.reflection("daily", user="admin")["status"]["combinedStatus"] == "EXPIRED"
    assert [r.name for r in engine.reflections.due()] == ["daily"]
    result = engine.refresh_reflection("daily", user="admin")
    assert result.mode == "INCREMENTAL"
    again, chosen = run(engine, QUERY)
    assert chosen == ["daily"]
    assert sorted(again.to_pylist(), key=repr) == sorted(after.to_pylist(), key=repr)
    assert engine.reflections.due() == []


def test_staleness_window_allows_a_stale_reflection(engine: Engine) -> None:
    run(engine, DAILY)
    run(engine, "INSERT INTO gold.orders (order_id, status, amount) VALUES (100001, 'new', 5.00)")
    assert run(engine, QUERY)[1] == []
    run(engine, "ALTER TABLE gold.orders SET STALENESS 1 HOUR")
    assert run(engine, QUERY)[1] == ["daily"]
    assert engine.dataset("gold.orders", user="admin").staleness_seconds == 3600
    run(engine, "ALTER TABLE gold.orders SET STALENESS NONE")
    assert run(engine, QUERY)[1] == []


def test_incremental_refresh_equals_a_full_rebuild_after_appends(engine: Engine) -> None:
    run(engine, DAILY)
    run(engine, "CREATE REFLECTION raw_ids ON gold.orders USING DISPLAY (order_id, status, amount)")
    run(engine, "CREATE SPACE Shop")
    run(
        engine,
        "CREATE VIEW Shop.paid AS SELECT order_id, amount, country, ordered_at FROM gold.orders WHERE status = 'paid'",
    )
    run(
        engine,
        "CREATE REFLECTION paid_by_country ON Shop.paid USING DIMENSIONS (country) MEASURES (SUM(amount), COUNT(*))",
    )
    for batch in range(3):
        run(
            engine,
            "INSERT INTO gold.orders SELECT 200000 + i, i % 40, ['paid', 'new'][i % 2 + 1], "
            "['FR', 'JP', NULL][i % 3 + 1], TIMESTAMP '2025-01-01' + to_hours(i + 100 * "
            f"{batch}), (i % 97)::DECIMAL(12, 2), i % 5, i / 3.0 FROM range({batch * 50}, {batch * 50 + 50}) t(i)",
        )
    for name in ("daily", "raw_ids", "paid_by_country"):
        result = engine.refresh_reflection(name, user="admin")
        assert result.mode == "INCREMENTAL", (name, result)
        incremental = contents(engine, name)
        full = engine.refresh_reflection(name, user="admin", mode="FULL")
        assert full.mode == "FULL"
        assert contents(engine, name) == incremental, name
    assert run(engine, QUERY)[1] == ["daily"]
    assert run(engine, "SELECT country, SUM(amount) FROM Shop.paid GROUP BY country")[1] == [
        "paid_by_country"
    ]


def test_updates_and_deletes_fall_back_to_a_full_rebuild(engine: Engine) -> None:
    run(engine, DAILY)
    run(engine, "UPDATE gold.orders SET amount = amount + 1 WHERE order_id < 10")
    result = engine.refresh_reflection("daily", user="admin")
    assert result.mode == "FULL" and "updated or deleted" in result.reason
    run(engine, "DELETE FROM gold.orders WHERE order_id < 5")
    assert engine.refresh_reflection("daily", user="admin").mode == "FULL"
    plain = Engine(engine.project, accelerate=False)
    try:
        assert sorted(run(engine, QUERY)[0].to_pylist(), key=repr) == sorted(
            run(plain, QUERY)[0].to_pylist(), key=repr
        )
    finally:
        plain.close()


def test_joins_refresh_fully(engine: Engine) -> None:
    run(engine, "CREATE SPACE Shop")
    run(
        engine,
        "CREATE VIEW Shop.lines AS SELECT o.amount, c.segment FROM gold.orders o JOIN gold.customers c USING (customer_id)",
    )
    run(
        engine,
        "CREATE REFLECTION seg ON Shop.lines USING DIMENSIONS (segment) MEASURES (SUM(amount))",
    )
    run(engine, "INSERT INTO gold.orders (order_id, customer_id, amount) VALUES (300000, 1, 10.00)")
    result = engine.refresh_reflection("seg", user="admin")
    assert result.mode == "FULL" and "exactly one lake table" in result.reason


def test_full_refresh_builds_aside_and_swaps(engine: Engine) -> None:
    run(engine, DAILY)
    names = [engine.reflections.get("daily").table_name]
    for i in range(2):
        run(engine, f"INSERT INTO gold.orders (order_id, amount) VALUES ({400000 + i}, 1.00)")
        engine.refresh_reflection("daily", user="admin", mode="FULL")
        names.append(engine.reflections.get("daily").table_name)
    assert len(set(names)) == 3

    def tables() -> set[str]:
        with engine.project.lake.session() as con:
            return {
                r[0]
                for r in con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = 'lake' "
                    "AND schema_name = ?",
                    [REFLECTION_SCHEMA],
                ).fetchall()
            }

    # The table swapped out stays one refresh longer, for queries planned just before the swap.
    assert tables() == {names[1], names[2]}
    # The hidden schema is not a catalog container and cannot be named.
    assert REFLECTION_SCHEMA not in run(engine, "SHOW SCHEMAS")[0].column(0).to_pylist()
    run(engine, "DROP REFLECTION daily")
    assert tables() == set()


def test_policies_decide_what_is_due(engine: Engine) -> None:
    run(engine, DAILY)
    run(
        engine,
        "CREATE REFLECTION manual ON gold.orders USING DIMENSIONS (country) MEASURES (COUNT(*))",
    )
    run(engine, "ALTER REFLECTION manual SET REFRESH MANUAL")
    run(
        engine,
        "CREATE REFLECTION hourly ON gold.orders USING DIMENSIONS (customer_id) MEASURES (COUNT(*))",
    )
    run(engine, "ALTER REFLECTION hourly SET REFRESH EVERY 1 HOUR")
    assert engine.reflections.due() == []
    run(engine, "INSERT INTO gold.orders (order_id) VALUES (500000)")
    assert [r.name for r in engine.reflections.due()] == ["daily"]
    # An hour later the periodic one is due as well.
    with engine.project.db.session() as s:
        row = s.query(EngineReflection).filter_by(name="hourly").one()
        row.refreshed_at = row.refreshed_at - timedelta(hours=2)
        engine.catalog.bump(s)
    assert sorted(r.name for r in engine.reflections.due()) == ["daily", "hourly"]
    results = {r.reflection: r.mode for r in engine.refresh_due()}
    assert results == {"daily": "INCREMENTAL", "hourly": "INCREMENTAL"}
    assert engine.reflections.due() == []


def test_the_scheduler_refreshes_a_reflection_whose_refresh_every_is_due(engine: Engine) -> None:
    run(engine, DAILY)
    run(engine, "ALTER REFLECTION daily SET REFRESH EVERY 1 HOUR")
    run(engine, "INSERT INTO gold.orders (order_id, status, amount) VALUES (600000, 'paid', 3.00)")
    assert engine.reflections.due() == []  # refreshed less than an hour ago
    with engine.project.db.session() as s:
        row = s.query(EngineReflection).filter_by(name="daily").one()
        row.refreshed_at = row.refreshed_at - timedelta(hours=2)
        engine.catalog.bump(s)
    assert [r.name for r in engine.reflections.due()] == ["daily"]
    clock = ManualClock(datetime(2026, 3, 2, 8, 0, 30, tzinfo=UTC))
    scheduler = Scheduler(engine.project, clock=clock, engine=engine)
    scheduler.tick()  # the reflections' schedule looks every minute: not yet
    clock.advance(seconds=30)
    scheduler.tick()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and scheduler.running:
        time.sleep(0.1)
    [entry] = [e for e in describe(engine.project, clock) if e["name"] == "reflections"]
    assert (entry["lastRun"]["status"], entry["lastRun"]["trigger"]) == ("succeeded", "schedule")
    assert engine.reflections.due() == []
    assert run(engine, QUERY)[1] == ["daily"]
    with engine.project.db.session() as s:
        job = s.get(Job, entry["lastRun"]["jobId"])
        assert [r["reflection"] for r in job.detail["refreshed"]] == ["daily"]


def test_definition_change_waits_for_a_rebuild(engine: Engine) -> None:
    run(engine, DAILY)
    r = engine.reflections.get("daily")
    engine.reflections.alter(r, spec=r.spec)  # same columns, new version: rebuilt before use
    assert run(engine, QUERY)[1] == []
    assert "definition changed" in reasons(engine, QUERY)["daily"]
    engine.refresh_reflection("daily", user="admin")
    assert run(engine, QUERY)[1] == ["daily"]


def test_bad_definitions_are_refused(engine: Engine) -> None:
    with pytest.raises(EngineError, match="no column"):
        run(engine, "CREATE REFLECTION bad ON gold.orders USING DISPLAY (nope)")
    with pytest.raises(EngineError, match="APPROX_COUNT_DISTINCT"):
        run(
            engine,
            "CREATE REFLECTION bad ON gold.orders USING DIMENSIONS (status) MEASURES (COUNT(DISTINCT customer_id))",
        )
    with pytest.raises(EngineError, match="dimension"):
        run(
            engine,
            "CREATE REFLECTION bad ON gold.orders USING DIMENSIONS (status) MEASURES (SUM(amount)) PARTITION BY (country)",
        )
    with pytest.raises(ObjectNotFound):
        run(engine, "CREATE REFLECTION bad ON gold.nothing USING DISPLAY (x)")
    run(engine, DAILY)
    with pytest.raises(EngineError, match="already exists"):
        run(engine, DAILY)


def test_pipeline_step_refreshes_due_reflections(engine: Engine) -> None:
    from fleuve.pipeline import _reflections

    assert _reflections(engine.project) == "0 reflections, none due"
    run(engine, DAILY)
    assert _reflections(engine.project) == "1 reflections, none due"
    run(engine, "INSERT INTO gold.orders (order_id, status, amount) VALUES (700000, 'paid', 9.00)")
    assert _reflections(engine.project).startswith("refreshed daily (incremental")
    # Another engine refreshed it: this one sees the change within its recheck interval.
    deadline = time.monotonic() + 5
    while run(engine, QUERY)[1] != ["daily"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run(engine, QUERY)[1] == ["daily"]


def test_cli_runs_sql_and_refreshes(engine: Engine) -> None:
    from click.testing import CliRunner

    from fleuve.cli import cli

    project_dir = str(engine.project.settings.project_dir)
    runner = CliRunner()
    out = runner.invoke(cli, ["-p", project_dir, "sql", DAILY])
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["-p", project_dir, "sql", QUERY, "--json"])
    assert out.exit_code == 0 and '"status"' in out.output
    out = runner.invoke(cli, ["-p", project_dir, "reflections", "list"])
    assert out.exit_code == 0 and "daily" in out.output
    out = runner.invoke(cli, ["-p", project_dir, "reflections", "refresh", "daily", "--full"])
    assert out.exit_code == 0 and "daily: full" in out.output
    out = runner.invoke(cli, ["-p", project_dir, "sql", "SELECT * FROM gold.nope"])
    assert out.exit_code == 1 and "not found" in out.output


def test_explain_shows_considered_matched_and_chosen(engine: Engine) -> None:
    run(engine, DAILY)
    run(
        engine,
        "CREATE REFLECTION by_status ON gold.orders USING DIMENSIONS (status) MEASURES (SUM(amount), COUNT(*))",
    )
    run(
        engine,
        "CREATE REFLECTION by_country ON gold.orders USING DIMENSIONS (country) MEASURES (SUM(amount))",
    )
    lines = [
        r["text"]
        for r in engine.explain(QUERY, user="admin").to_pylist()
        if r["section"] == "reflection"
    ]
    assert any(t.startswith("CHOSEN by_status") for t in lines)
    assert any(t.startswith("MATCHED daily") for t in lines)
    assert any(t.startswith("CONSIDERED by_country") and "not a dimension" in t for t in lines)
    plan = next(
        r["text"] for r in engine.explain(QUERY, user="admin").to_pylist() if r["section"] == "sql"
    )
    assert "fleuve_reflections" in plan


def test_remembered_plans_follow_the_catalog_and_the_window(engine: Engine) -> None:
    run(engine, DAILY)
    first = engine.execute(QUERY, user="admin")
    first.read_all()
    again = engine.execute(QUERY, user="admin")
    again.read_all()
    assert engine.job(again.job_id).reflections == engine.job(first.job_id).reflections
    assert engine.job(again.job_id).planning_ms < engine.job(first.job_id).planning_ms
    # A staleness window lets a plan read a stale reflection only until the window closes.
    run(engine, "ALTER TABLE gold.orders SET STALENESS 3 SECONDS")
    engine.refresh_reflection("daily", user="admin", mode="FULL")
    run(engine, "INSERT INTO gold.orders (order_id, status, amount) VALUES (800000, 'paid', 2.00)")
    assert run(engine, QUERY)[1] == ["daily"]
    time.sleep(3.2)
    assert run(engine, QUERY)[1] == []


def test_concurrent_first_uses_of_a_reflection_all_succeed(engine: Engine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    run(engine, DAILY)
    with ThreadPoolExecutor(8) as pool:  # the first uses: each needs the in-memory copy
        results = list(pool.map(lambda _: run(engine, QUERY), range(8)))
    plain = Engine(engine.project, accelerate=False)
    try:
        expected = plain.execute(QUERY, user="admin").read_all()
    finally:
        plain.close()
    for rows, chosen in results:
        assert chosen == ["daily"]
        assert sorted(rows.to_pylist(), key=repr) == sorted(expected.to_pylist(), key=repr)


def test_answers_read_from_reflection_copies_are_kept_unless_volatile(engine: Engine) -> None:
    run(engine, DAILY)
    first, chosen = run(engine, QUERY)
    assert chosen == ["daily"]
    assert len(engine._answers) == 1  # the copies never change: the same SQL, the same answer
    again, chosen = run(engine, QUERY)
    assert chosen == ["daily"] and again.equals(first)
    assert len(engine._answers) == 1
    noisy = "SELECT status, SUM(amount) AS s, now() AS t FROM gold.orders GROUP BY status"
    a, chosen = run(engine, noisy)
    b, _ = run(engine, noisy)
    assert chosen == ["daily"] and not a.equals(b)
    assert len(engine._answers) == 1
    run(engine, "INSERT INTO gold.orders (order_id, status, amount) VALUES (700000, 'paid', 7.00)")
    engine.refresh_reflection("daily", user="admin")
    fresh, chosen = run(engine, QUERY)
    assert chosen == ["daily"] and not fresh.equals(first)


def test_a_catalog_read_during_a_change_does_not_hide_it_afterwards(engine: Engine) -> None:
    # Another thread (the scheduler, a query) reads the catalog after a change is made but
    # before it commits: the change must still be seen once committed (CREATE REFLECTION
    # answered "not found" for its own new reflection).
    catalog = engine.catalog
    before = catalog.meta().version
    with catalog.db.session() as s:
        catalog.bump(s)
        assert catalog.meta().version == before  # not committed yet
    assert catalog.meta().version == before + 1
