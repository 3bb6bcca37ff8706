"""A scheduled run of the pipeline, dbt or lake maintenance, in its own process.

`python -m fleuve.schedule.child PROJECT_DIR WORK_JSON OVERRIDES_JSON`; its output is the run's
log, and its exit status says whether the run succeeded.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from fleuve.errors import FleuveError
from fleuve.project import Project

if TYPE_CHECKING:
    from fleuve.transform.dbt import NodeEvent


def run(project: Project, work: dict) -> str:
    """Carry out one run; returns a summary line, raises FleuveError on failure."""
    kind = work["kind"]
    if kind == "lake_maintain":
        from fleuve.pipeline import maintain

        return maintain(project)
    if kind == "dbt":
        from fleuve.transform import run_transform

        args = [work["command"], "--select", *work["select"]]
        result = run_transform(
            project.settings,
            args,
            db=project.db,
            on_event=_print_node,
            metadata={"schedule": work["name"]},
        )
        if not result.success:
            raise FleuveError(f"dbt {' '.join(args)}: {result.summary()}", "see the dbt log")
        return result.summary()
    if kind == "pipeline":
        from fleuve.pipeline import STEPS, run_pipeline
        from fleuve.plugins import source_services

        steps = [s for s in STEPS if s.name in work["select"]] if work["select"] else None
        with source_services(project.settings):
            report = run_pipeline(
                project,
                steps=steps,
                on_step=lambda o: print(f"{o.name}: {o.status} {o.summary}", flush=True),
            )
        if report.error:
            raise report.error
        return f"pipeline run {report.run_id} succeeded in {report.seconds:.1f}s"
    raise FleuveError(f"unknown kind of scheduled work {kind!r}")


def _print_node(event: NodeEvent) -> None:
    """One line of the run's log per dbt node that finished."""
    if event.kind == "finish":
        took = f" in {event.seconds:.1f}s" if event.seconds is not None else ""
        print(
            f"{event.index}/{event.total} {event.resource_type} {event.name}: {event.status}{took}",
            flush=True,
        )


def main(argv: list[str]) -> int:
    """Run the work named on the command line; 0 on success."""
    folder, work, overrides = argv[0], json.loads(argv[1]), json.loads(argv[2])
    project = Project.open(folder, overrides)
    project.log_to_lake()
    try:
        project.check()
        print(run(project, work), flush=True)
        return 0
    except FleuveError as exc:
        print(str(exc).replace("\n", " "), flush=True)
        return 1
    finally:
        project.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
