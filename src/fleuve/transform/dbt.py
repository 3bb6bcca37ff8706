"""Run dbt in-process against the lake and describe what it did, node by node."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fleuve.config import Settings
from fleuve.errors import FleuveError
from fleuve.transform.dbt_project import write_profile

log = logging.getLogger("fleuve.transform")

# dbt keeps process-wide state (flags, adapters, event manager): one invocation at a time.
_DBT_LOCK = threading.Lock()
# Parsed manifests by project folder, with the fingerprint of the files they were parsed from.
_MANIFESTS: dict[Path, tuple[str, Any]] = {}

FAILED_STATUSES = ("error", "fail", "runtime error")
# Files that are dbt's output, not its input: they never invalidate a parsed manifest.
_NOT_SOURCES = {"target", "logs", "dbt_packages", ".user.yml"}


@dataclass
class NodeEvent:
    """Progress of one node, as dbt starts and finishes it."""

    kind: str
    """'start' or 'finish'."""
    index: int
    total: int
    name: str
    resource_type: str
    status: str | None = None
    seconds: float | None = None
    failures: int | None = None


@dataclass
class NodeResult:
    """One model, seed, snapshot or test as dbt reported it."""

    unique_id: str
    name: str
    resource_type: str
    status: str
    seconds: float
    started_at: datetime | None = None
    completed_at: datetime | None = None
    message: str | None = None
    failures: int | None = None
    relation: str | None = None
    """The lake relation the node wrote (schema.table), e.g. silver.stg_orders."""
    models: list[str] = field(default_factory=list)
    """For a test: the models it checks."""
    column: str | None = None
    """For a column test: the column it checks."""

    @property
    def failed(self) -> bool:
        """True when the node errored or, for a test, found failing rows."""
        return self.status in FAILED_STATUSES

    def describe(self) -> str:
        """'test on model.column: N failing rows (stored in test_failures.x)' or the node's error."""
        if self.resource_type == "test":
            target = ", ".join(self.models) or "sources"
            if self.column:
                target += f".{self.column}"
            if self.status == "error":
                return f"{self.name} on {target}: {_first_line(self.message)}"
            rows = self.failures or 0
            text = f"{self.name} on {target}: {rows:,} failing row{'s' if rows != 1 else ''}"
            return text + (f" (stored in {self.relation})" if self.relation else "")
        return f"{self.resource_type} {self.name}: {_first_line(self.message)}"


@dataclass
class DbtRun:
    """The outcome of one Fleuve-driven dbt command (including its retries)."""

    command: list[str]
    success: bool
    seconds: float
    run_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    completed_at: datetime | None = None
    project_name: str | None = None
    invocation_id: str | None = None
    nodes: list[NodeResult] = field(default_factory=list)
    error: str | None = None
    attempts: int = 1

    @property
    def failed(self) -> list[NodeResult]:
        """Nodes that errored or whose tests failed."""
        return [n for n in self.nodes if n.failed]

    @property
    def failed_tests(self) -> list[NodeResult]:
        """Tests that found failing rows."""
        return [n for n in self.nodes if n.resource_type == "test" and n.status == "fail"]

    def counts(self) -> dict[str, int]:
        """How many nodes ended in each status."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        return counts

    def summary(self) -> str:
        """One line: counts per status, then each failure with its model, test and row count."""
        text = ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))
        text = text or "nothing selected"
        if self.failed:
            text += "; failed: " + "; ".join(n.describe() for n in self.failed)
        if self.error:
            text += f"; {self.error}"
        return text

    def merge(self, later: DbtRun) -> None:
        """Fold a `dbt retry` of this run into it: later results replace earlier ones."""
        by_id = {n.unique_id: n for n in self.nodes}
        for node in later.nodes:
            by_id[node.unique_id] = node
        self.nodes = list(by_id.values())
        self.success, self.error = later.success, later.error
        self.seconds += later.seconds
        self.completed_at = later.completed_at
        self.attempts += 1


def target_dir(settings: Settings) -> Path:
    """Where Fleuve's dbt runs write their artifacts, apart from the user's own `target/`."""
    return settings.state_dir / "dbt" / "target"


def dbt_args(settings: Settings) -> list[str]:
    """Options every Fleuve-driven dbt command takes: the project, profile, targets and logs."""
    project_dir = settings.path(settings.transform.project_dir)
    return [
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--target-path",
        str(target_dir(settings)),
        "--log-path",
        str(settings.state_dir / "logs" / "dbt"),
        # The console stays Fleuve's; dbt's full log goes to .fleuve/logs/dbt/dbt.log.
        "--log-level",
        "none",
        "--log-level-file",
        "info",
    ]


@contextmanager
def _env(settings: Settings) -> Iterator[None]:
    """Expose secrets dbt's profile reads through env_var(), only for the run."""
    saved = dict(os.environ)
    secret = settings.lake.s3.secret_access_key
    if secret is not None:
        os.environ["FLEUVE_LAKE__S3__SECRET_ACCESS_KEY"] = secret.get_secret_value()
    # The profile names a PostgreSQL catalog without its password; libpq reads it from here.
    catalog_password = urlsplit(settings.lake_catalog).password
    if catalog_password and not settings.lake_catalog.startswith("sqlite:"):
        os.environ["PGPASSWORD"] = unquote(catalog_password)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    try:
        yield
    finally:
        # Put back only what changed: other threads keep reading the environment meanwhile.
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def run_dbt(
    settings: Settings,
    args: list[str],
    *,
    on_event: Callable[[NodeEvent], None] | None = None,
) -> DbtRun:
    """Invoke dbt (e.g. ['run', '--select', 'staging']) in this process on the project's dbt folder.

    The project is parsed once and its manifest reused until a file of the dbt project changes,
    so the pipeline's six layer commands pay for one parse.
    """
    # Imported late: dbt takes seconds to import.
    from dbt.cli.main import dbtRunner
    from dbt_common.invocation import get_invocation_id

    project_dir = settings.path(settings.transform.project_dir)
    if not (project_dir / "dbt_project.yml").exists():
        raise FleuveError(
            f"no dbt project in {project_dir}",
            f"run `fleuve init {settings.project_dir}` to scaffold it, "
            "or set transform.project_dir in fleuve.yml",
        )
    write_profile(settings)
    callbacks = [_progress(on_event)] if on_event else []
    run = DbtRun(command=list(args), success=False, seconds=0.0)
    started = time.monotonic()
    with _DBT_LOCK, _env(settings):
        # `--vars` can change what parsing yields, so such a command parses for itself.
        reuse = args[0] != "parse" and "--vars" not in args
        manifest = _manifest(settings, project_dir, dbtRunner) if reuse else None
        res = dbtRunner(manifest=manifest, callbacks=callbacks).invoke([*args, *dbt_args(settings)])
        run.invocation_id = get_invocation_id()
    run.seconds = time.monotonic() - started
    run.completed_at = datetime.now(UTC)
    run.success = bool(res.success)
    if manifest is not None:
        run.project_name = manifest.metadata.project_name
    if res.exception is not None:
        run.error = _first_line(str(res.exception)) or repr(res.exception)
    for r in getattr(res.result, "results", None) or []:
        run.nodes.append(_node(r))
    log.info(
        "dbt finished",
        extra={
            "command": " ".join(args),
            "success": run.success,
            "seconds": round(run.seconds, 3),
            "summary": run.summary(),
        },
    )
    return run


