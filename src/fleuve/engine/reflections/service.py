"""Reflections: definitions, freshness, materialization in the lake, and an in-memory copy.

A reflection is a DuckLake table in the hidden schema `__reflections`, named after the
reflection and the lake snapshot it was built from. A full refresh builds a new table aside
from the lake as of one snapshot, then swaps the metadata's pointer to it in one transaction
and drops the old table; queries running meanwhile read whichever table they started with.
An incremental refresh reads only the rows appended since (DuckLake's change feed) and is
used when the reflection reads one lake table through projections and filters only, and
that table only received inserts; anything else falls back to a full refresh.

Small reflections are also copied into DuckDB's in-memory catalog, keyed by table and
snapshot, so that a dashboard query reads them without touching the lake's catalog.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import duckdb
from sqlalchemy import select as sql_select
from sqlalchemy import update
from sqlglot import exp

from fleuve.engine import paths
from fleuve.engine.catalog import Catalog, Dataset
from fleuve.engine.errors import EngineError, ObjectNotFound
from fleuve.engine.freshness import LakeClock, LakeState
from fleuve.engine.reflections.definition import ReflectionSpec
from fleuve.engine.reflections.model import REFLECTION_SCHEMA, Reflection, spec_json
from fleuve.lake import CATALOG, quote_ident
from fleuve.metadata.database import rows_changed
from fleuve.metadata.engine import EngineReflection
from fleuve.metadata.models import utcnow
from fleuve.observe.metrics import INSTRUMENTS
from fleuve.project import Project

log = logging.getLogger("fleuve.engine.reflections")

CACHE_SCHEMA = "memory.fleuve_reflections"
CACHE_MAX_ROWS = 5_000_000
CACHE_MAX_BYTES = 512 * 1024 * 1024
LEASE = timedelta(hours=1)  # a refresh that started longer ago is assumed dead


@dataclass
class RefreshResult:
    """What one refresh did."""

    reflection: str
    mode: str  # FULL or INCREMENTAL, or SKIPPED
    rows: int
    seconds: float
    snapshot: int | None
    reason: str = ""


class Reflections:
    """Creates, refreshes and serves reflections."""

    def __init__(
        self,
        project: Project,
        catalog: Catalog,
        clock: LakeClock,
        expand: Callable[[Dataset], exp.Expr],
    ) -> None:
        self.project = project
        self.catalog = catalog
        self.clock = clock
        self.expand = expand
        self._by_version: tuple[int, list[Reflection]] | None = None
        self._lock = threading.RLock()
        # (table, snapshot) -> (in-memory table, bytes, last use)
        self._cache: OrderedDict[tuple[str, int], tuple[str, int, float]] = OrderedDict()
        self._counts: dict[str, list[int]] = {}
        self._flush_lock = threading.Lock()
        # One builder per in-memory copy: concurrent first uses wait for it instead of racing
        # to create the same table (a write-write conflict in DuckDB).
        self._copying: dict[tuple[str, int], threading.Lock] = {}
        self._schema_lock = threading.Lock()
        self._tag = uuid.uuid4().hex[:6]

    # -- reading the definitions ------------------------------------------------------

    def all(self) -> list[Reflection]:
        """Every reflection, as of the catalog's current version."""
        meta = self.catalog.meta()
        with self._lock:
            if self._by_version is None or self._by_version[0] != meta.version:
                self._by_version = (
                    meta.version,
                    [Reflection.from_row(r) for r in meta.reflections],
                )
            return self._by_version[1]

    def get(self, name_or_id: str) -> Reflection:
        """The reflection with this name or id."""
        low = name_or_id.lower()
        for r in self.all():
            if r.id == name_or_id or r.name.lower() == low:
                return r
        raise ObjectNotFound(
            f"reflection {name_or_id} not found", "list reflections with SHOW REFLECTIONS"
        )

    def on(self, dataset: Dataset) -> list[Reflection]:
        """The reflections defined on `dataset`."""
        return [r for r in self.all() if r.dataset_key == dataset.key]

    # -- the planner's questions ------------------------------------------------------

    def candidates(self, dataset: Dataset) -> list[Reflection]:
        """Enabled, built reflections on `dataset`."""
        return [r for r in self.on(dataset) if r.enabled]

    def lake_state(self) -> LakeState:
        """The lake's current state (the planner reads it once per query)."""
        return self.clock.state()

    def fresh(self, r: Reflection, state: LakeState | None = None) -> bool:
        """True when nothing the reflection reads changed since it was built."""
        if r.built_snapshot is None or r.built_inputs.get("external"):
            return False
        state = state or self.clock.state()
        if state.snapshot == r.built_snapshot:
            return True
        history = self.clock.history(r.built_snapshot, state.snapshot)
        ids = self.clock.table_ids(state.schema_version)
        for name, table_id in r.built_inputs.get("tables", {}).items():
            schema, _, table = name.partition(".")
            if ids.get((schema, table)) != table_id:
                return False
            h = history.get(table_id)
            if h is not None and not h.unchanged:
                return False
        return True

    def usable(self, r: Reflection, dataset: Dataset, state: LakeState | None = None) -> str | None:
        """None when `r` may answer a query on `dataset` now, else why not."""
        if not r.enabled:
            return "disabled"
        if r.table_name is None:
            return "not built yet" + (f" (last refresh failed: {r.error})" if r.error else "")
        if r.version != r.built_inputs.get("version"):
            return "its definition changed since it was built"
        if self.fresh(r, state):
            return None
        window = dataset.staleness_seconds
        if window is not None and r.refreshed_at is not None:
            age = (utcnow() - r.refreshed_at).total_seconds()
            if age <= window:
                return None
            return f"stale for {age:.0f}s, more than the dataset's {window}s window"
        if r.built_inputs.get("external"):
            return (
                "reads a source whose changes cannot be seen, and the dataset allows no staleness"
            )
        return f"stale: its inputs changed after snapshot {r.built_snapshot}"

    def relation(self, r: Reflection) -> exp.Expr:
        """The table to read for `r`: its in-memory copy when small enough, else the lake's."""
        assert r.table_name is not None and r.built_snapshot is not None
        cached = self._cached(r)
        name = cached or f"{CATALOG}.{quote_ident(REFLECTION_SCHEMA)}.{quote_ident(r.table_name)}"
        return exp.to_table(name, dialect="duckdb")

    def count(self, outcomes: Iterable[Any]) -> None:
        """Remember considered/matched/chosen counts until the next flush."""
        with self._lock:
            for o in outcomes:
                c = self._counts.setdefault(o.reflection_id, [0, 0, 0])
                c[0] += 1
                if o.relationship in ("MATCHED", "CHOSEN"):
                    c[1] += 1
                if o.relationship == "CHOSEN":
                    c[2] += 1

    def flush_counts(self) -> None:
        """Add the remembered counts to the metadata database."""
        with self._flush_lock:
            with self._lock:
                counts, self._counts = self._counts, {}
            if not counts:
                return
            with self.catalog.db.session() as s:
                for rid, (considered, matched, chosen) in counts.items():
                    s.execute(
                        update(EngineReflection)
                        .where(EngineReflection.id == rid)
                        .values(
                            considered=EngineReflection.considered + considered,
                            matched=EngineReflection.matched + matched,
                            chosen=EngineReflection.chosen + chosen,
                        )
                    )

    def counts(self, rid: str) -> tuple[int, int, int]:
        """Times considered, matched and chosen: recorded, plus what this engine holds back."""
        # The flush lock keeps a count from being in both places, or in neither, meanwhile.
        with self._flush_lock:
            with self.catalog.db.session() as s:
                row = s.execute(
                    sql_select(
                        EngineReflection.considered,
                        EngineReflection.matched,
                        EngineReflection.chosen,
                    ).where(EngineReflection.id == rid)
                ).first()
            with self._lock:
                held = self._counts.get(rid, [0, 0, 0])
        stored = tuple(row) if row is not None else (0, 0, 0)
        return stored[0] + held[0], stored[1] + held[1], stored[2] + held[2]

    # -- in-memory copies -------------------------------------------------------------

    def _cached(self, r: Reflection) -> str | None:
        key = (r.table_name or "", r.built_snapshot or 0)
        hit = self._cache_hit(key)
        if hit is not None or r.rows > CACHE_MAX_ROWS:
            return hit
        with self._lock:
            copying = self._copying.setdefault(key, threading.Lock())
        with copying:
            hit = self._cache_hit(key)
            if hit is not None:
                return hit
            # Named per engine: another engine in the process evicts its own copies only.
            label = f"{r.table_name}@{r.built_snapshot}~{self._tag}"
            name = f"{CACHE_SCHEMA}.{quote_ident(label)}"
            with self.project.lake.session() as con:
                with self._schema_lock:  # two first copies at once would both create it
                    con.execute(f"CREATE SCHEMA IF NOT EXISTS {CACHE_SCHEMA}")
                con.execute(
                    f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM "
                    f"{CATALOG}.{quote_ident(REFLECTION_SCHEMA)}.{quote_ident(key[0])}"
                )
                # Rows times columns times a generous 16 bytes: DuckDB reports no size per table.
                size = (
                    r.rows
                    * (len(r.build_plan()[1]) if r.kind == "AGGREGATION" else len(r.spec.display))
                    * 16
                )
                with self._lock:
                    self._cache[key] = (name, size, time.monotonic())
                    self._copying.pop(key, None)
                    self._evict(con, keep=key, now=time.monotonic())
        return name

    def _cache_hit(self, key: tuple[str, int]) -> str | None:
        """The in-memory copy for `key`, marked as just used; None when there is none."""
        with self._lock:
            hit = self._cache.get(key)
            if hit is None:
                return None
            self._cache[key] = (hit[0], hit[1], time.monotonic())
            self._cache.move_to_end(key)
            return hit[0]

    def drop_copies(self) -> None:
        """Free every in-memory copy this engine made."""
        with self._lock:
            names, self._cache = [n for n, _, _ in self._cache.values()], OrderedDict()
        if names:
            with self.project.lake.session() as con:
                for name in names:
                    con.execute(f"DROP TABLE IF EXISTS {name}")

    def _evict(self, con: duckdb.DuckDBPyConnection, keep: tuple[str, int], now: float) -> None:
        """Drop copies over the memory budget, least recently used first.

        A copy used in the last minute stays: a query planned on it may not have started yet.
        """
        total = sum(size for _, size, _ in self._cache.values())
        for k, (name, size, used) in list(self._cache.items()):
            superseded = k[0] == keep[0] and k != keep
            if k == keep or now - used < 60 or not (superseded or total > CACHE_MAX_BYTES):
                continue
            del self._cache[k]
            total -= size
            con.execute(f"DROP TABLE IF EXISTS {name}")

    # -- definitions ------------------------------------------------------------------

    def create(
        self, name: str, dataset: Dataset, spec: ReflectionSpec, by: str, *, enabled: bool = True
    ) -> Reflection:
        """Define a reflection (not built yet; `refresh` builds it)."""
        if any(r.name.lower() == name.lower() for r in self.all()):
            raise EngineError(f"a reflection named '{name}' already exists", "pick another name")
        validate(spec, dataset)
        rid = str(uuid.uuid4())
        with self.catalog.db.session() as s:
            s.add(
                EngineReflection(
                    id=rid,
                    name=name,
                    dataset_key=dataset.key,
                    dataset_path=list(dataset.path),
                    kind=spec.kind,
                    enabled=enabled,
                    definition=spec_json(spec),
                    built_inputs={},
                    created_by=by,
                )
            )
            self.catalog.bump(s)
        return self.get(rid)

    def alter(self, r: Reflection, **changes: Any) -> Reflection:
        """Change a reflection's name, enabled flag, refresh policy or definition."""
        with self.catalog.db.session() as s:
            row = s.get(EngineReflection, r.id)
            if row is None:
                raise ObjectNotFound(f"reflection {r.name} not found", "it was dropped meanwhile")
            spec = changes.pop("spec", None)
            if spec is not None:
                row.definition, row.kind = spec_json(spec), spec.kind
                row.version += 1
            for k, v in changes.items():
                setattr(row, k, v)
            self.catalog.bump(s)
        return self.get(r.id)

    def drop(self, r: Reflection) -> None:
        """Remove a reflection and its table."""
        with self.catalog.db.session() as s:
            row = s.get(EngineReflection, r.id)
            if row is not None:
                s.delete(row)
                self.catalog.bump(s)
        for table in {t for t in (r.table_name, r.built_inputs.get("previous")) if t is not None}:
            self._drop_table(table)

    def _drop_table(self, table: str) -> None:
        self.project.lake.commit(
            lambda c: c.execute(
                f"DROP TABLE IF EXISTS {CATALOG}.{quote_ident(REFLECTION_SCHEMA)}.{quote_ident(table)}"
            ),
            what=f"drop reflection table {table}",
        )

    # -- refreshing -------------------------------------------------------------------

    def due(self) -> list[Reflection]:
        """Enabled reflections whose policy asks for a refresh now."""
        out = []
        now = utcnow()
        for r in self.all():
            if not r.enabled:
                continue
            never_built = r.table_name is None
            if never_built or r.version != r.built_inputs.get("version"):
                # Manual reflections are built once when defined, then only on request.
                if r.refresh_policy != "MANUAL" or (never_built and r.error is None):
                    out.append(r)
                continue
            if r.refresh_policy == "EVERY":
                if r.expires_at is not None and r.expires_at <= now:
                    out.append(r)
            elif r.refresh_policy == "ON_CHANGE" and not self.fresh(r):
                out.append(r)
        return out

    def refresh(self, r: Reflection, *, mode: str = "AUTO") -> RefreshResult:
        """Rebuild `r` (incrementally when possible and `mode` allows); returns what it did."""
        dataset = self.catalog.lookup(r.dataset_path)
        if dataset is None:
            self._record_error(r, f"its dataset {paths.render(r.dataset_path)} no longer exists")
            raise ObjectNotFound(
                f"the dataset of reflection {r.name}, {paths.render(r.dataset_path)}, no longer exists",
                "drop the reflection or recreate the dataset",
            )
        if not self._lease(r):
            return RefreshResult(
                r.name, "SKIPPED", r.rows, 0.0, r.built_snapshot, "a refresh is already running"
            )
        started = time.monotonic()
        try:
            result = self._refresh(r, dataset, mode)
        except Exception as exc:
            INSTRUMENTS.reflection_refresh.labels(r.name, "failed").observe(
                time.monotonic() - started
            )
            message = getattr(exc, "message", None) or str(exc).splitlines()[0]
            self._record_error(r, message)
            raise EngineError(
                f"refresh of reflection {r.name} failed: {message}",
                "fix the dataset or the reflection's columns, then refresh again",
            ) from None
        result.seconds = time.monotonic() - started
        INSTRUMENTS.reflection_refresh.labels(r.name, "succeeded").observe(result.seconds)
        log.info(
            "reflection refreshed",
            extra={
                "reflection": r.name,
                "mode": result.mode,
                "rows": result.rows,
                "seconds": round(result.seconds, 3),
            },
        )
        return result

    def _lease(self, r: Reflection) -> bool:
        now = utcnow()
        with self.catalog.db.session() as s:
            changed = rows_changed(
                s,
                update(EngineReflection)
                .where(EngineReflection.id == r.id)
                .where(
                    (EngineReflection.refresh_started_at.is_(None))
                    | (EngineReflection.refresh_started_at < now - LEASE)
                )
                .values(refresh_started_at=now),
            )
            return bool(changed)

    def _record_error(self, r: Reflection, message: str) -> None:
        with self.catalog.db.session() as s:
            row = s.get(EngineReflection, r.id)
            if row is not None:
                row.error = message
                row.refresh_started_at = None
                self.catalog.bump(s)

    def _refresh(self, r: Reflection, dataset: Dataset, mode: str) -> RefreshResult:
        state = self.clock.state()
        snapshot = state.snapshot
        body = self.expand(dataset)
        inputs, external = _lake_inputs(body)
        ids = self.clock.table_ids(state.schema_version)
        tables = {f"{s.lower()}.{t.lower()}": ids.get((s.lower(), t.lower())) for s, t in inputs}
        # The table before the current one is dropped only now: a query planned on it just
        # before the last swap has had a whole refresh interval to finish.
        previous = r.built_inputs.get("previous")
        built = {"version": r.version, "tables": tables, "external": external, "previous": previous}
        reason = ""
        if mode != "FULL":
            reason = self._incremental_blocker(r, body, tables, external, snapshot)
            if not reason:
                rows = self._append(r, body, snapshot)
                self._record(r, r.table_name, snapshot, built, rows, "INCREMENTAL")
                return RefreshResult(r.name, "INCREMENTAL", rows, 0.0, snapshot)
        pinned = _pin(body, snapshot)
        table = f"r_{r.id.replace('-', '')[:12]}_{snapshot}"
        if table == r.table_name:
            table += f"_{uuid.uuid4().hex[:6]}"
        rows = self._build(r, pinned, table)
        built["previous"] = r.table_name
        try:
            self._record(r, table, snapshot, built, rows, "FULL")
        except Exception:
            self._drop_table(table)
            raise
        if previous and previous not in (table, r.table_name):
            self._drop_table(previous)
        return RefreshResult(r.name, "FULL", rows, 0.0, snapshot, reason)

    def _definition(self, r: Reflection, source: exp.Expr) -> str:
        """The SELECT building the reflection's rows from `source` (the dataset's rows)."""
        src = f"({source.sql(dialect='duckdb')}) AS _dataset"
        if r.kind == "RAW":
            cols = ", ".join(
                quote_ident(c) for c in _ordered_display(r, self.catalog.lookup(r.dataset_path))
            )
            return f"SELECT {cols} FROM {src}"
        _, build = r.build_plan()
        select = ", ".join(f"{e} AS {quote_ident(c)}" for e, c in build)
        dims = len(r.spec.dimensions)
        group = f" GROUP BY {', '.join(str(i + 1) for i in range(dims))}" if dims else ""
        return f"SELECT {select} FROM {src}{group}"

    def _finalize(self, r: Reflection, sql: str) -> str:
        """Sorted distinct-value lists, so that two builds of the same rows are equal."""
        if r.kind == "RAW":
            return sql
        _, build = r.build_plan()
        acd = {c for e, c in build if e.startswith("list(DISTINCT")}
        if not acd:
            return sql
        cols = ", ".join(
            f"list_sort({quote_ident(c)}) AS {quote_ident(c)}" if c in acd else quote_ident(c)
            for _, c in build
        )
        return f"SELECT {cols} FROM ({sql})"

    def _build(self, r: Reflection, source: exp.Expr, table: str) -> int:
        target = f"{CATALOG}.{quote_ident(REFLECTION_SCHEMA)}.{quote_ident(table)}"
        sql = self._finalize(r, self._definition(r, source))
        order = f" ORDER BY {', '.join(quote_ident(c) for c in r.spec.sort)}" if r.spec.sort else ""

        def work(c: duckdb.DuckDBPyConnection) -> int:
            c.execute(f"CREATE SCHEMA IF NOT EXISTS {CATALOG}.{quote_ident(REFLECTION_SCHEMA)}")
            if r.spec.partition:
                c.execute(f"CREATE TABLE {target} AS SELECT * FROM ({sql}) LIMIT 0")
                c.execute(
                    f"ALTER TABLE {target} SET PARTITIONED BY "
                    f"({', '.join(quote_ident(p) for p in r.spec.partition)})"
                )
                c.execute(f"INSERT INTO {target} SELECT * FROM ({sql}){order}")
            else:
                c.execute(f"CREATE TABLE {target} AS SELECT * FROM ({sql}){order}")
            return c.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]

        return self.project.lake.commit(work, what=f"build reflection {r.name}")

    def _incremental_blocker(
        self,
        r: Reflection,
        body: exp.Expr,
        tables: dict[str, int | None],
        external: bool,
        snapshot: int,
    ) -> str:
        """Why an incremental refresh cannot be used ('' when it can)."""
        if r.table_name is None or r.built_snapshot is None:
            return "never built"
        if r.version != r.built_inputs.get("version"):
            return "the definition changed"
        if external or len(tables) != 1:
            return "reads other than exactly one lake table"
        if tables != r.built_inputs.get("tables"):
            return "its input table was replaced"
        if not _row_wise(body):
            return "the dataset aggregates, joins or limits rows"
        if snapshot == r.built_snapshot:
            return "nothing changed"
        (table_id,) = tables.values()
        history = (
            self.clock.history(r.built_snapshot, snapshot).get(table_id)
            if table_id is not None
            else None
        )
        if history is not None and not history.append_only:
            return "rows were updated or deleted"
        return ""

    def _append(self, r: Reflection, body: exp.Expr, snapshot: int) -> int:
        """Add what was appended since the last build; returns the reflection's new row count."""
        assert r.table_name is not None and r.built_snapshot is not None
        delta = _changes_only(body, r.built_snapshot + 1, snapshot)
        target = f"{CATALOG}.{quote_ident(REFLECTION_SCHEMA)}.{quote_ident(r.table_name)}"
        new_rows = self._finalize(r, self._definition(r, delta))
        if r.kind == "RAW":
            order = (
                f" ORDER BY {', '.join(quote_ident(c) for c in r.spec.sort)}" if r.spec.sort else ""
            )

            def work(c: duckdb.DuckDBPyConnection) -> int:
                c.execute(f"INSERT INTO {target} SELECT * FROM ({new_rows}){order}")
                return c.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]

            return self.project.lake.commit(work, what=f"append to reflection {r.name}")
        merged = _merge_sql(r, target, new_rows)

        def merge(c: duckdb.DuckDBPyConnection) -> int:
            c.execute(f"CREATE OR REPLACE TABLE {target} AS {merged}")
            return c.execute(f"SELECT count(*) FROM {target}").fetchall()[0][0]

        return self.project.lake.commit(merge, what=f"merge into reflection {r.name}")

    def _record(
        self, r: Reflection, table: str | None, snapshot: int, built: dict, rows: int, mode: str
    ) -> None:
        size = self._size(table)
        with self.project.lake.session() as con:
            described = con.execute(
                f"DESCRIBE {CATALOG}.{quote_ident(REFLECTION_SCHEMA)}.{quote_ident(table or '')}"
            ).fetchall()
        built = {**built, "columns": {name.lower(): typ for name, typ, *_ in described}}
        now = utcnow()
        with self.catalog.db.session() as s:
            row = s.get(EngineReflection, r.id)
            if row is None:
                raise ObjectNotFound(f"reflection {r.name} was dropped during its refresh", "")
            row.table_name, row.built_snapshot, row.built_inputs = table, snapshot, built
            row.rows, row.bytes, row.refresh_mode, row.error = rows, size, mode, None
            row.refreshed_at = now
            started = row.refresh_started_at or now
            row.refresh_seconds_taken = max(0.0, (now - started).total_seconds())
            row.refresh_started_at = None
            self.catalog.bump(s)

    def _size(self, table: str | None) -> int:
        if table is None:
            return 0
        with self.project.lake.session() as con:
            row = con.execute(
                f"SELECT coalesce(sum(i.file_size_bytes + i.delete_file_size_bytes), 0) "
                f"FROM ducklake_table_info('{CATALOG}') i "
                f"JOIN duckdb_tables() t ON t.database_name = '{CATALOG}' "
                f"AND t.schema_name = '{REFLECTION_SCHEMA}' AND t.table_name = i.table_name "
                f"WHERE i.table_name = ?",
                [table],
            ).fetchall()[0]
        return int(row[0] or 0)

    def materialization(self, r: Reflection) -> str | None:
        """The lake table holding `r`, fully qualified."""
        if r.table_name is None:
            return None
        return f"{CATALOG}.{quote_ident(REFLECTION_SCHEMA)}.{quote_ident(r.table_name)}"


