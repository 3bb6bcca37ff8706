"""The daily batch pipeline.

ingest → load bronze → dbt staging → tests → intermediate → tests → marts → tests →
reflection refresh → cache warm-up. Each step is timed and recorded; the first failure
stops the run and names the step. Every step is idempotent, so a re-run gives the same lake.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from fleuve.errors import FleuveError, PipelineError
from fleuve.lake import CATALOG, quote_ident
from fleuve.metadata import PipelineRun, PipelineStep
from fleuve.metadata.models import utcnow
from fleuve.project import Project


@dataclass(frozen=True)
class Step:
    """One stage of the pipeline: a name, a title and what it does."""

    name: str
    title: str
    run: Callable[[Project], str]


@dataclass
class StepOutcome:
    """How a step went."""

    name: str
    title: str
    status: str = "pending"
    seconds: float = 0.0
    summary: str = ""


@dataclass
class RunReport:
    """The outcome of a pipeline run."""

    run_id: int
    status: str
    seconds: float
    steps: list[StepOutcome] = field(default_factory=list)
    error: PipelineError | None = None


def _ingest(project: Project) -> str:
    from fleuve.ingest import sync_connection

    if not project.settings.connections:
        return "no connections configured"
    total, failed = 0, []
    for conn in project.settings.connections:
        result = sync_connection(project.settings, project.lake, project.db, conn.name)
        total += result.records
        if result.status != "succeeded":
            failed.append(f"{conn.name} (job {result.job_id}): {result.error}")
    if failed:
        raise FleuveError(
            "sync failed for " + "; ".join(failed),
            "see `fleuve ingest jobs` for details, fix the source, then run again",
        )
    return f"{len(project.settings.connections)} connections, {total:,} records"


def _load_bronze(project: Project) -> str:
    """Check that every stream landed in bronze and move small inlined inserts into Parquet."""
    from fleuve.ingest.load import destination

    lake = project.lake
    expected = [destination(s) for c in project.settings.connections for s in c.streams]
    present = {t for _, t in lake.tables("bronze")}
    missing = [name for name in expected if name not in present]
    if missing:
        raise FleuveError(
            f"bronze tables missing after ingestion: {', '.join(missing)}",
            "check the connections' stream names and the sync logs",
        )
    rows = sum(
        lake.query(f"SELECT count(*) AS n FROM bronze.{quote_ident(t)}")["n"][0].as_py()
        for t in expected
    )
    lake.commit(
        lambda c: c.execute(f"CALL ducklake_flush_inlined_data('{CATALOG}')"),
        what="flush inlined data",
    )
    return f"{len(expected)} bronze tables, {rows:,} rows, snapshot {lake.current_snapshot()}"


def _dbt(command: str, select: str) -> Callable[[Project], str]:
    def step(project: Project) -> str:
        from fleuve.transform import run_transform

        args = [command, "--select", select]
        if command == "test":
            # Tests whose parents are all in this layer or upstream of it; a test that also reads
            # the next layer runs with that layer, once its models exist.
            args += ["--indirect-selection", "buildable"]
        result = run_transform(
            project.settings, args, db=project.db, metadata={"pipeline_step": f"{command} {select}"}
        )
        if result.failed_tests:
            # The quality gate: the layers downstream of a failing test are not built.
            stored = [n.relation for n in result.failed_tests if n.relation]
            where = f"query {', '.join(stored)} in the lake" if stored else "see the dbt log"
            raise FleuveError(
                f"quality gate on {select}: "
                + "; ".join(n.describe() for n in result.failed)
                + "; later layers were not built",
                f"to inspect the failing rows, {where}; fix the data at its source (or the "
                "test), then run again",
            )
        if not result.success:
            raise FleuveError(
                f"dbt {command} --select {select}: {result.summary()}",
                "fix the failing models (the dbt log is in .fleuve/logs/dbt/dbt.log), then run again",
            )
        return result.summary()

    return step


def maintain(project: Project) -> str:
    """Compact the day's small files and expire snapshots older than the retention window."""
    from sqlalchemy import func, select

    from fleuve.metadata.engine import EngineReflection

    # A reflection refreshes incrementally from the snapshot it was built at: keep that one.
    with project.db.session() as s:
        keep_from = s.scalar(
            select(func.min(EngineReflection.built_snapshot)).where(EngineReflection.enabled)
        )
    return project.lake.maintain(keep_from=keep_from).summary()


