"""Jobs: states, timings, result pages, cancellation, retention and history."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from fleuve.engine import Engine, EngineError, ObjectNotFound, QueryCanceled
from fleuve.engine.query_jobs import FINAL_STATES
from fleuve.project import Project


def wait(engine: Engine, job_id: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while (state := engine.job(job_id).state) not in FINAL_STATES:
        assert time.monotonic() < deadline, f"job still {state}"
        time.sleep(0.02)
    return state


def test_submitted_job_completes_with_pages(engine: Engine) -> None:
    job_id = engine.submit(
        "SELECT order_id, amount FROM gold.orders ORDER BY order_id", user="admin"
    )
    assert wait(engine, job_id) == "COMPLETED"
    job = engine.job(job_id).as_json()
    assert (
        job["jobState"] == "COMPLETED" and job["rowCount"] == 3000 and job["errorMessage"] is None
    )
    assert job["queryType"] == "REST" and job["startedAt"] and job["endedAt"]
    assert job["planningMs"] >= 0 and job["executionMs"] >= 0 and job["bytes"] > 0
    assert job["datasets"] == ["gold.orders"]
    page = engine.results(job_id, offset=100, limit=5)
    assert page.column("order_id").to_pylist() == [100, 101, 102, 103, 104]


def test_failed_job_says_why(engine: Engine) -> None:
    job_id = engine.submit("SELECT no_such_column FROM gold.orders", user="admin")
    assert wait(engine, job_id) == "FAILED"
    job = engine.job(job_id).as_json()
    assert "no_such_column" in job["errorMessage"] and job["rowCount"] == 0
    with pytest.raises(EngineError, match="not COMPLETED"):
        engine.results(job_id)
    missing = engine.submit("SELECT * FROM gold.nothing", user="admin")
    assert wait(engine, missing) == "FAILED"
    assert "not found" in engine.job(missing).error


def test_cancel_a_running_job(engine: Engine) -> None:
    job_id = engine.submit("SELECT count(*) FROM range(1000000000000) a", user="admin")
    deadline = time.monotonic() + 10
    while engine.job(job_id).state != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.01)
    engine.cancel(job_id)
    assert wait(engine, job_id) == "CANCELED"


def test_cancel_a_streaming_query(engine: Engine) -> None:
    result = engine.execute(
        "SELECT i FROM range(1000000000000) t(i)", user="admin", batch_rows=1000
    )
    timer = threading.Timer(0.3, engine.cancel, args=(result.job_id,))
    timer.start()
    with pytest.raises(QueryCanceled):
        result.read_all()
    assert engine.job(result.job_id).state == "CANCELED"


def test_stopping_a_stream_early_cancels_it(engine: Engine) -> None:
    result = engine.execute("SELECT * FROM range(10000000) t(i)", user="admin", batch_rows=1000)
    first = next(result.batches)
    assert first.num_rows == 1000
    result.batches.close()
    job = engine.job(result.job_id)
    assert job.state == "CANCELED" and job.query_type == "FLIGHT"
    # The cursor it held is gone: the next query runs.
    assert engine.execute("SELECT 1 AS one", user="admin").read_all().to_pylist() == [{"one": 1}]


def test_results_expire(project: Project) -> None:
    from tests.engine.conftest import build_shop

    build_shop(project)
    engine = Engine(project, result_retention=timedelta(seconds=0))
    try:
        job_id = engine.submit("SELECT 42 AS answer", user="admin")
        assert wait(engine, job_id) == "COMPLETED"
        engine.jobs_store.flush()
        assert engine.jobs_store.purge() == 1
        with pytest.raises(ObjectNotFound, match="expired"):
            engine.results(job_id)
    finally:
        engine.close()


def test_history_is_queryable_and_private(engine: Engine, users: dict) -> None:
    engine.execute("GRANT SELECT ON gold.orders TO ROLE analyst", user="admin").read_all()
    engine.execute("SELECT COUNT(*) FROM gold.orders", user="ana").read_all()
    engine.execute("SELECT 1", user="dan").read_all()
    mine = (
        engine.execute("SELECT user_name, query, status FROM sys.jobs", user="ana")
        .read_all()
        .to_pylist()
    )
    assert {r["user_name"] for r in mine} == {"ana"}
    assert any(
        r["query"] == "SELECT COUNT(*) FROM gold.orders" and r["status"] == "COMPLETED"
        for r in mine
    )
    everyone = engine.execute("SELECT DISTINCT user_name FROM sys.jobs", user="admin").read_all()
    assert set(everyone.column(0).to_pylist()) >= {"ana", "dan", "admin"}
    assert [j.user for j in engine.jobs("ana")] == ["ana"] * len(engine.jobs("ana"))


def test_history_outlives_the_engine(engine: Engine, project: Project) -> None:
    job_id = engine.submit("SELECT 7 AS seven", user="admin")
    assert wait(engine, job_id) == "COMPLETED"
    engine.jobs_store.flush()
    other = Engine(project)
    try:
        job = other.job(job_id)
        assert job.state == "COMPLETED" and job.row_count == 1
        assert other.results(job_id).to_pylist() == [{"seven": 7}]
        with pytest.raises(ObjectNotFound):
            other.job("00000000-0000-0000-0000-000000000000")
    finally:
        other.close()


def test_unknown_users_cannot_query(engine: Engine) -> None:
    with pytest.raises(ObjectNotFound, match="unknown or disabled user"):
        engine.execute("SELECT 1", user="ghost").read_all()