def validate(spec: ReflectionSpec, dataset: Dataset) -> None:
    """Raise unless every column the definition names is a column of `dataset`."""
    names = {f.name.lower(): f for f in dataset.fields}
    used = [*spec.display, *spec.partition, *spec.sort]
    used += [d.column for d in spec.dimensions]
    used += [m.column for m in spec.measures if m.column != "*"]
    missing = [c for c in used if c.lower() not in names]
    if missing:
        raise EngineError(
            f"{paths.render(dataset.path)} has no column {', '.join(missing)}",
            f"use its columns: {', '.join(f.name for f in dataset.fields)}",
        )
    for m in spec.measures:
        bad = [
            t for t in m.types if t not in ("SUM", "COUNT", "MIN", "MAX", "APPROX_COUNT_DISTINCT")
        ]
        if bad:
            raise EngineError(
                f"unknown measure type {', '.join(bad)} on {m.column}",
                "use SUM, COUNT, MIN, MAX or APPROX_COUNT_DISTINCT",
            )
    kept = set()
    if spec.kind == "AGGREGATION":
        kept = {
            d.column.lower() if d.grain is None else f"{d.column}__{d.grain}".lower()
            for d in spec.dimensions
        }
    else:
        kept = {c.lower() for c in spec.display}
    for c in [*spec.partition, *spec.sort]:
        if spec.kind == "AGGREGATION" and c.lower() not in kept:
            raise EngineError(
                f"{c} is not a dimension, so the reflection cannot be partitioned or sorted by it",
                "partition and sort by dimensions",
            )
        if spec.kind == "RAW" and c.lower() not in kept:
            raise EngineError(
                f"{c} is not a display column", "partition and sort by displayed columns"
            )


