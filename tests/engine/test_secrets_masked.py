"""Credentials written in SQL never reach the audit trail, the query history, the logs or an
error message: every spelling of a secret, through every sink."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from fleuve.engine import Engine
from fleuve.errors import FleuveError
from fleuve.masking import mask
from fleuve.metadata import AuditEvent
from fleuve.metadata.engine import EngineJob
from fleuve.project import Project, init_project
from fleuve.security import audit

SECRET = "Zq9-secret-value"
# Each spelling a credential takes in SQL; the engine runs some, refuses or fails the others,
# and every outcome must keep the secret out of every sink.
SPELLINGS = {
    "create secret": f"CREATE SECRET s3_creds (TYPE s3, KEY_ID 'AK{SECRET}', SECRET '{SECRET}')",
    "create secret with =": f"CREATE SECRET s3_eq (TYPE s3, KEY_ID='AK{SECRET}', SECRET='{SECRET}')",
    "attach dsn password": (
        f"ATTACH 'host=127.0.0.1 port=1 dbname=shop user=reader password={SECRET}' "
        "AS pg_shop (TYPE postgres)"
    ),
    "attach quoted password": (
        f"ATTACH 'host=127.0.0.1 port=1 user=reader password=''{SECRET}''' "
        "AS pg_quoted (TYPE postgres)"
    ),
    "connection url": (
        f"SELECT * FROM postgres_scan('postgresql://reader:{SECRET}@127.0.0.1:1/shop', "
        "'public', 'orders')"
    ),
    "create user password": f"CREATE USER bob PASSWORD '{SECRET}'",
    "alter user password": f"ALTER USER bob WITH PASSWORD '{SECRET}'",
    "identified by": f"CREATE USER bob IDENTIFIED BY '{SECRET}'",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """One project for every spelling: each test runs its statement on an engine of its own."""
    root = tmp_path_factory.mktemp("secrets") / "proj"
    init_project(root, "secrets")
    p = Project.open(root)
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def engine(project: Project) -> Iterator[Engine]:
    e = Engine(project)
    try:
        yield e
    finally:
        e.close()


def _run(engine: Engine, sql: str) -> str:
    """Run `sql` as the administrator from the REST interface; the error's text, if any."""
    with audit.acting_from("rest", "127.0.0.1"):
        try:
            engine.execute(sql, user="admin").read_all()
        except FleuveError as exc:
            return str(exc)
    return ""


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_a_secret_in_sql_reaches_no_sink(
    engine: Engine,
    project: Project,
    spelling: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sql = SPELLINGS[spelling]
    before = {j.id for j in engine.jobs("admin")}
    with caplog.at_level(logging.DEBUG):
        error = _run(engine, sql)
    (job_id,) = [j.id for j in engine.jobs("admin") if j.id not in before]
    engine.close()  # writes the query history and the audit trail

    with project.db.session() as s:
        events = [
            e
            for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "query"))
            if e.detail.get("job_id") == job_id
        ]
        jobs = list(s.scalars(select(EngineJob).where(EngineJob.id == job_id)))
    assert len(events) == 1 and len(jobs) == 1
    trail = json.dumps([(e.target, e.detail) for e in events])
    history = json.dumps([(j.sql, j.error) for j in jobs])
    shown = json.dumps([engine.job(j.id).as_json() | {"sql": engine.job(j.id).sql} for j in jobs])
    logs = "\n".join(r.getMessage() for r in caplog.records)
    log_file = (project.settings.state_dir / "logs" / "fleuve.log").read_text(encoding="utf-8")
    printed = "".join(capfd.readouterr())
    sinks = {
        "audit trail": trail,
        "query history": history,
        "job shown": shown,
        "error message": error,
        "log records": logs,
        "log file": log_file,
        "stdout and stderr": printed,
    }
    for sink, text in sinks.items():
        assert SECRET not in text, f"{spelling}: the secret reached the {sink}: {text[:400]}"
    # Masked, not dropped: the statement is still recognizable in the trail.
    assert events[0].detail["sql"] == mask(sql) and "***" in events[0].detail["sql"]


def test_the_translator_warning_is_masked(
    engine: Engine, capfd: pytest.CaptureFixture[str]
) -> None:
    """sqlglot warns with the statement's text when it falls back to a command."""
    _run(engine, SPELLINGS["create secret"])
    err = capfd.readouterr().err
    assert SECRET not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SECRET 'abc'", "SECRET '***'"),
        ("KEY_ID='x'", "KEY_ID='***'"),
        ("password=pw dbname=x", "password=*** dbname=x"),
        ("passwd=pw port=3306", "passwd=*** port=3306"),
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        ('{"password": "pw"}', '{"password": "***"}'),
        ("Authorization: Bearer abc", "Authorization: Bearer ***"),
        ("ALTER USER bob PASSWORD 'x'", "ALTER USER bob PASSWORD '***'"),
        ("IDENTIFIED BY 'x'", "IDENTIFIED BY '***'"),
        ("BEARER_TOKEN 'tok'", "BEARER_TOKEN '***'"),
        ("SECRET_ACCESS_KEY 'k'", "SECRET_ACCESS_KEY '***'"),
        # Plain text and plain queries stay as they are.
        ("the password is shorter than 8 characters", None),
        ("SELECT token, secret_level FROM gold.accounts WHERE password_changed", None),
        ("s3://bucket/prefix/file.parquet", None),
    ],
)
def test_mask(text: str, expected: str | None) -> None:
    assert mask(text) == (text if expected is None else expected)
