"""The catalog: every dataset a query can name, where it lives and what it holds.

Top-level containers are the lake's layers (`bronze`, `silver`, `gold`, `logs`, and any other
lake schema), external sources (PostgreSQL and MySQL attached read-only, folders and buckets
of files), spaces (where users save virtual datasets) and each user's home (`@name`). A
dataset's path starts with its container: `gold.orders`, `shop_pg.public.customers`,
`"My Space"."folder"."view"`.

What the catalog knows is cached in memory and reloaded when another writer changes it: the
metadata database's `engine_state.catalog` counter covers spaces, sources, virtual datasets,
reflections and grants; the lake's schema version covers its tables.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import duckdb
from sqlalchemy import delete, event, select, text

from fleuve.engine import paths
from fleuve.engine.errors import EngineError, ObjectNotFound
from fleuve.engine.freshness import LakeClock
from fleuve.engine.paths import Path
from fleuve.engine.types import Field
from fleuve.lake import CATALOG, quote_ident, quote_literal
from fleuve.metadata.engine import (
    EngineContainer,
    EngineDataset,
    EngineDatasetSetting,
    EngineDependency,
    EngineGrant,
    EngineReflection,
    EngineSource,
    EngineState,
)
from fleuve.metadata.models import utcnow
from fleuve.project import Project

REFLECTION_SCHEMA = "__reflections"
SYSTEM_SOURCES = {"information_schema", "sys"}
SOURCE_TTL = 60.0  # seconds an external database's table list is trusted
# How long a process trusts its copy of the catalog before asking whether another one changed
# it; changes made in this process are seen at once.
RECHECK_SECONDS = 0.2
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_KEYS = {"password", "secret", "secret_access_key", "token"}
# A source database's own catalogs, not its data.
_SOURCE_SYSTEM_SCHEMAS = {"information_schema", "pg_catalog", "mysql", "performance_schema", "sys"}
FILE_FORMATS = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json_auto"}


@dataclass(frozen=True)
class Dataset:
    """Something a query can read: a table, a source table, promoted files or saved SQL."""

    id: str
    path: Path
    type: str  # PHYSICAL_DATASET or VIRTUAL_DATASET
    origin: str  # lake, postgres, mysql, files, space, home
    fields: tuple[Field, ...] = ()
    relation: str | None = None  # DuckDB SQL reading a physical dataset
    lake_table: tuple[str, str] | None = None
    sql: str | None = None
    dialect: str = "duckdb"
    context: Path = ()
    staleness_seconds: int | None = None
    version: int = 1
    error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def key(self) -> str:
        """The case-insensitive lookup key of the dataset's path."""
        return paths.key(self.path)

    @property
    def virtual(self) -> bool:
        """True for saved SQL."""
        return self.type == "VIRTUAL_DATASET"

    @property
    def tag(self) -> str:
        """A version tag that changes whenever the definition does."""
        return str(self.version)

    def as_json(self) -> dict[str, Any]:
        """The REST catalog shape of the dataset."""
        out: dict[str, Any] = {
            "entityType": "dataset",
            "id": self.id,
            "type": self.type,
            "path": list(self.path),
            "tag": self.tag,
            "fields": [f.as_json() for f in self.fields],
        }
        if self.virtual:
            out["sql"] = self.sql
            out["sqlContext"] = list(self.context)
        if self.created_at:
            out["createdAt"] = self.created_at.isoformat()
        if self.staleness_seconds is not None:
            out["stalenessSeconds"] = self.staleness_seconds
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True)
class Container:
    """A place holding datasets: a source, a space, a home or a folder."""

    id: str
    path: Path
    kind: str  # SOURCE, SPACE, HOME or FOLDER
    origin: str

    @property
    def key(self) -> str:
        """The case-insensitive lookup key of the container's path."""
        return paths.key(self.path)

    def as_json(self) -> dict[str, Any]:
        """The REST catalog shape of the container, as a list entry."""
        out = {"id": self.id, "path": list(self.path), "tag": "1", "type": "CONTAINER"}
        out["containerType"] = self.kind
        return out