def _ordered_display(r: Reflection, dataset: Dataset | None) -> list[str]:
    """The displayed columns in the dataset's order, so that SELECT * reads them right."""
    keep = {c.lower() for c in r.spec.display}
    if dataset is None:
        return list(r.spec.display)
    return [f.name for f in dataset.fields if f.name.lower() in keep]


def _lake_inputs(body: exp.Expr) -> tuple[list[tuple[str, str]], bool]:
    """The lake tables an expanded query reads, and whether it reads anything else."""
    tables, external = [], False
    for t in body.find_all(exp.Table):
        if not isinstance(t.this, exp.Identifier):
            external = True
            continue
        if t.catalog.lower() == CATALOG:
            pair = (t.db, t.name)
            if pair not in tables:
                tables.append(pair)
        elif t.catalog or t.db:
            external = True
    return tables, external


def _pin(body: exp.Expr, snapshot: int) -> exp.Expr:
    """The query reading every lake table as of `snapshot`."""
    out = body.copy()
    for t in out.find_all(exp.Table):
        if (
            isinstance(t.this, exp.Identifier)
            and t.catalog.lower() == CATALOG
            and not t.args.get("when")
        ):
            t.set(
                "when",
                exp.HistoricalData(
                    this="AT", kind="VERSION", expression=exp.Literal.number(snapshot)
                ),
            )
    return out


