"""`fleuve worker`: the scheduler loop alone, until SIGINT or SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from fleuve.plugins import source_services
from fleuve.project import Project
from fleuve.schedule.clock import clock_from_env
from fleuve.schedule.scheduler import Scheduler


def run_worker(
    project: Project,
    *,
    max_parallel: int | None = None,
    on_ready: Callable[[Scheduler], None] | None = None,
) -> None:
    """Run the project's schedules in this process until a stop signal; running runs finish."""
    project.check()
    scheduler = Scheduler(
        project, clock=clock_from_env(), max_parallel=max_parallel, reload_config=True
    )
    stopping = threading.Event()

    def stop(signum: int, frame: object) -> None:
        if stopping.is_set():  # a second Ctrl-C: do not wait for running runs
            raise KeyboardInterrupt
        stopping.set()
        scheduler.request_stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with source_services(project.settings):
            if on_ready is not None:
                on_ready(scheduler)
            scheduler.run_forever()
            scheduler.stop(wait=3600)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