def _reflections(project: Project) -> str:
    """Refresh the reflections whose policy says they are due, incrementally where possible."""
    from fleuve.engine import Engine

    with Engine(project) as engine:
        results = engine.refresh_due()
    failed = [r for r in results if r.mode == "FAILED"]
    if failed:
        raise FleuveError(
            "reflection refresh failed for "
            + "; ".join(f"{r.reflection}: {r.reason}" for r in failed),
            "see `fleuve reflections list`, fix the dataset or the reflection, then run again",
        )
    if not results:
        return f"{len(engine.reflections.all())} reflections, none due"
    done = ", ".join(f"{r.reflection} ({r.mode.lower()}, {r.rows:,} rows)" for r in results)
    return f"refreshed {done}"


def _warm_up(project: Project) -> str:
    """Read every gold table once so the first dashboard query finds warm file metadata."""
    gold = [t for _, t in project.lake.tables("gold")]
    with project.lake.session() as con:
        for table in gold:
            con.execute(f"SELECT * FROM gold.{quote_ident(table)} LIMIT 1000").fetchall()
    return f"read {len(gold)} gold tables"


STEPS: list[Step] = [
    Step("ingest", "Extract sources into bronze", _ingest),
    Step("load_bronze", "Load and check bronze", _load_bronze),
    Step("staging", "dbt run: staging", _dbt("run", "staging")),
    Step("test_staging", "dbt test: staging", _dbt("test", "staging")),
    Step("intermediate", "dbt run: intermediate", _dbt("run", "intermediate")),
    Step("test_intermediate", "dbt test: intermediate", _dbt("test", "intermediate")),
    Step("marts", "dbt run: marts", _dbt("run", "marts")),
    Step("test_marts", "dbt test: marts", _dbt("test", "marts")),
    Step("maintain", "Compact and expire snapshots", maintain),
    Step("reflections", "Refresh reflections", _reflections),
    Step("warm_up", "Warm dashboard caches", _warm_up),
]


def run_pipeline(
    project: Project,
    steps: list[Step] | None = None,
    on_step: Callable[[StepOutcome], None] | None = None,
) -> RunReport:
    """Run the steps in order, recording each; stop at the first failure."""
    steps = steps if steps is not None else STEPS
    project.check()
    with project.db.session() as s:
        run = PipelineRun(status="running")
        run.steps = [PipelineStep(position=i, name=st.name) for i, st in enumerate(steps)]
        s.add(run)
        s.flush()
        run_id = run.id
    report = RunReport(
        run_id=run_id,
        status="running",
        seconds=0.0,
        steps=[StepOutcome(st.name, st.title) for st in steps],
    )
    started = time.monotonic()
    for position, (step, outcome) in enumerate(zip(steps, report.steps, strict=True)):
        outcome.status = "running"
        if on_step:
            on_step(outcome)
        t0, begun = time.monotonic(), utcnow()
        try:
            outcome.summary = step.run(project)
            outcome.status = "succeeded"
        except Exception as exc:
            outcome.status = "failed"
            message = (
                exc.message if isinstance(exc, FleuveError) else f"{type(exc).__name__}: {exc}"
            )
            fix = exc.fix if isinstance(exc, FleuveError) else None
            outcome.summary = message
            report.error = PipelineError(step.name, message, fix)
        outcome.seconds = time.monotonic() - t0
        _record_step(project, run_id, position, outcome, begun)
        if on_step:
            on_step(outcome)
        if report.error:
            for rest in report.steps[position + 1 :]:
                rest.status = "skipped"
            break
    report.seconds = time.monotonic() - started
    report.status = "failed" if report.error else "succeeded"
    with project.db.session() as s:
        run = s.get_one(PipelineRun, run_id)
        run.status, run.ended_at = report.status, utcnow()
        if report.error:
            run.failed_step, run.error = report.error.step, str(report.error)
        for row, outcome in zip(run.steps, report.steps, strict=True):
            if outcome.status == "skipped":
                row.status = "skipped"
    return report


def _record_step(
    project: Project, run_id: int, position: int, outcome: StepOutcome, begun: datetime
) -> None:
    with project.db.session() as s:
        run = s.get_one(PipelineRun, run_id)
        row = run.steps[position]
        row.status, row.summary, row.seconds = outcome.status, outcome.summary, outcome.seconds
        row.started_at, row.ended_at = begun, utcnow()