def _changes_only(body: exp.Expr, start: int, end: int) -> exp.Expr:
    """The query reading only the rows appended to its one lake table in [start, end]."""
    out = body.copy()
    for t in out.find_all(exp.Table):
        if isinstance(t.this, exp.Identifier) and t.catalog.lower() == CATALOG:
            fn = exp.Anonymous(
                this="ducklake_table_insertions",
                expressions=[
                    exp.Literal.string(CATALOG),
                    exp.Literal.string(t.db),
                    exp.Literal.string(t.name),
                    exp.Literal.number(start),
                    exp.Literal.number(end),
                ],
            )
            alias = t.args.get("alias")
            new = exp.Table(this=fn, alias=alias.copy() if alias else None)
            t.replace(new)
            break
    return out


def _row_wise(body: exp.Expr) -> bool:
    """True when the query maps each input row to at most one output row, on its own."""
    selects = list(body.find_all(exp.Select))
    for s in selects:
        if s.args.get("joins") or s.args.get("group") or s.args.get("distinct"):
            return False
        if (
            s.args.get("limit")
            or s.args.get("offset")
            or s.args.get("qualify")
            or s.args.get("having")
        ):
            return False
        if any(
            isinstance(n, exp.AggFunc | exp.Window) for n in s.find_all(exp.AggFunc, exp.Window)
        ):
            return False
    return not any(body.find_all(exp.Union, exp.Intersect, exp.Except, exp.Unnest))