def _manifest(settings: Settings, project_dir: Path, runner: Any) -> Any:
    """The project's parsed manifest, parsed again only when one of its files changed."""
    fingerprint = _fingerprint(project_dir)
    cached = _MANIFESTS.get(project_dir)
    if cached and cached[0] == fingerprint:
        return cached[1]
    res = runner().invoke(["parse", *dbt_args(settings)])
    if not res.success or res.result is None:
        _MANIFESTS.pop(project_dir, None)
        return None  # the command itself then parses and reports the error in full
    _MANIFESTS[project_dir] = (fingerprint, res.result)
    return res.result


def project_files(project_dir: Path) -> list[Path]:
    """The dbt project's own files (models, macros, tests, YAML, profile), not dbt's output."""
    return sorted(
        path
        for path in project_dir.rglob("*")
        if path.relative_to(project_dir).parts[0] not in _NOT_SOURCES and path.is_file()
    )


def _fingerprint(project_dir: Path) -> str:
    """A digest of the names, sizes and times of the dbt project's own files."""
    digest = hashlib.sha256()
    for path in project_files(project_dir):
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _progress(on_event: Callable[[NodeEvent], None]) -> Callable[[Any], None]:
    """A dbt event callback turning start and result lines into NodeEvents."""

    def callback(msg: Any) -> None:
        name = msg.info.name
        if name not in ("LogStartLine", "LogModelResult", "LogTestResult", "LogFreshnessResult"):
            return
        data = msg.data
        node = data.node_info
        if name == "LogStartLine":
            on_event(NodeEvent("start", data.index, data.total, node.node_name, node.resource_type))
            return
        on_event(
            NodeEvent(
                "finish",
                data.index,
                getattr(data, "total", 0) or getattr(data, "num_models", 0),
                node.node_name,
                node.resource_type,
                # The result line's own status is the adapter's message ("OK") for models.
                status=node.node_status or str(data.status).lower(),
                seconds=float(data.execution_time),
                failures=getattr(data, "num_failures", None),
            )
        )

    return callback


def _node(result: Any) -> NodeResult:
    node = result.node
    timing = {t.name: t for t in result.timing or []}
    begun = timing.get("compile") or timing.get("execute")
    ended = timing.get("execute") or timing.get("compile")
    out = NodeResult(
        unique_id=node.unique_id,
        name=node.name,
        resource_type=str(node.resource_type),
        status=str(result.status),
        seconds=float(result.execution_time or 0),
        started_at=_utc(begun.started_at) if begun else None,
        completed_at=_utc(ended.completed_at) if ended else None,
        message=result.message,
        failures=result.failures,
        relation=relation_name(getattr(node, "relation_name", None)),
    )
    if out.resource_type == "test":
        out.models = [
            dep.split(".")[-1] for dep in node.depends_on.nodes if dep.startswith("model.")
        ]
        out.column = getattr(node, "column_name", None)
    return out


def relation_name(quoted: str | None) -> str | None:
    """'"lake"."silver"."stg_orders"' → 'silver.stg_orders' (the catalog is always the lake)."""
    if not quoted:
        return None
    parts = [p.strip('"') for p in quoted.split(".")]
    return ".".join(parts[-2:])


def _utc(value: datetime | None) -> datetime | None:
    # dbt reports naive UTC times.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    # dbt prefixes runtime errors with a line naming the node; the cause is on the next one.
    if len(lines) > 1 and lines[0].lower().startswith(("runtime error in", "database error in")):
        return lines[1]
    return lines[0] if lines else "error"