@dataclass
class Source:
    """An external database or a file location."""

    id: str
    name: str
    kind: str
    config: dict[str, Any]

    @property
    def alias(self) -> str:
        """The name of the attached DuckDB database."""
        return f"src_{self.id.replace('-', '')[:12]}"

    def redacted(self) -> dict[str, Any]:
        """The configuration with every secret masked."""
        return {k: ("***" if k in _SECRET_KEYS else v) for k, v in self.config.items()}


@dataclass
class _Meta:
    """What the metadata database says, loaded at one catalog version."""

    version: int
    containers: dict[str, Container] = field(default_factory=dict)
    sources: dict[str, Source] = field(default_factory=dict)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    dependencies: dict[str, set[str]] = field(default_factory=dict)  # key -> keys it reads
    settings: dict[str, int | None] = field(default_factory=dict)
    reflections: list[EngineReflection] = field(default_factory=list)
    grants: list[EngineGrant] = field(default_factory=list)


@dataclass
class _LakeTables:
    schema_version: int
    schemas: list[str]
    tables: dict[tuple[str, str], Dataset]


class Catalog:
    """Looks datasets up by path and keeps the metadata side of the catalog."""

    def __init__(self, project: Project, clock: LakeClock) -> None:
        self.project = project
        self.db = project.db
        self.clock = clock
        self._lock = threading.RLock()
        self._meta: _Meta | None = None
        self._lake: _LakeTables | None = None
        self._source_tables: dict[str, tuple[float, dict[str, Dataset]]] = {}
        self._attached: set[str] = set()
        self._checked_at = 0.0

    # -- freshness of the cache -------------------------------------------------------

    def meta(self) -> _Meta:
        """The metadata side, reloaded if another writer changed it."""
        now = time.monotonic()
        with self._lock:
            if self._meta is not None and now - self._checked_at < RECHECK_SECONDS:
                return self._meta
        version = self._version()
        with self._lock:
            self._checked_at = now
            if self._meta is None or self._meta.version != version:
                self._meta = self._load_meta(version)
            return self._meta

    def _version(self) -> int:
        with self.db.engine.connect() as conn:
            value = conn.execute(
                text("SELECT value FROM engine_state WHERE key = 'catalog'")
            ).scalar()
        return int(value or 0)

    def bump(self, session: Any) -> None:
        """Mark the catalog changed (call inside the session making the change)."""
        # Recheck once committed: a read in between (another thread) still saw the old version.
        event.listen(session, "after_commit", self._recheck, once=True)
        row = session.get(EngineState, "catalog")
        if row is None:
            session.add(EngineState(key="catalog", value=1))
        else:
            row.value += 1

    def _recheck(self, session: Any) -> None:
        with self._lock:
            self._checked_at = 0.0

    def _load_meta(self, version: int) -> _Meta:
        meta = _Meta(version)
        with self.db.session() as s:
            for c in s.scalars(select(EngineContainer)):
                kind = "SPACE" if len(c.path) == 1 else "FOLDER"
                meta.containers[c.path_key] = Container(c.id, tuple(c.path), kind, "space")
            for src in s.scalars(select(EngineSource)):
                meta.sources[src.name.lower()] = Source(src.id, src.name, src.kind, src.config)
            for d in s.scalars(select(EngineDataset)):
                meta.datasets[d.path_key] = self._dataset_from_row(d)
            for dep in s.scalars(select(EngineDependency)):
                owner = next(
                    (k for k, ds in meta.datasets.items() if ds.id == dep.dataset_id), None
                )
                if owner:
                    meta.dependencies.setdefault(owner, set()).add(dep.path_key)
            for st in s.scalars(select(EngineDatasetSetting)):
                meta.settings[st.path_key] = st.staleness_seconds
            meta.reflections = list(s.scalars(select(EngineReflection)))
            meta.grants = list(s.scalars(select(EngineGrant)))
        return meta

    def _dataset_from_row(self, d: EngineDataset) -> Dataset:
        fields = tuple(Field(f["name"], f["type"]) for f in d.fields)
        if d.kind == "VIRTUAL":
            origin = "home" if d.path[0].startswith("@") else "space"
            return Dataset(
                id=d.id,
                path=tuple(d.path),
                type="VIRTUAL_DATASET",
                origin=origin,
                fields=fields,
                sql=d.sql,
                dialect=d.dialect,
                context=tuple(d.context or ()),
                staleness_seconds=d.staleness_seconds,
                version=d.version,
                error=d.error,
                created_at=d.created_at,
                updated_at=d.updated_at,
            )
        return Dataset(
            id=d.id,
            path=tuple(d.path),
            type="PHYSICAL_DATASET",
            origin="files",
            fields=fields,
            relation=d.options.get("relation"),
            staleness_seconds=d.staleness_seconds,
            version=d.version,
            created_at=d.created_at,
            updated_at=d.updated_at,
        )

    def lake_tables(self) -> _LakeTables:
        """The lake's tables and their columns, reloaded when its schema version moves."""
        state = self.clock.state()
        with self._lock:
            if self._lake is None or self._lake.schema_version != state.schema_version:
                self._lake = self._load_lake(state.schema_version)
            return self._lake

    def _load_lake(self, schema_version: int) -> _LakeTables:
        with self.project.lake.session() as con:
            schemas = [
                r[0]
                for r in con.execute(
                    "SELECT schema_name FROM duckdb_schemas() WHERE database_name = ? "
                    "ORDER BY schema_name",
                    [CATALOG],
                ).fetchall()
            ]
            rows = con.execute(
                "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
                "WHERE database_name = ? ORDER BY schema_name, table_name, column_index",
                [CATALOG],
            ).fetchall()
        columns: dict[tuple[str, str], list[Field]] = {}
        names: dict[tuple[str, str], tuple[str, str]] = {}
        for schema, table, column, dtype in rows:
            if hidden_schema(schema):
                continue
            k = (schema.lower(), table.lower())
            names[k] = (schema, table)
            columns.setdefault(k, []).append(Field(column, dtype))
        table_ids = self.clock.table_ids(schema_version)
        tables = {}
        for k, (schema, table) in names.items():
            path = (schema, table)
            tables[k] = Dataset(
                id=paths.path_id("dataset", path),
                path=path,
                type="PHYSICAL_DATASET",
                origin="lake",
                fields=tuple(columns[k]),
                relation=f"{CATALOG}.{quote_ident(schema)}.{quote_ident(table)}",
                lake_table=(schema, table) if k in table_ids else None,
            )
        used = {schema.lower() for schema, _ in names.values()}
        # DuckLake's default schema is a container only once something is in it.
        visible = [s for s in schemas if not hidden_schema(s) and (s != "main" or "main" in used)]
        return _LakeTables(schema_version, visible, tables)

    # -- lookups ----------------------------------------------------------------------

    def resolve(self, parts: Sequence[str], context: Sequence[str] = ()) -> Dataset | None:
        """The dataset `parts` names, relative to `context` first, else absolute."""
        candidates = []
        if context:
            candidates.append((*context, *parts))
        candidates.append(tuple(parts))
        # Clients quote a dotted schema as one identifier: "My Space.folder"."view".
        split = tuple(p for part in parts for p in paths.parse(part))
        if split != tuple(parts):
            candidates.append(split)
        for path in candidates:
            found = self.lookup(path)
            if found is not None:
                return found
        return None

    def lookup(self, path: Sequence[str]) -> Dataset | None:
        """The dataset at exactly `path`, or None."""
        if not path:
            return None
        meta = self.meta()
        k = paths.key(path)
        found = meta.datasets.get(k)
        if found is None:
            top = path[0].lower()
            if len(path) == 2 and top not in meta.sources:
                found = self.lake_tables().tables.get((top, path[1].lower()))
            elif top in meta.sources and meta.sources[top].kind in ("postgres", "mysql"):
                found = self._source_tables_of(meta.sources[top]).get(k)
        if found is not None and found.staleness_seconds is None and k in meta.settings:
            found = replace(found, staleness_seconds=meta.settings[k])
        return found

    def by_id(self, object_id: str) -> Dataset | Container | None:
        """The dataset or container with this id."""
        for c in self.containers():
            if c.id == object_id:
                return c
        for d in self.datasets():
            if d.id == object_id:
                return d
        meta = self.meta()
        for c in meta.containers.values():
            if c.id == object_id:
                return c
        return None

    def container(self, path: Sequence[str]) -> Container | None:
        """The container at exactly `path`, or None."""
        if not path:
            return None
        top = self.top_level(path[0])
        if top is None or len(path) == 1:
            return top
        meta = self.meta()
        found = meta.containers.get(paths.key(path))
        if found is not None:
            return found
        if top.origin in ("postgres", "mysql") and len(path) == 2:
            src = meta.sources[path[0].lower()]
            schemas = {d.path[1].lower(): d.path[1] for d in self._source_tables_of(src).values()}
            if path[1].lower() in schemas:
                real: tuple[str, ...] = (top.path[0], schemas[path[1].lower()])
                return Container(paths.path_id("folder", real), real, "FOLDER", top.origin)
        if top.origin == "files":
            prefix = paths.key(path)[:-1]
            for d in meta.datasets.values():
                if len(d.path) > len(path) and paths.key(d.path).startswith(prefix + ","):
                    real = d.path[: len(path)]
                    return Container(paths.path_id("folder", real), real, "FOLDER", "files")
        return None

    def top_level(self, name: str) -> Container | None:
        """The top-level container called `name`."""
        low = name.lower()
        for c in self.containers():
            if c.path[0].lower() == low:
                return c
        if low.startswith("@"):
            return Container(paths.path_id("home", (name,)), (name,), "HOME", "home")
        return None

    def containers(self) -> list[Container]:
        """Every top-level container except homes: lake layers, sources, spaces."""
        meta = self.meta()
        out = [
            Container(paths.path_id("source", (s,)), (s,), "SOURCE", "lake")
            for s in self.lake_tables().schemas
        ]
        out += [Container(src.id, (src.name,), "SOURCE", src.kind) for src in meta.sources.values()]
        out += [c for c in meta.containers.values() if c.kind == "SPACE"]
        return out

    def datasets(self) -> Iterator[Dataset]:
        """Every dataset: lake tables, source tables, promoted files, virtual datasets."""
        meta = self.meta()
        for d in self.lake_tables().tables.values():
            yield self.lookup(d.path) or d
        for src in meta.sources.values():
            if src.kind in ("postgres", "mysql"):
                try:
                    yield from self._source_tables_of(src).values()
                except EngineError:
                    continue  # an unreachable source hides its tables, not the others
        yield from meta.datasets.values()

    def children(self, path: Sequence[str]) -> tuple[list[Container], list[Dataset]]:
        """The folders and datasets directly inside the container at `path`."""
        n = len(path)
        prefix = [p.lower() for p in path]
        folders: dict[str, Container] = {}
        found: list[Dataset] = []
        for d in self.datasets():
            if len(d.path) <= n or [p.lower() for p in d.path[:n]] != prefix:
                continue
            if len(d.path) == n + 1:
                found.append(d)
            else:
                sub = d.path[: n + 1]
                folders.setdefault(paths.key(sub), self.container(sub) or _folder(sub, d.origin))
        for c in self.meta().containers.values():
            if len(c.path) == n + 1 and [p.lower() for p in c.path[:n]] == prefix:
                folders.setdefault(c.key, c)
        return sorted(folders.values(), key=lambda c: c.path), sorted(found, key=lambda d: d.path)

    def dependents(self, path: Sequence[str]) -> list[Dataset]:
        """Virtual datasets that read `path`, directly or through others."""
        meta = self.meta()
        out: list[Dataset] = []
        todo, seen = [paths.key(path)], set()
        while todo:
            k = todo.pop()
            for owner, reads in meta.dependencies.items():
                if k in reads and owner not in seen:
                    seen.add(owner)
                    out.append(meta.datasets[owner])
                    todo.append(owner)
        return out

    # -- external sources ---------------------------------------------------------------

    def _source_tables_of(self, src: Source) -> dict[str, Dataset]:
        cached = self._source_tables.get(src.id)
        if cached and time.monotonic() - cached[0] < SOURCE_TTL:
            return cached[1]
        self.attach(src)
        with self.project.lake.session() as con:
            rows = con.execute(
                "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
                "WHERE database_name = ? ORDER BY schema_name, table_name, column_index",
                [src.alias],
            ).fetchall()
        cols: dict[tuple[str, str], list[Field]] = {}
        for schema, table, column, dtype in rows:
            if schema.lower() not in _SOURCE_SYSTEM_SCHEMAS:
                cols.setdefault((schema, table), []).append(Field(column, dtype))
        tables = {}
        for (schema, table), fields in cols.items():
            path = (src.name, schema, table)
            relation = f"{quote_ident(src.alias)}.{quote_ident(schema)}.{quote_ident(table)}"
            tables[paths.key(path)] = Dataset(
                id=paths.path_id("dataset", path),
                path=path,
                type="PHYSICAL_DATASET",
                origin=src.kind,
                fields=tuple(fields),
                relation=relation,
            )
        self._source_tables[src.id] = (time.monotonic(), tables)
        return tables

    def attach(self, src: Source) -> None:
        """Attach an external database read-only (once per process)."""
        if src.alias in self._attached or src.kind == "files":
            return
        with self._lock:
            if src.alias in self._attached:
                return
            with self.project.lake.session() as con:
                present = {
                    r[0]
                    for r in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
                }
                if src.alias not in present:
                    dsn = _expand(str(src.config.get("dsn", "")), src.name)
                    kind = {"postgres": "postgres", "mysql": "mysql"}[src.kind]
                    try:
                        con.execute(
                            f"ATTACH {quote_literal(dsn)} AS {quote_ident(src.alias)} "
                            f"(TYPE {kind}, READ_ONLY)"
                        )
                    except duckdb.Error as exc:
                        raise EngineError(
                            f"cannot attach source '{src.name}' ({src.kind}): "
                            f"{_scrub(str(exc).splitlines()[0], src)}",
                            "check that the database is running and the source's dsn is right",
                        ) from None
            self._attached.add(src.alias)

    def prepare_files(self, con: duckdb.DuckDBPyConnection, src: Source) -> None:
        """Create the S3 secret a bucket source needs on this DuckDB instance."""
        cfg = src.config
        location = str(cfg.get("location", ""))
        if not location.startswith("s3://") or src.alias in self._attached:
            return
        bucket = location.removeprefix("s3://").split("/", 1)[0]
        fields = {
            "TYPE": "s3",
            "SCOPE": quote_literal(f"s3://{bucket}"),
            "REGION": quote_literal(str(cfg.get("region", "us-east-1"))),
            "URL_STYLE": quote_literal(str(cfg.get("url_style", "path"))),
            "USE_SSL": "true" if cfg.get("use_ssl", True) else "false",
        }
        if cfg.get("endpoint"):
            fields["ENDPOINT"] = quote_literal(str(cfg["endpoint"]))
        if cfg.get("access_key_id"):
            fields["KEY_ID"] = quote_literal(_expand(str(cfg["access_key_id"]), src.name))
        if cfg.get("secret_access_key"):
            fields["SECRET"] = quote_literal(_expand(str(cfg["secret_access_key"]), src.name))
        body = ", ".join(f"{k} {v}" for k, v in fields.items())
        con.execute(f"CREATE OR REPLACE SECRET {quote_ident(src.alias)} ({body})")
        self._attached.add(src.alias)

    # -- writes -----------------------------------------------------------------------

    def name_taken(self, name: str) -> bool:
        """True when a top-level container already uses `name`."""
        return self.top_level(name) is not None or name.lower() in SYSTEM_SOURCES

    def add_source(self, name: str, kind: str, config: dict[str, Any], by: str) -> Source:
        """Register a source; secrets must be ${ENV_VAR} references."""
        if kind not in ("postgres", "mysql", "files"):
            raise EngineError(f"unknown source type '{kind}'", "use one of: postgres, mysql, files")
        if self.name_taken(name):
            raise EngineError(
                f"a container named '{name}' already exists", "pick another source name"
            )
        for k, v in config.items():
            if k in _SECRET_KEYS and not _ENV.fullmatch(str(v)):
                raise EngineError(
                    f"the source's {k} is written in clear text",
                    "write it as ${ENV_VAR} and export ENV_VAR where Fleuve runs",
                )
        if kind in ("postgres", "mysql") and re.search(
            r"password\s*=\s*(?!\$\{)", str(config.get("dsn", ""))
        ):
            raise EngineError(
                "the source's dsn holds a password in clear text",
                "write password=${ENV_VAR} in the dsn and export ENV_VAR where Fleuve runs",
            )
        if kind == "files" and not config.get("location"):
            raise EngineError(
                "a files source needs a location", "pass location='/path' or 's3://bucket/prefix'"
            )
        if kind in ("postgres", "mysql") and not config.get("dsn"):
            raise EngineError(
                f"a {kind} source needs a dsn",
                "pass dsn='host=... port=... dbname=... user=...'",
            )
        src = Source(str(uuid.uuid4()), name, kind, dict(config))
        if kind != "files":
            self.attach(src)
        with self.db.session() as s:
            s.add(EngineSource(id=src.id, name=name, kind=kind, config=src.config, created_by=by))
            self.bump(s)
        return src

    def drop_source(self, name: str) -> None:
        """Forget a source (its promoted datasets go with it)."""
        src = self.meta().sources.get(name.lower())
        if src is None:
            raise ObjectNotFound(
                f"no source named '{name}'", "list sources with `fleuve sources list`"
            )
        prefix = paths.key((src.name,))[:-1] + ","
        with self.db.session() as s:
            s.execute(delete(EngineSource).where(EngineSource.id == src.id))
            s.execute(delete(EngineDataset).where(EngineDataset.path_key.startswith(prefix)))
            self.bump(s)
        if src.alias in self._attached and src.kind != "files":
            with self.project.lake.session() as con:
                con.execute(f"DETACH {quote_ident(src.alias)}")
            self._attached.discard(src.alias)
        self._source_tables.pop(src.id, None)

    def create_container(self, path: Sequence[str], by: str, *, exist_ok: bool = False) -> bool:
        """Create a space (one part) or a folder; False if it existed and `exist_ok`."""
        path = tuple(path)
        if len(path) == 1:
            if path[0].startswith("@"):
                raise EngineError(
                    f"'{path[0]}' is a home; homes exist already", "create folders inside it"
                )
            if self.name_taken(path[0]):
                if exist_ok and self.meta().containers.get(paths.key(path)):
                    return False
                raise EngineError(
                    f"a container named '{path[0]}' already exists", "pick another name"
                )
        else:
            parent = self.container(path[:-1])
            if (
                parent is None
                or parent.kind not in ("SPACE", "HOME", "FOLDER")
                or parent.origin not in ("space", "home")
            ):
                raise ObjectNotFound(
                    f"no space or folder {paths.render(path[:-1])}",
                    "create the space first with CREATE SPACE",
                )
            if self.meta().containers.get(paths.key(path)) or self.lookup(path):
                if exist_ok:
                    return False
                raise EngineError(f"{paths.render(path)} already exists", "pick another name")
        with self.db.session() as s:
            s.add(
                EngineContainer(
                    id=str(uuid.uuid4()),
                    path_key=paths.key(path),
                    path=list(path),
                    kind="SPACE" if len(path) == 1 else "FOLDER",
                    created_by=by,
                )
            )
            self.bump(s)
        return True

    def drop_container(self, path: Sequence[str]) -> None:
        """Remove an empty space or folder, or raise naming what is inside."""
        found = self.meta().containers.get(paths.key(path))
        if found is None:
            raise ObjectNotFound(f"no space or folder {paths.render(path)}", "check the name")
        folders, datasets = self.children(path)
        if folders or datasets:
            held: list[Container | Dataset] = [*folders, *datasets]
            inside = ", ".join(paths.render(x.path) for x in held[:5])
            raise EngineError(
                f"{paths.render(path)} is not empty: {inside}",
                "drop what it holds first",
            )
        with self.db.session() as s:
            s.execute(delete(EngineContainer).where(EngineContainer.id == found.id))
            self.bump(s)

    def save_dataset(
        self,
        path: Sequence[str],
        *,
        kind: str,
        fields: Sequence[Field],
        by: str,
        sql: str | None = None,
        dialect: str = "duckdb",
        context: Sequence[str] = (),
        options: dict[str, Any] | None = None,
        reads: Sequence[str] = (),
    ) -> Dataset:
        """Create or replace a virtual or files dataset with its direct dependencies."""
        k = paths.key(path)
        with self.db.session() as s:
            row = s.scalar(select(EngineDataset).where(EngineDataset.path_key == k))
            if row is None:
                row = EngineDataset(id=str(uuid.uuid4()), path_key=k, created_by=by, version=0)
                s.add(row)
            row.path, row.kind, row.sql, row.dialect = list(path), kind, sql, dialect
            row.context, row.options = list(context), options or {}
            row.fields = [{"name": f.name, "type": f.type} for f in fields]
            row.error, row.version, row.updated_at = None, (row.version or 0) + 1, utcnow()
            s.flush()
            s.execute(delete(EngineDependency).where(EngineDependency.dataset_id == row.id))
            for dep in sorted(set(reads)):
                s.add(EngineDependency(dataset_id=row.id, path_key=dep))
            self.bump(s)
            dataset_id = row.id
        meta = self.meta()
        return next(d for d in meta.datasets.values() if d.id == dataset_id)

    def mark_broken(self, dataset: Dataset, error: str | None) -> None:
        """Record why a virtual dataset no longer works (None: it works again)."""
        with self.db.session() as s:
            row = s.get(EngineDataset, dataset.id)
            if row is not None and row.error != error:
                row.error = error
                self.bump(s)

    def update_fields(self, dataset: Dataset, fields: Sequence[Field]) -> None:
        """Store a virtual dataset's new columns after an input changed."""
        with self.db.session() as s:
            row = s.get(EngineDataset, dataset.id)
            if row is not None:
                row.fields = [{"name": f.name, "type": f.type} for f in fields]
                row.error = None
                self.bump(s)

    def drop_dataset(self, dataset: Dataset) -> None:
        """Remove a virtual or files dataset and its reflections."""
        with self.db.session() as s:
            s.execute(delete(EngineDataset).where(EngineDataset.id == dataset.id))
            self.bump(s)

    def set_staleness(self, dataset: Dataset, seconds: int | None) -> None:
        """Allow reflections of `dataset` to answer while up to `seconds` behind (None: never)."""
        with self.db.session() as s:
            if dataset.type == "VIRTUAL_DATASET" or dataset.origin == "files":
                row = s.get(EngineDataset, dataset.id)
                if row is None:
                    raise ObjectNotFound(
                        f"no dataset {paths.render(dataset.path)}", "check the name"
                    )
                row.staleness_seconds = seconds
            else:
                setting = s.get(EngineDatasetSetting, dataset.key)
                if setting is None:
                    s.add(EngineDatasetSetting(path_key=dataset.key, staleness_seconds=seconds))
                else:
                    setting.staleness_seconds = seconds
            self.bump(s)

    # -- files --------------------------------------------------------------------------

    def file_location(self, path: Sequence[str]) -> tuple[Source, str]:
        """The files source of `path` and the folder or file it names."""
        src = self.meta().sources.get(path[0].lower())
        if src is None or src.kind != "files":
            raise ObjectNotFound(
                f"{paths.render(path)} is not in a files source",
                "promote folders of a source created with type 'files'",
            )
        base = str(src.config["location"]).rstrip("/")
        return src, "/".join([base, *path[1:]])