def _merge_sql(r: Reflection, target: str, delta: str) -> str:
    """The aggregation reflection's rows merged with the aggregated new rows."""
    lay, build = r.build_plan()
    dims = {lay.dim_column(d) for d in r.spec.dimensions}
    cols = []
    for expr, col in build:
        q = quote_ident(col)
        if col in dims:
            cols.append(q)
        elif expr.startswith("count("):
            cols.append(f"CAST(sum({q}) AS BIGINT) AS {q}")
        elif expr.startswith("sum("):
            cols.append(f"sum({q}) AS {q}")
        elif expr.startswith("min("):
            cols.append(f"min({q}) AS {q}")
        elif expr.startswith("max("):
            cols.append(f"max({q}) AS {q}")
        else:
            merged = f"list_sort(list_distinct(flatten(list({q}))))"
            cols.append(f"CASE WHEN len({merged}) = 0 THEN NULL ELSE {merged} END AS {q}")
    group = f" GROUP BY {', '.join(quote_ident(d) for d in sorted(dims))}" if dims else ""
    return (
        f"SELECT {', '.join(cols)} FROM (SELECT * FROM {target} UNION ALL BY NAME "
        f"SELECT * FROM ({delta})){group}"
    )


__all__ = ["CACHE_SCHEMA", "Reflections", "RefreshResult", "validate"]
