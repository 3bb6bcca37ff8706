"""The scheduler loop: finds due runs, starts each in exactly one process, records how it went.

Every process running the loop (`fleuve worker`, `fleuve serve`) shares the metadata database:

- a run is started by the process that claims its schedule's lease (and the leases of the
  connections it syncs), so a due run starts once and a connection never syncs twice at once;
- the holder renews its leases while the run goes on; when it dies, its leases expire and
  another process marks the run abandoned and tries it again;
- a schedule's next due time is kept in its row, so a tick missed while every process was down
  is run once when one comes back (`catch_up: once`), or skipped (`catch_up: skip`);
- the loop sleeps until the next due time or `schedule.poll_seconds`, whichever comes first,
  and reads only the rows due by then.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError

from fleuve.config import CONFIG_FILE, Settings, load_settings
from fleuve.errors import FleuveError, NotFound
from fleuve.metadata.database import rows_changed
from fleuve.metadata.schedule import ScheduleLease, ScheduleRun, ScheduleState
from fleuve.observe.alerts import AlertLoop
from fleuve.project import Project
from fleuve.schedule import leases
from fleuve.schedule.clock import Clock, clock_from_env
from fleuve.schedule.work import (
    REFLECTIONS,
    RunOutcome,
    Scheduled,
    definitions,
    run_child,
    run_reflections,
    run_sync,
)

log = logging.getLogger("fleuve.schedule")

# Tries of one due run whose process died while running it (the first one included).
MAX_ATTEMPTS = 3
# Real seconds between two renewals of a running run's leases, at most.
HEARTBEAT_SECONDS = 10.0
# How often a process deletes the runs past schedule.run_retention_days.
PURGE_EVERY = timedelta(hours=1)
# Real seconds before a dbt project that failed to parse, unchanged since, is parsed again.
PARSE_RETRY_SECONDS = 60.0

Runner = Callable[[Scheduled, int, threading.Event], RunOutcome]


class ScheduleNotFound(NotFound):
    """No schedule has that name."""


class ScheduleBusy(FleuveError):
    """The schedule (or a connection it syncs) is running in another process."""


@dataclass
class _Active:
    """A run this process is carrying out."""

    run_id: int
    item: Scheduled
    keys: tuple[str, ...]
    stop: threading.Event
    # When its leases were last renewed (scheduler clock).
    renewed_at: datetime
    thread: threading.Thread | None = None


def new_owner() -> str:
    """A name for this process in leases and runs: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Scheduler:
    """Runs the project's schedules; `start()` in a thread, or `run_forever()` in the caller's."""

    def __init__(
        self,
        project: Project,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
        engine: Any = None,
        runner: Runner | None = None,
        max_parallel: int | None = None,
        reload_config: bool = False,
    ) -> None:
        self.project = project
        self.db = project.db
        self.clock = clock or clock_from_env()
        self.owner = owner or new_owner()
        settings = project.settings.schedule
        self.max_parallel = max_parallel or settings.max_parallel
        self.lease_seconds = settings.lease_seconds
        self.poll_seconds = settings.poll_seconds
        self.defs = definitions(project.settings)
        self._engine = engine
        self._own_engine = False
        self._runner = runner
        self._reload = reload_config
        self._config_mtime = self._mtime()
        self._active: dict[int, _Active] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._renewed = (0.0, self.clock.now())
        self._orphans_checked = datetime.min.replace(tzinfo=UTC)
        self._lake_clock: Any = None
        self._purged = datetime.min.replace(tzinfo=UTC)
        self._inputs: dict[str, tuple[object, frozenset[tuple[str, str]]]] = {}
        self._input_errors: set[str] = set()
        self._parse: Future[dict[str, Any]] | None = None
        self._parse_failed: tuple[float, FleuveError | None] = (0.0, None)
        self._alerts = AlertLoop(project)
        ensure_states(project, self.defs, self.clock.now())

    # -- the loop ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the loop in a background thread until `stop()`."""
        self._thread = threading.Thread(
            target=self.run_forever, name="fleuve-scheduler", daemon=True
        )
        self._thread.start()

    def run_forever(self) -> None:
        """Tick until stopped; a failing tick is logged and the loop goes on."""
        log.info("scheduler started", extra={"owner": self.owner, "schedules": len(self.defs)})
        while not self._stopping.is_set():
            try:
                delay = self.tick()
            except Exception:
                log.exception("scheduler tick failed")
                delay = self.poll_seconds
            if self._stopping.is_set():
                break
            self.clock.sleep(delay, self._wake)
            self._wake.clear()
        log.info("scheduler stopped", extra={"owner": self.owner})

    def wake(self) -> None:
        """Look for due runs now (after a run-now request or a finished run)."""
        self._wake.set()

    def request_stop(self) -> None:
        """Start no more runs and leave the loop (safe from a signal handler)."""
        self._stopping.set()
        self._wake.set()

    def stop(self, wait: float = 30.0) -> None:
        """Stop starting runs; wait up to `wait` seconds for running ones, then stop them."""
        self.request_stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=wait)
        deadline = time.monotonic() + wait
        for active in list(self._active.values()):
            if active.thread is not None:
                active.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        for active in list(self._active.values()):
            # Past the wait: children are stopped; the run's lease expires and another
            # process tries it again.
            active.stop.set()
        self._alerts.stop()
        if self._own_engine and self._engine is not None:
            self._engine.close()

    @property
    def running(self) -> int:
        """How many runs this process is carrying out."""
        with self._lock:
            return len(self._active)

    def tick(self) -> float:
        """Start what is due now; returns the seconds to sleep before the next look."""
        now = self.clock.now()
        self._maybe_reload()
        self._heartbeat(now)
        self._take_over_orphans(now)
        self._look_for_new_data(now)
        horizon = now + timedelta(seconds=self.poll_seconds)
        with self.db.session() as s:
            rows = s.execute(
                select(
                    ScheduleState.name,
                    ScheduleState.next_due_at,
                    ScheduleState.requested_at,
                    ScheduleState.paused,
                )
                .where(
                    or_(
                        (ScheduleState.paused.is_(False)) & (ScheduleState.next_due_at <= horizon),
                        ScheduleState.requested_at.is_not(None),
                    )
                )
                # Requests first, then by due time; no more rows than this process can start.
                .order_by(ScheduleState.requested_at.is_(None), ScheduleState.next_due_at)
                .limit(self.max_parallel * 2 + 32)
            ).all()
        wake_at = horizon
        wanted: list[tuple[str, datetime | None, datetime | None]] = []
        for name, due, requested, paused in rows:
            if name not in self.defs:
                continue
            if requested is not None:
                wanted.append((name, None, requested))
            elif not paused and due is not None:
                if due <= now:
                    wanted.append((name, due, None))
                else:
                    wake_at = min(wake_at, due)
        if wanted:
            self._start_many(wanted)
        self._purge_runs(now)  # after the starts, which must not wait on it
        self._alerts.tick(now)
        return max(0.0, (wake_at - self.clock.now()).total_seconds())

    # -- starting runs -------------------------------------------------------------------

    def _free(self, starting: int = 0) -> bool:
        with self._lock:
            return len(self._active) + starting < self.max_parallel and not self._stopping.is_set()

    def _start_many(self, wanted: list[tuple[str, datetime | None, datetime | None]]) -> None:
        """Claim and record the runs of `wanted` (name, due, requested) in one transaction, as
        many as this process may start, then start them; one by one if the batch fails."""
        started: list[_Active] = []
        try:
            with self.db.session() as s:
                for name, due, requested in wanted:
                    if not self._free(len(started)):
                        break
                    if (active := self._claim(s, name, due, requested)) is not None:
                        started.append(active)
        except DBAPIError:
            # A run recorded meanwhile by another process (unique key), or a deadlock between
            # two batches on PostgreSQL: nothing of the batch was kept; one at a time instead.
            started = []
            for name, due, requested in wanted:
                if not self._free():
                    break
                try:
                    with self.db.session() as s:
                        active = self._claim(s, name, due, requested)
                except DBAPIError:
                    continue
                if active is not None:
                    self._launch(active)
        for active in started:
            self._launch(active)

    def _claim(
        self, s: Any, name: str, due: datetime | None, requested: datetime | None
    ) -> _Active | None:
        """In the caller's transaction: the leases, the schedule's next due time and the run's
        row of one due or requested run; None (and nothing changed) when it is not ours."""
        item = self.defs[name]
        keys = (f"schedule:{name}", *item.resources)
        now = self.clock.now()  # when this run starts, not when the tick began
        if not leases.claim_in(s, keys, self.owner, now, self.lease_seconds):
            return None
        st = s.get_one(ScheduleState, name)
        if requested is not None and st.requested_at == requested:
            trigger, due_at = (st.requested_by or "run_now")[:64], requested
            st.requested_at, st.requested_by = None, None
        elif due is not None and st.next_due_at == due and not st.paused:
            missed = (item.trigger.next_after(due) or now) <= now
            st.next_due_at = item.trigger.next_after(now)
            due_at = due
            trigger = "catch_up" if missed else "schedule"
            if missed and item.catch_up == "skip":
                s.add(self._run_row(item, due_at, 1, "catch_up", now, status="skipped"))
                leases.release_in(s, keys, self.owner)
                log.info("missed run skipped", extra={"schedule": name})
                return None
        else:  # another process started it meanwhile
            leases.release_in(s, keys, self.owner)
            return None
        run = self._run_row(item, due_at, 1, trigger, now)
        s.add(run)
        s.flush()
        st.last_due_at, st.last_started_at = due_at, now
        st.last_status, st.last_run_id = "running", run.id
        return _Active(run.id, item, keys, threading.Event(), now)

    def _run_row(
        self,
        item: Scheduled,
        due_at: datetime,
        attempt: int,
        trigger: str,
        now: datetime,
        status: str = "running",
    ) -> ScheduleRun:
        return ScheduleRun(
            schedule=item.name,
            kind=item.kind,
            due_at=due_at,
            attempt=attempt,
            trigger=trigger,
            status=status,
            owner=self.owner,
            started_at=now,
            ended_at=now if status != "running" else None,
            error="missed while no process ran schedules; catch_up is 'skip'"
            if status == "skipped"
            else None,
        )

    def _launch(self, active: _Active) -> None:
        with self._lock:
            self._active[active.run_id] = active
        active.thread = threading.Thread(
            target=self._execute,
            args=(active,),
            name=f"fleuve-run-{active.item.name}-{active.run_id}",
            daemon=True,
        )
        active.thread.start()
        log.info(
            "run started",
            extra={"schedule": active.item.name, "run_id": active.run_id, "owner": self.owner},
        )

    # -- carrying a run out --------------------------------------------------------------

    def _execute(self, active: _Active) -> None:
        try:
            outcome = self._carry_out(active)
        except Exception as exc:  # a run's failure is recorded, never the loop's end
            message = (
                exc.message if isinstance(exc, FleuveError) else f"{type(exc).__name__}: {exc}"
            )
            outcome = RunOutcome("failed", message)
        try:
            self._finish(active, outcome)
        except Exception:
            log.exception("could not record the end of run %s", active.run_id)
        finally:
            with self._lock:
                self._active.pop(active.run_id, None)
            self._wake.set()

    def _carry_out(self, active: _Active) -> RunOutcome:
        item = active.item
        if self._runner is not None:
            return self._runner(item, active.run_id, active.stop)
        if item.kind == "sync":
            return run_sync(self.project, item, active.stop)
        if item.kind == REFLECTIONS:
            return run_reflections(self.project, self._reflection_engine(), item, active.stop)
        return run_child(self.project, item, active.run_id, active.stop)

    def _reflection_engine(self) -> Any:
        with self._lock:
            if self._engine is None:
                from fleuve.engine import Engine

                self._engine, self._own_engine = Engine(self.project), True
            return self._engine

    def _finish(self, active: _Active, outcome: RunOutcome) -> None:
        now = self.clock.now()
        item = active.item
        with self.db.session() as s:
            run = s.get_one(ScheduleRun, active.run_id)
            if run.status != "running" or run.owner != self.owner:
                # Another process declared it abandoned (this one stalled past its lease).
                log.warning("run finished after its lease was lost", extra={"run_id": run.id})
                return
            run.status, run.ended_at = outcome.status, now
            run.error, run.job_id, run.log_path = outcome.error, outcome.job_id, outcome.log_path
            st = s.get_one(ScheduleState, item.name)
            st.last_status, st.last_finished_at = outcome.status, now
            if outcome.status == "succeeded":
                st.last_success_at = now
            leases.release_in(s, active.keys, self.owner)
            s.flush()
            if outcome.status == "succeeded":
                self._request_downstream(s, item.name, now)
        log.info(
            "run finished",
            extra={"schedule": item.name, "run_id": active.run_id, "status": outcome.status},
        )

    def _request_downstream(self, s: Any, name: str, now: datetime) -> None:
        """Ask for the schedules that run after `name` once all they wait for has succeeded."""
        for down in self.defs.values():
            if name not in down.after:
                continue
            states = {
                st.name: st
                for st in s.scalars(
                    select(ScheduleState).where(ScheduleState.name.in_([*down.after, down.name]))
                )
            }
            mine = states.get(down.name)
            if mine is None or mine.requested_at is not None:
                continue
            since = mine.last_started_at
            ready = all(
                (up := states.get(u)) is not None
                and up.last_success_at is not None
                and (since is None or up.last_success_at > since)
                for u in down.after
            )
            if ready:
                mine.requested_at, mine.requested_by = now, f"after {name}"

    # -- old runs --------------------------------------------------------------------------

    def _purge_runs(self, now: datetime) -> None:
        """Delete finished runs older than `schedule.run_retention_days`, once an hour."""
        if now - self._purged < PURGE_EVERY:
            return
        self._purged = now
        purged = purge_runs(self.project, now)
        if purged:
            log.info("old schedule runs deleted", extra={"runs": purged})

    # -- runs on new data ----------------------------------------------------------------

    def _look_for_new_data(self, now: datetime) -> None:
        """Ask for the `on_new_data` schedules whose input tables got a snapshot since their
        last look; the look advances for the others, so unchanged inputs never start a run."""
        watched = [item for item in self.defs.values() if item.on_new_data]
        if not watched:
            return
        if self._lake_clock is None:
            from fleuve.engine.freshness import LakeClock

            self._lake_clock = LakeClock(self.project.settings, self.project.lake.session)
        lake = self._lake_clock.state()
        with self.db.session() as s:
            rows = s.execute(
                select(
                    ScheduleState.name,
                    ScheduleState.seen_snapshot,
                    ScheduleState.paused,
                    ScheduleState.requested_at,
                    ScheduleState.last_status,
                ).where(ScheduleState.name.in_([item.name for item in watched]))
            ).all()
        for name, seen, paused, requested, last_status in rows:
            if seen is not None and seen >= lake.snapshot:
                continue
            if requested is not None or last_status == "running":
                continue  # looked at again once that run has started and ended
            changed: list[str] = []
            if seen is not None and not paused:
                tables = self._read_tables(self.defs[name])
                if tables is None:
                    continue
                ids = self._lake_clock.table_ids(lake.schema_version)
                history = self._lake_clock.history(seen, lake.snapshot)
                changed = sorted(
                    f"{schema}.{table}"
                    for schema, table in tables
                    if (tid := ids.get((schema, table))) in history and not history[tid].unchanged
                )
            values: dict[str, Any] = {"seen_snapshot": lake.snapshot}
            if changed:
                values["requested_at"] = now
                values["requested_by"] = f"new data in {', '.join(changed)}"[:128]
            with self.db.session() as s:
                # Only the process that moves the look forward asks for the run.
                s.execute(
                    update(ScheduleState)
                    .where(
                        ScheduleState.name == name,
                        ScheduleState.seen_snapshot == seen
                        if seen is not None
                        else ScheduleState.seen_snapshot.is_(None),
                        ScheduleState.requested_at.is_(None),
                    )
                    .values(**values)
                )
            if changed:
                log.info("new data: run asked for", extra={"schedule": name, "tables": changed})

    def _read_tables(self, item: Scheduled) -> frozenset[tuple[str, str]] | None:
        """The lake tables `item` reads (cached per manifest); None while the dbt project is
        parsed again, and (logged once) when they cannot be known."""
        from fleuve.schedule.inputs import read_tables

        try:
            manifest = self._manifest()
            if manifest is None:
                return None
            cached = self._inputs.get(item.name)
            if cached is not None and cached[0] is manifest:
                return cached[1]
            tables = read_tables(manifest, item.dbt_selection, f"schedule '{item.name}'")
        except FleuveError as exc:
            if item.name not in self._input_errors:
                self._input_errors.add(item.name)
                log.error(
                    "cannot watch the inputs of a schedule: %s (%s)",
                    exc.message,
                    exc.fix,
                    extra={"schedule": item.name},
                )
            return None
        self._input_errors.discard(item.name)
        self._inputs[item.name] = (manifest, tables)
        return tables

    def _manifest(self) -> dict[str, Any] | None:
        """The dbt project's manifest; None while `dbt parse` runs after a change of the project,
        in a thread of its own, so that the seconds it takes never hold a tick back."""
        from fleuve.transform.lineage import _load_manifest, manifest_needs_parse

        settings = self.project.settings
        parse = self._parse
        if parse is None:
            if not manifest_needs_parse(settings):
                return _load_manifest(settings)
            failed_at, error = self._parse_failed
            if error is not None and time.monotonic() - failed_at < PARSE_RETRY_SECONDS:
                raise error
            parse = self._parse = Future()
            threading.Thread(
                target=_parse_in_background,
                args=(settings, parse),
                name="fleuve-dbt-parse",
                daemon=True,
            ).start()
        if not parse.done():
            return None
        self._parse = None
        try:
            return parse.result()
        except FleuveError as exc:
            self._parse_failed = (time.monotonic(), exc)
            raise

    # -- leases of running runs, and runs whose process died -----------------------------

    def _heartbeat(self, now: datetime) -> None:
        last_real, last_clock = self._renewed
        third = self.lease_seconds / 3
        if (
            time.monotonic() - last_real < min(third, HEARTBEAT_SECONDS)
            and (now - last_clock).total_seconds() < third
        ):
            return
        self._renewed = (time.monotonic(), now)
        with self._lock:
            active = list(self._active.values())
        for run in active:
            where = {"schedule": run.item.name, "run_id": run.run_id}
            try:
                kept = leases.renew(self.db, run.keys, self.owner, now, self.lease_seconds)
            except DBAPIError as exc:
                # The metadata database is out of reach. Another process that reaches it takes
                # the run over once the lease runs out: stop the run before that can happen.
                if (now - run.renewed_at).total_seconds() + third >= self.lease_seconds:
                    log.warning("lease running out, run stopped: %s", _first_line(exc), extra=where)
                    run.stop.set()
                else:
                    log.warning("lease not renewed: %s", _first_line(exc), extra=where)
                continue
            if kept:
                run.renewed_at = now
            else:
                log.warning("lease lost: another process took the run over", extra=where)
                run.stop.set()

    def _take_over_orphans(self, now: datetime) -> None:
        """Retry runs whose process stopped heartbeating (killed, crashed, cut off)."""
        if (now - self._orphans_checked).total_seconds() < self.lease_seconds / 4:
            return
        self._orphans_checked = now
        with self._lock:
            mine = set(self._active)
        lease = ScheduleLease
        with self.db.session() as s:
            rows = s.execute(
                select(
                    ScheduleRun.id,
                    ScheduleRun.schedule,
                    ScheduleRun.owner,
                    lease.owner,
                    lease.expires_at,
                )
                .outerjoin(lease, lease.key == literal("schedule:") + ScheduleRun.schedule)
                .where(ScheduleRun.status == "running")
            ).all()
        for run_id, name, owner, holder, expires in rows:
            alive = holder == owner and expires is not None and expires >= now
            if run_id not in mine and not alive and name in self.defs and self._free():
                self._retry(run_id, self.defs[name], now)

    def _retry(self, run_id: int, item: Scheduled, now: datetime) -> None:
        keys = (f"schedule:{item.name}", *item.resources)
        if not leases.claim_all(self.db, keys, self.owner, now, self.lease_seconds):
            return
        with self.db.session() as s:
            old = s.get_one(ScheduleRun, run_id)
            if old.status != "running":
                leases.release_in(s, keys, self.owner)
                return
            old.status, old.ended_at = "abandoned", now
            old.error = (
                f"the process {old.owner} stopped before the run finished (its lease expired); "
                f"taken over by {self.owner}"
            )
            st = s.get_one(ScheduleState, item.name)
            if old.attempt >= MAX_ATTEMPTS:
                st.last_status, st.last_finished_at = "failed", now
                leases.release_in(s, keys, self.owner)
                log.warning("run abandoned for good", extra={"schedule": item.name})
                return
            run = self._run_row(item, old.due_at, old.attempt + 1, "retry", now)
            s.add(run)
            s.flush()
            st.last_started_at, st.last_status, st.last_run_id = now, "running", run.id
            new_id = run.id
        log.warning(
            "run taken over after its process stopped",
            extra={"schedule": item.name, "abandoned_run": run_id, "run_id": new_id},
        )
        self._launch(_Active(new_id, item, keys, threading.Event(), now))

    # -- run now, in the caller's process ------------------------------------------------

    def run_now(self, name: str, requested_by: str) -> int:
        """Run `name` now in this process and wait for it; returns the run id."""
        item = self.defs.get(name)
        if item is None:
            raise _not_found(name, self.defs)
        now = self.clock.now()
        keys = (f"schedule:{name}", *item.resources)
        if not leases.claim_all(self.db, keys, self.owner, now, self.lease_seconds):
            raise ScheduleBusy(
                f"'{name}' (or a connection it syncs) is running in another process",
                "wait for that run to end; `fleuve schedules list` shows what runs",
            )
        try:
            with self.db.session() as s:
                run = self._run_row(item, now, 1, f"run_now by {requested_by}"[:64], now)
                s.add(run)
                s.flush()
                st = s.get_one(ScheduleState, name)
                st.last_due_at, st.last_started_at = now, now
                st.last_status, st.last_run_id = "running", run.id
                run_id = run.id
        except IntegrityError:
            leases.release(self.db, keys, self.owner)
            raise ScheduleBusy(
                f"'{name}' was just run by {requested_by}", "look at `fleuve schedules list`"
            ) from None
        _audit(self.project, "run", name, requested_by)
        active = _Active(run_id, item, keys, threading.Event(), now)
        with self._lock:
            self._active[run_id] = active
        beat = threading.Thread(target=self._beat_while, args=(active,), daemon=True)
        beat.start()
        self._execute(active)
        beat.join()
        return run_id

    def _beat_while(self, active: _Active) -> None:
        """Renew a run's leases until it ends (for a run outside the loop)."""
        while True:
            with self._lock:
                if active.run_id not in self._active:
                    return
            self._heartbeat(self.clock.now())
            time.sleep(0.5)

    # -- configuration -------------------------------------------------------------------

    def _mtime(self) -> float | None:
        try:
            return (self.project.settings.project_dir / CONFIG_FILE).stat().st_mtime
        except OSError:
            return None

    def _maybe_reload(self) -> None:
        """Pick up schedules edited in fleuve.yml (a worker runs for weeks)."""
        if not self._reload or self._mtime() == self._config_mtime:
            return
        self._config_mtime = self._mtime()
        try:
            settings = load_settings(self.project.settings.project_dir, self.project.overrides)
            defs = definitions(settings)
        except FleuveError as exc:
            log.error("fleuve.yml not reloaded: %s", exc.message)
            return
        self.project.settings, self.defs = settings, defs
        ensure_states(self.project, defs, self.clock.now())
        log.info("schedules reloaded from fleuve.yml", extra={"schedules": len(defs)})


