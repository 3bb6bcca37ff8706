"""Run dbt in-process against the lake and summarize what it did."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fleuve.config import Settings
from fleuve.transform.project import write_profile

log = logging.getLogger("fleuve.transform")


@dataclass
class NodeResult:
    """One model, seed, snapshot or test as dbt reported it."""

    name: str
    resource_type: str
    status: str
    seconds: float
    message: str | None = None
    failures: int | None = None


@dataclass
class DbtRun:
    """The outcome of one dbt command."""

    command: list[str]
    success: bool
    seconds: float
    nodes: list[NodeResult] = field(default_factory=list)
    error: str | None = None

    @property
    def failed(self) -> list[NodeResult]:
        """Nodes that errored or whose tests failed."""
        return [n for n in self.nodes if n.status in ("error", "fail", "runtime error")]

    def summary(self) -> str:
        """One line: counts per status, and the failures by name."""
        counts: dict[str, int] = {}
        for node in self.nodes:
            counts[node.status] = counts.get(node.status, 0) + 1
        text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing selected"
        if self.failed:
            text += "; failed: " + "; ".join(
                f"{n.name} ({n.failures} failing rows)"
                if n.failures
                else f"{n.name}: {(n.message or '').strip().splitlines()[0] if n.message else 'error'}"
                for n in self.failed
            )
        if self.error:
            text += f"; {self.error}"
        return text


@contextmanager
def _env(settings: Settings) -> Iterator[None]:
    """Expose secrets dbt's profile reads through env_var(), only for the run."""
    saved = dict(os.environ)
    secret = settings.lake.s3.secret_access_key
    if secret is not None:
        os.environ["FLEUVE_LAKE__S3__SECRET_ACCESS_KEY"] = secret.get_secret_value()
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "False")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_dbt(settings: Settings, args: list[str]) -> DbtRun:
    """Invoke dbt (e.g. ['run', '--select', 'staging']) in this process on the project's dbt folder."""
    from dbt.cli.main import dbtRunner  # imported late: dbt takes a second to import

    project_dir = settings.path(settings.transform.project_dir)
    write_profile(settings)
    full = [
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        "--log-path",
        str(settings.state_dir / "logs" / "dbt"),
        # The console stays Fleuve's; dbt's full log goes to .fleuve/logs/dbt/dbt.log.
        "--log-level",
        "none",
        "--log-level-file",
        "info",
    ]
    started = time.monotonic()
    with _env(settings):
        res = dbtRunner().invoke(full)
    run = DbtRun(command=args, success=bool(res.success), seconds=time.monotonic() - started)
    if res.exception is not None:
        run.error = (
            str(res.exception).strip().splitlines()[0]
            if str(res.exception).strip()
            else repr(res.exception)
        )
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


def _node(result: Any) -> NodeResult:
    node = result.node
    return NodeResult(
        name=node.name,
        resource_type=str(node.resource_type),
        status=str(result.status),
        seconds=float(result.execution_time or 0),
        message=result.message,
        failures=result.failures,
    )
