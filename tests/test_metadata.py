"""The metadata database: migrations that keep data, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text

from fleuve.config import load_settings
from fleuve.engine.query_jobs import JobStore, QueryJob
from fleuve.errors import MetadataError
from fleuve.metadata import Database, Job, PipelineRun
from fleuve.metadata.database import HEADS
from fleuve.metadata.engine import EngineJob


def test_upgrade_from_the_first_revision_keeps_data(tmp_path: Path) -> None:
    db = Database(load_settings(tmp_path, environ={}))
    cfg = db._alembic()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001_foundation")
    with db.session() as s:
        s.add(Job(config_type="sync", config_id="shop_db", status="succeeded"))
        s.add(PipelineRun(status="succeeded"))
    db.upgrade()
    current, heads = db.revisions()
    assert current == heads
    with db.session() as s:
        assert [j.config_id for j in s.scalars(select(Job))] == ["shop_db"]
        assert s.scalar(select(PipelineRun.status)) == "succeeded"
    db.check()


def test_the_recorded_heads_are_the_migrations_heads(tmp_path: Path) -> None:
    db = Database(load_settings(tmp_path, environ={}))
    assert db.revisions()[1] == HEADS


def test_an_empty_database_asks_for_upgrade(tmp_path: Path) -> None:
    db = Database(load_settings(tmp_path, environ={}))
    with pytest.raises(MetadataError) as err:
        db.check()
    assert "is empty" in err.value.message and "fleuve db upgrade" in err.value.fix


def test_postgresql_metadata(tmp_path: Path, pg_schema: str) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    db = Database(load_settings(tmp_path, overrides={"metadata.url": url}, environ={}))
    db.upgrade()
    db.check()
    with db.session() as s:
        s.add(Job(config_type="sync", config_id="pg", detail={"k": "é"}))
    with db.engine.connect() as conn:
        assert conn.execute(text(f'SELECT config_id FROM "{pg_schema}".jobs')).scalar() == "pg"
    # The engine's job history is written by an upsert in each dialect: insert, then update.
    store = JobStore(db, tmp_path / "results")
    job = QueryJob(id="j-1", user="admin", sql="SELECT 1", query_type="REST")
    store.add(job)
    store.flush()
    job.state, job.row_count, job.reflections = "COMPLETED", 1, [{"relationship": "CHOSEN"}]
    store.save(job)
    store.close()
    with db.session() as s:
        row = s.get(EngineJob, "j-1")
        assert (row.state, row.row_count, row.reflections) == (
            "COMPLETED",
            1,
            [{"relationship": "CHOSEN"}],
        )
    db.dispose()


def test_unreachable_metadata_database(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres:topsecret@127.0.0.1:1/nope"
    db = Database(load_settings(tmp_path, overrides={"metadata.url": url}, environ={}))
    with pytest.raises(MetadataError) as err:
        db.check()
    assert "cannot open the metadata database" in err.value.message
    assert "topsecret" not in str(err.value)


def test_conflict_retries_are_bounded_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    import duckdb

    from fleuve.lake import _retry_conflicts

    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise duckdb.TransactionException(
                "Failed to commit DuckLake transaction: database is locked"
            )
        return "done"

    with caplog.at_level(logging.WARNING, logger="fleuve.lake"):
        assert _retry_conflicts(flaky, what="test", retries=5) == "done"
    assert len(calls) == 3
    assert [r.message for r in caplog.records].count("lake commit conflict, retrying") == 2

    def always() -> None:
        raise duckdb.TransactionException("database is locked")

    with pytest.raises(duckdb.TransactionException):
        _retry_conflicts(always, what="test", retries=2)

    def other() -> None:
        calls.append(1)
        raise duckdb.BinderException("no such column")

    calls.clear()
    with pytest.raises(duckdb.BinderException):
        _retry_conflicts(other, what="test", retries=5)
    assert len(calls) == 1  # not a conflict: no retry