def hidden_schema(name: str) -> bool:
    """Lake schemas users never see: the reflections' and DuckDB's internals."""
    return name.startswith("__") or name in ("information_schema", "pg_catalog")


def file_relation(location: str, fmt: str) -> str:
    """DuckDB SQL reading a file or a folder of files, Hive partitions as columns."""
    reader = FILE_FORMATS[fmt]
    is_file = location.lower().endswith(f".{fmt}") or location.lower().endswith(".jsonl")
    glob = location if is_file else f"{location.rstrip('/')}/**/*.{fmt}"
    return f"{reader}({quote_literal(glob)}, hive_partitioning = true, union_by_name = true)"


def _folder(path: Path, origin: str) -> Container:
    return Container(paths.path_id("folder", path), path, "FOLDER", origin)


def _expand(value: str, source: str) -> str:
    """Replace ${VAR} with the environment's value, naming the variable when it is missing."""

    def repl(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in os.environ:
            raise EngineError(
                f"source '{source}' needs the environment variable {name}, which is not set",
                f"export {name}=... where Fleuve runs",
            )
        return os.environ[name]

    return _ENV.sub(repl, value)


def _scrub(message: str, src: Source) -> str:
    """Remove expanded secrets from a driver's error message."""
    for k, v in src.config.items():
        if isinstance(v, str):
            for m in _ENV.finditer(v):
                secret = os.environ.get(m.group(1))
                if secret:
                    message = message.replace(secret, "***")
        if k == "dsn" and isinstance(v, str):
            expanded = v
            for m in _ENV.finditer(v):
                expanded = expanded.replace(m.group(0), os.environ.get(m.group(1), ""))
            message = message.replace(expanded, paths.render((src.name,)))
    return re.sub(r"password=\S+", "password=***", message)
