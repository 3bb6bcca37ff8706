"""The scheduler with 1,000 schedules in one project: its idle CPU and how late runs start.

    python bench/schedule.py [--schedules 1000] [--idle-seconds 30] [--busy-minutes 2]

A new embedded project (SQLite metadata) gets `--schedules` entries under `schedules:`. The
scheduler runs in this process on the system clock, as in `fleuve worker`; the work of each run
is replaced by a no-op, so what is measured is the scheduling: finding due runs, claiming their
leases, recording the runs.

1. Idle: no schedule is due during `--idle-seconds`; the process's CPU time over that wall time,
   as a share of one core. Target < 2 %.
2. Busy: the schedules fall on staggered minutes (`M-59/15 * * * *`, M = 0..14, about 1/15 of
   them due each minute, as a project of syncs every 15 minutes spreads them) for
   `--busy-minutes`; the delay of each run is its start minus its due time. Target p99 <= 1 s.
3. Worst case, reported without a target: all of them due in the same minute.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import delete, select

from fleuve.metadata.schedule import ScheduleRun, ScheduleState
from fleuve.project import Project, init_project
from fleuve.schedule.scheduler import Scheduler
from fleuve.schedule.work import RunOutcome, Scheduled


def no_op(item: Scheduled, run_id: int, stop: threading.Event) -> RunOutcome:
    """The work of a run, left out: the bench measures the scheduling."""
    return RunOutcome("succeeded")


def project_with(folder: Path, specs: list[str]) -> Project:
    """A project whose `schedules:` has one lake_maintain entry per spelling in `specs`."""
    config = folder / "fleuve.yml"
    raw = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
    raw["schedules"] = [
        {"name": f"s{i:04d}", "what": "lake_maintain", "schedule": spec}
        for i, spec in enumerate(specs)
    ]
    raw["schedule"] = {"reflections": "manual", "max_parallel": 64}
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    project = Project.open(folder)
    with project.db.session() as s:  # each phase starts from fresh state rows and no runs
        s.execute(delete(ScheduleRun))
        s.execute(delete(ScheduleState))
    return project


def idle(folder: Path, count: int, seconds: float) -> float:
    """CPU share of one core while nothing is due; in percent."""
    hour = (datetime.now(UTC) + timedelta(hours=2)).hour
    project = project_with(folder, [f"{i % 60} {hour} * * *" for i in range(count)])
    scheduler = Scheduler(project, runner=no_op)
    scheduler.start()
    time.sleep(2)  # past the start-up
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    share = (time.process_time() - cpu) / (time.monotonic() - wall) * 100
    scheduler.stop()
    project.close()
    return share


def delays(folder: Path, specs: list[str], minutes: float) -> list[float]:
    """Seconds between each run's due time and its start, over `minutes` of wall time."""
    project = project_with(folder, specs)
    scheduler = Scheduler(project, runner=no_op)
    scheduler.start()
    time.sleep(minutes * 60)
    scheduler.stop()
    with project.db.session() as s:
        runs = list(s.scalars(select(ScheduleRun).where(ScheduleRun.trigger == "schedule")))
    project.close()
    return [(r.started_at - r.due_at).total_seconds() for r in runs]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(label: str, values: list[float]) -> float:
    p99 = percentile(values, 99)
    print(
        f"{label}: {len(values):,} runs; delay p50 {statistics.median(values) * 1000:.0f} ms, "
        f"p99 {p99 * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )
    return p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=30)
    parser.add_argument("--busy-minutes", type=float, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fleuve-bench-schedule-"))
    try:
        folder = tmp / "p"
        init_project(folder, "bench")
        n = args.schedules
        share = idle(folder, n, args.idle_seconds)
        print(f"idle: {n:,} schedules, scheduler CPU {share:.2f} % of one core (target < 2 %)")
        staggered = [f"{i % 15}-59/15 * * * *" for i in range(n)]
        p99 = report(
            f"staggered: {n:,} schedules over 15 minutes",
            delays(folder, staggered, args.busy_minutes),
        )
        print(f"  target p99 <= 1 s: {'met' if p99 <= 1 else 'NOT met'}")
        report(
            f"worst case: {n:,} schedules due in the same minute",
            delays(folder, ["every_1_minutes"] * n, 1.05),
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