def _first_line(exc: BaseException) -> str:
    """An error's first line (a database error's statement and parameters follow it)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _parse_in_background(settings: Settings, result: Future[dict[str, Any]]) -> None:
    """Read the dbt manifest, parsing the project first when it changed, into `result`."""
    from fleuve.transform.lineage import _load_manifest

    try:
        result.set_result(_load_manifest(settings))
    except BaseException as exc:  # handed to the loop, which logs it
        result.set_exception(exc)


# -- state rows, listing and control (the CLI and REST use these) -------------------------


def ensure_states(project: Project, defs: dict[str, Scheduled], now: datetime) -> None:
    """Create the state row of each new schedule; restart the clock of a changed one."""
    db = project.db
    with db.session() as s:
        known = {
            name: (kind, spec)
            for name, kind, spec in s.execute(
                select(ScheduleState.name, ScheduleState.kind, ScheduleState.spec)
            )
        }
    new = [
        {
            "name": item.name,
            "kind": item.kind,
            "spec": item.shown_spec,
            "paused": False,
            "next_due_at": item.trigger.next_after(now),
            "updated_at": now,
        }
        for item in defs.values()
        if item.name not in known
    ]
    changed = [
        item
        for item in defs.values()
        if item.name in known and known[item.name] != (item.kind, item.shown_spec)
    ]
    with db.session() as s:
        if new:
            dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
            # Several processes start at once: the first one's rows win, the others' are skipped.
            s.execute(dialect.insert(ScheduleState).values(new).on_conflict_do_nothing())
        for item in changed:
            s.execute(
                update(ScheduleState)
                .where(ScheduleState.name == item.name)
                .values(
                    kind=item.kind,
                    spec=item.shown_spec,
                    next_due_at=item.trigger.next_after(now),
                )
            )


def _not_found(name: str, defs: dict[str, Scheduled]) -> ScheduleNotFound:
    return ScheduleNotFound(
        f"no schedule named '{name}'",
        f"name one of: {', '.join(sorted(defs)) or 'none'} (connections and `schedules:` in "
        f"{CONFIG_FILE})",
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def describe(project: Project, clock: Clock | None = None) -> list[dict[str, Any]]:
    """Every schedule with its spelling, last run, next run and state."""
    clock = clock or clock_from_env()
    defs = definitions(project.settings)
    ensure_states(project, defs, clock.now())
    with project.db.session() as s:
        states = {st.name: st for st in s.scalars(select(ScheduleState))}
        run_ids = [st.last_run_id for st in states.values() if st.last_run_id]
        runs = {r.id: r for r in s.scalars(select(ScheduleRun).where(ScheduleRun.id.in_(run_ids)))}
    return [_describe_one(item, states[item.name], runs) for item in defs.values()]


def _describe_one(
    item: Scheduled, st: ScheduleState, runs: dict[int, ScheduleRun]
) -> dict[str, Any]:
    last = runs.get(st.last_run_id) if st.last_run_id else None
    if st.paused:
        state = "paused"
    elif last is not None and last.status == "running":
        state = "running"
    elif st.requested_at is not None:
        state = "requested"
    elif st.next_due_at is None:
        state = "manual"
    else:
        state = "scheduled"
    return {
        "name": item.name,
        "kind": item.kind,
        "schedule": item.spec,
        "timezone": item.timezone,
        "after": list(item.after),
        "onNewData": item.on_new_data,
        "state": state,
        "nextRun": None if st.paused else _iso(st.next_due_at),
        "lastRun": None
        if last is None
        else {
            "id": last.id,
            "status": last.status,
            "trigger": last.trigger,
            "dueAt": _iso(last.due_at),
            "startedAt": _iso(last.started_at),
            "endedAt": _iso(last.ended_at),
            "jobId": last.job_id,
            "error": last.error,
        },
        "pausedBy": st.paused_by,
        "lastSuccessAt": _iso(st.last_success_at),
    }


def describe_one(project: Project, name: str, clock: Clock | None = None) -> dict[str, Any]:
    """One schedule as `describe` lists it; ScheduleNotFound naming the known ones."""
    for entry in describe(project, clock):
        if entry["name"] == name:
            return entry
    raise _not_found(name, definitions(project.settings))


def runs(project: Project, name: str, limit: int = 20) -> list[dict[str, Any]]:
    """The latest runs of `name`, newest first."""
    with project.db.session() as s:
        rows = s.scalars(
            select(ScheduleRun)
            .where(ScheduleRun.schedule == name)
            .order_by(ScheduleRun.id.desc())
            .limit(limit)
        ).all()
    return [
        {
            "id": r.id,
            "schedule": r.schedule,
            "kind": r.kind,
            "dueAt": _iso(r.due_at),
            "attempt": r.attempt,
            "trigger": r.trigger,
            "status": r.status,
            "owner": r.owner,
            "startedAt": _iso(r.started_at),
            "endedAt": _iso(r.ended_at),
            "jobId": r.job_id,
            "log": r.log_path,
            "error": r.error,
        }
        for r in rows
    ]


def purge_runs(project: Project, now: datetime) -> int:
    """Delete the finished runs that ended before `schedule.run_retention_days`; each schedule's
    last run is kept, however old, as `describe` shows it. Returns how many were deleted."""
    cutoff = now - timedelta(days=project.settings.schedule.run_retention_days)
    with project.db.session() as s:
        last = select(ScheduleState.last_run_id).where(ScheduleState.last_run_id.is_not(None))
        return rows_changed(
            s,
            delete(ScheduleRun).where(
                ScheduleRun.status != "running",
                ScheduleRun.ended_at < cutoff,
                ScheduleRun.id.not_in(last),
            ),
        )


def _state(project: Project, name: str, clock: Clock) -> tuple[dict[str, Scheduled], Scheduled]:
    defs = definitions(project.settings)
    if name not in defs:
        raise _not_found(name, defs)
    ensure_states(project, defs, clock.now())
    return defs, defs[name]


def pause(project: Project, name: str, by: str, clock: Clock | None = None) -> dict[str, Any]:
    """Stop starting scheduled runs of `name` (a running one finishes; run-now still works)."""
    clock = clock or clock_from_env()
    _state(project, name, clock)
    with project.db.session() as s:
        st = s.get_one(ScheduleState, name)
        if not st.paused:
            st.paused, st.paused_by, st.paused_at = True, by, clock.now()
    _audit(project, "pause", name, by)
    return describe_one(project, name, clock)


def resume(project: Project, name: str, by: str, clock: Clock | None = None) -> dict[str, Any]:
    """Start scheduled runs of `name` again, from its next due time (missed ones are not run)."""
    clock = clock or clock_from_env()
    _, item = _state(project, name, clock)
    with project.db.session() as s:
        st = s.get_one(ScheduleState, name)
        if st.paused:
            st.paused, st.paused_by, st.paused_at = False, None, None
            st.next_due_at = item.trigger.next_after(clock.now())
    _audit(project, "resume", name, by)
    return describe_one(project, name, clock)


def request_run(project: Project, name: str, by: str, clock: Clock | None = None) -> dict[str, Any]:
    """Ask the running schedulers to run `name` as soon as it is free."""
    clock = clock or clock_from_env()
    _state(project, name, clock)
    with project.db.session() as s:
        st = s.get_one(ScheduleState, name)
        if st.requested_at is None:
            st.requested_at, st.requested_by = clock.now(), f"run_now by {by}"[:128]
    _audit(project, "run", name, by)
    return describe_one(project, name, clock)


def _audit(project: Project, action: str, name: str, by: str) -> None:
    """Record a change of a schedule in the audit trail, from whichever interface made it."""
    from fleuve.security import audit

    audit.record(project.db, "schedule", action, username=by, target=name)
