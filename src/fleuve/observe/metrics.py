"""Prometheus metrics: the names the Airbyte, MinIO, Dremio, dbt and Superset stack exports
(so its dashboards and alerts keep working), and Fleuve's own `fleuve_*` families.

Two kinds of families, so that several processes serving one project stay correct:

- What the metadata database already records (sync jobs, query jobs, dbt runs, reflections,
  jobs of every kind) and what the lake's catalog knows (bytes and files per layer, snapshots)
  is read when /metrics is scraped, by `ProjectCollector`. Every process answers the same
  project-wide values, whichever process ran the work, and recording it costs nothing more.
- What only the process that served it knows (HTTP and Flight requests, dashboard loads, the
  dashboards' result cache, reflection refreshes it ran) is counted in the process, in
  `INSTRUMENTS`. Each process is its own scrape target (its own port), and Prometheus adds the
  processes up (`sum by (route) (rate(fleuve_http_requests_total[5m]))`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select, text

from fleuve.metadata import Attempt, Job
from fleuve.metadata.engine import EngineJob, EngineReflection
from fleuve.metadata.models import utcnow
from fleuve.metadata.transform import DbtRunNode

if TYPE_CHECKING:
    from fleuve.project import Project

# Seconds; the client's defaults stop at 10 s, syncs and dbt models often take minutes.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
SYNC_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)
SYNC_FAILED = ("failed", "incomplete")
QUERY_FINAL = ("COMPLETED", "FAILED", "CANCELED")
RATE_WINDOW_SECONDS = 60


class RequestRate:
    """Requests per second over the last minute, in one-second slots (one add per request)."""

    def __init__(self, window: int = RATE_WINDOW_SECONDS) -> None:
        self.window = window
        self._slots = [0] * window
        self._seconds = [0] * window
        self._lock = threading.Lock()

    def add(self, now: float | None = None) -> None:
        """Count one request."""
        second = int(time.time() if now is None else now)
        i = second % self.window
        with self._lock:
            if self._seconds[i] != second:
                self._seconds[i], self._slots[i] = second, 0
            self._slots[i] += 1

    def per_second(self, now: float | None = None) -> float:
        """The mean rate over the last `window` seconds."""
        second = int(time.time() if now is None else now)
        with self._lock:
            recent = sum(
                n
                for n, s in zip(self._slots, self._seconds, strict=True)
                if second - s < self.window
            )
        return recent / self.window


class Instruments:
    """What this process counts as it serves: requests, dashboard loads, cache lookups."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "fleuve_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "fleuve_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.flight_requests = Counter(
            "fleuve_flight_requests",
            "Arrow Flight calls answered, by method and status",
            ["method", "status"],
            registry=self.registry,
        )
        self.dashboard_load = Histogram(
            "superset_dashboard_load_time",
            "Seconds to load every chart of a dashboard (the web UI's dashboard data call)",
            ["dashboard"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.chart_cache = Counter(
            "fleuve_chart_cache_lookups",
            "Lookups of chart results in the dashboards' result cache, by result (hit or miss)",
            ["result"],
            registry=self.registry,
        )
        self.reflection_refresh = Histogram(
            "dremio_reflection_refresh_seconds",
            "Seconds a reflection refresh took, by reflection and outcome (run by this process)",
            ["reflection", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.rate = RequestRate()

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered HTTP request."""
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)
        self.rate.add()

    def cache_lookup(self, hit: bool) -> None:
        """Count one lookup in the dashboards' result cache."""
        self.chart_cache.labels("hit" if hit else "miss").inc()

    def collect(self) -> Iterator[Metric]:
        """The process's families, with the two gauges derived from them."""
        hits = misses = 0.0
        for family in self.registry.collect():
            if family.name == "fleuve_chart_cache_lookups":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        if sample.labels.get("result") == "hit":
                            hits += sample.value
                        else:
                            misses += sample.value
            yield family
        rate = GaugeMetricFamily(
            "superset_query_cache_hit_rate",
            "Share of chart queries answered from the dashboards' result cache (0-1), "
            "since this process started",
        )
        rate.add_metric([], hits / (hits + misses) if hits + misses else 0.0)
        yield rate
        rps = GaugeMetricFamily(
            "api_requests_per_second",
            f"HTTP requests per second this process answered over the last "
            f"{RATE_WINDOW_SECONDS} seconds",
        )
        rps.add_metric([], self.rate.per_second())
        yield rps


INSTRUMENTS = Instruments()


class ProjectCollector(Collector):
    """Families read at scrape time from the metadata database and the lake's catalog."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def collect(self) -> Iterable[Metric]:
        """Every project-wide family."""
        yield from self._syncs()
        yield from self._queries()
        yield from self._dbt_models()
        yield from self._jobs()
        yield from self._reflections()
        yield from self._lake()
        yield from self._connections()

    def _syncs(self) -> Iterator[Metric]:
        records = CounterMetricFamily(
            "airbyte_records_synced",
            "Records committed to the lake by syncs, by connection",
            labels=["connection"],
        )
        failures = CounterMetricFamily(
            "airbyte_sync_failures",
            "Sync jobs that ended failed or incomplete, by connection",
            labels=["connection"],
        )
        with self.project.db.session() as s:
            synced = s.execute(
                select(Job.config_id, func.coalesce(func.sum(Attempt.records_synced), 0))
                .join(Attempt, Attempt.job_id == Job.id)
                .where(Job.config_type == "sync")
                .group_by(Job.config_id)
            ).all()
            failed = dict(
                s.execute(
                    select(Job.config_id, func.count())
                    .where(Job.config_type == "sync", Job.status.in_(SYNC_FAILED))
                    .group_by(Job.config_id)
                ).all()
            )
            spans = s.execute(
                select(
                    Job.config_id,
                    Job.status,
                    func.min(Attempt.created_at),
                    func.max(Attempt.ended_at),
                )
                .join(Attempt, Attempt.job_id == Job.id)
                .where(Job.config_type == "sync", Job.status.not_in(("running", "pending")))
                .group_by(Job.id, Job.config_id, Job.status)
            ).all()
        for connection, total in synced:
            records.add_metric([connection], float(total))
            failures.add_metric([connection], float(failed.pop(connection, 0)))
        for connection, count in failed.items():
            failures.add_metric([connection], float(count))
        yield records
        yield failures
        durations: dict[tuple[str, str], list[float]] = {}
        for connection, status, started, ended in spans:
            if started is not None and ended is not None:
                seconds = max(0.0, (_aware(ended) - _aware(started)).total_seconds())
                durations.setdefault((connection, status), []).append(seconds)
        yield _histogram(
            "airbyte_sync_duration_seconds",
            "Seconds a finished sync job took (first attempt's start to last attempt's end), "
            "by connection and status",
            ["connection", "status"],
            durations,
            SYNC_BUCKETS,
        )

    def _queries(self) -> Iterator[Metric]:
        # Bucketed in SQL: the query history can hold millions of rows.
        seconds = (
            func.coalesce(EngineJob.planning_ms, 0) + func.coalesce(EngineJob.execution_ms, 0)
        ) / 1000.0
        columns = [func.count(), func.coalesce(func.sum(seconds), 0.0)]
        columns += [func.sum(_if(seconds <= b)) for b in DURATION_BUCKETS]
        with self.project.db.session() as s:
            rows = s.execute(
                select(EngineJob.state, EngineJob.query_type, *columns)
                .where(EngineJob.state.in_(QUERY_FINAL))
                .group_by(EngineJob.state, EngineJob.query_type)
            ).all()
            queued = s.scalar(
                select(func.count())
                .select_from(EngineJob)
                .where(EngineJob.state.not_in(QUERY_FINAL))
            )
        family = HistogramMetricFamily(
            "dremio_query_duration_seconds",
            "Seconds a SQL query took to plan and run, by final state and where it came from "
            "(REST, FLIGHT, UI...)",
            labels=["state", "query_type"],
        )
        jobs = CounterMetricFamily(
            "fleuve_query_jobs",
            "SQL query jobs that ended, by final state and where they came from",
            labels=["state", "query_type"],
        )
        for row in rows:
            # (state, query_type, count, sum, then one cumulative count per bucket)
            values: tuple[Any, ...] = tuple(row)
            state, query_type, count, total = values[:4]
            cumulative = values[4:]
            buckets = [
                (_le(b), float(n or 0)) for b, n in zip(DURATION_BUCKETS, cumulative, strict=True)
            ]
            buckets.append(("+Inf", float(count)))
            family.add_metric([state, query_type], buckets, float(total))
            jobs.add_metric([state, query_type], float(count))
        yield family
        yield jobs
        depth = GaugeMetricFamily(
            "fleuve_queue_depth",
            "Work waiting or running now, by kind (query, or a job kind such as sync)",
            labels=["kind"],
        )
        depth.add_metric(["query"], float(queued or 0))
        with self.project.db.session() as s:
            waiting = s.execute(
                select(Job.config_type, func.count())
                .where(Job.status.in_(("pending", "running")))
                .group_by(Job.config_type)
            ).all()
        for kind, count in waiting:
            depth.add_metric([kind], float(count))
        yield depth

    def _dbt_models(self) -> Iterator[Metric]:
        with self.project.db.session() as s:
            rows = s.execute(
                select(DbtRunNode.name, DbtRunNode.status, DbtRunNode.seconds).where(
                    DbtRunNode.resource_type == "model"
                )
            ).all()
        durations: dict[tuple[str, str], list[float]] = {}
        for name, status, seconds in rows:
            durations.setdefault((name, status), []).append(float(seconds or 0.0))
        yield _histogram(
            "dbt_model_execution_time",
            "Seconds dbt took to build a model, in seconds, by model and status",
            ["model", "status"],
            durations,
            DURATION_BUCKETS,
        )

    def _jobs(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "fleuve_jobs",
            "Jobs recorded (sync, pipeline, dbt, reflections...), by kind and status",
            labels=["kind", "status"],
        )
        with self.project.db.session() as s:
            for kind, status, count in s.execute(
                select(Job.config_type, Job.status, func.count()).group_by(
                    Job.config_type, Job.status
                )
            ):
                family.add_metric([kind, status], float(count))
        yield family

    def _reflections(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "fleuve_reflection_freshness_seconds",
            "Seconds since a reflection's last successful refresh, by reflection",
            labels=["reflection"],
        )
        now = utcnow()
        with self.project.db.session() as s:
            rows = s.execute(
                select(EngineReflection.name, EngineReflection.refreshed_at).where(
                    EngineReflection.enabled.is_(True), EngineReflection.refreshed_at.is_not(None)
                )
            ).all()
        for name, refreshed in rows:
            if refreshed is not None:
                age.add_metric([name], max(0.0, (now - _aware(refreshed)).total_seconds()))
        yield age

    def _lake(self) -> Iterator[Metric]:
        from fleuve.lake import CATALOG, LAYERS

        usage = GaugeMetricFamily(
            "minio_disk_usage_bytes",
            "Bytes of live Parquet data (and delete files) in the lake, by layer",
            labels=["layer"],
        )
        objects = GaugeMetricFamily(
            "minio_objects_total",
            "Live data and delete files in the lake, by layer",
            labels=["layer"],
        )
        lake = self.project.lake
        with lake.session() as con:
            rows = con.execute(
                f"SELECT s.schema_name, sum(t.file_size_bytes + t.delete_file_size_bytes), "
                f"sum(t.file_count + t.delete_file_count) "
                f"FROM ducklake_table_info('{CATALOG}') t "
                f"JOIN {lake.metadata_table('ducklake_schema')} s "
                f"ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL GROUP BY 1"
            ).fetchall()
            snapshot, count = con.execute(
                f"SELECT max(snapshot_id), count(*) FROM {CATALOG}.snapshots()"
            ).fetchone() or (0, 0)
        sizes = {layer: (0.0, 0.0) for layer in LAYERS}
        for schema, size, files in rows:
            sizes[schema] = (float(size or 0), float(files or 0))
        for layer, (size, files) in sizes.items():
            usage.add_metric([layer], size)
            objects.add_metric([layer], files)
        yield usage
        yield objects
        current = GaugeMetricFamily(
            "fleuve_lake_snapshot_id", "The id of the lake's latest snapshot"
        )
        current.add_metric([], float(snapshot or 0))
        yield current
        kept = GaugeMetricFamily(
            "fleuve_lake_snapshots", "Snapshots the lake keeps (time travel reaches each)"
        )
        kept.add_metric([], float(count or 0))
        yield kept

    def _connections(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "postgres_connections_active",
            "Connections to the metadata database: busy sessions on its PostgreSQL server, "
            "or this process's checked-out connections on SQLite",
            labels=["database"],
        )
        engine = self.project.db.engine
        if engine.dialect.name == "postgresql":
            with engine.connect() as con:
                active = con.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND state <> 'idle'"
                    )
                )
        else:
            active = engine.pool.checkedout()  # type: ignore[attr-defined]
        family.add_metric(["metadata"], float(active or 0))
        yield family


def _histogram(
    name: str,
    documentation: str,
    labels: list[str],
    values: dict[tuple[str, str], list[float]],
    bounds: tuple[float, ...],
) -> HistogramMetricFamily:
    """A histogram family of observations grouped by label values."""
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for key, observed in values.items():
        buckets = [(_le(b), float(sum(1 for v in observed if v <= b))) for b in bounds]
        buckets.append(("+Inf", float(len(observed))))
        family.add_metric(list(key), buckets, float(sum(observed)))
    return family


def _if(condition: Any) -> Any:
    """1 where `condition` holds, else 0 (for counting inside an aggregate)."""
    return case((condition, 1), else_=0)


def _le(bound: float) -> str:
    """A bucket's upper bound as the exposition format writes it."""
    return str(float(bound))


def _aware(value: datetime) -> datetime:
    """`value` with a time zone (SQLite reads back naive UTC timestamps)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def exposition(project: Project) -> bytes:
    """Every family in Prometheus' text exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProjectCollector(project))
    registry.register(INSTRUMENTS)
    return generate_latest(registry)
