"""INFORMATION_SCHEMA, `sys` tables, SHOW and DESCRIBE, answered from Fleuve's catalog.

Every row is filtered by the caller's grants: a dataset appears only to those who may read
it, a schema only to those who may see something in it. These are the queries
sqlalchemy-dremio (Superset) sends to introspect: `SHOW SCHEMAS`,
`SELECT TABLE_NAME FROM INFORMATION_SCHEMA."TABLES" WHERE TABLE_SCHEMA = '...'` and
`DESCRIBE "schema"."table"`.

A view's definition names what it reads and how it filters: it shows only to administrators,
to the owner of the home it lives in, and to who may read every dataset it reads (as EXPLAIN).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pyarrow as pa

from fleuve.engine import paths
from fleuve.engine.catalog import Catalog, Dataset
from fleuve.engine.grants import Grants, Principal, not_found
from fleuve.engine.reflections.service import Reflections
from fleuve.engine.types import Field, dremio_type, precision_scale

CATALOG_NAME = "DREMIO"
SYSTEM_SCHEMAS = ("INFORMATION_SCHEMA", "sys")
_S, _I, _B = pa.string(), pa.int64(), pa.bool_()
_TS = pa.timestamp("us", tz="UTC")


def sql_type(duck: str) -> str:
    """A column's DATA_TYPE as Dremio's INFORMATION_SCHEMA and DESCRIBE spell it."""
    name = dremio_type(duck)
    return "CHARACTER VARYING" if name == "VARCHAR" else name


SCHEMAS: dict[str, pa.Schema] = {
    "information_schema.catalogs": pa.schema(
        [("CATALOG_NAME", _S), ("CATALOG_DESCRIPTION", _S), ("CATALOG_CONNECT", _S)]
    ),
    "information_schema.schemata": pa.schema(
        [
            ("CATALOG_NAME", _S),
            ("SCHEMA_NAME", _S),
            ("SCHEMA_OWNER", _S),
            ("TYPE", _S),
            ("IS_MUTABLE", _S),
        ]
    ),
    "information_schema.tables": pa.schema(
        [("TABLE_CATALOG", _S), ("TABLE_SCHEMA", _S), ("TABLE_NAME", _S), ("TABLE_TYPE", _S)]
    ),
    "information_schema.views": pa.schema(
        [("TABLE_CATALOG", _S), ("TABLE_SCHEMA", _S), ("TABLE_NAME", _S), ("VIEW_DEFINITION", _S)]
    ),
    "information_schema.columns": pa.schema(
        [
            ("TABLE_CATALOG", _S),
            ("TABLE_SCHEMA", _S),
            ("TABLE_NAME", _S),
            ("COLUMN_NAME", _S),
            ("ORDINAL_POSITION", _I),
            ("COLUMN_DEFAULT", _S),
            ("IS_NULLABLE", _S),
            ("DATA_TYPE", _S),
            ("CHARACTER_MAXIMUM_LENGTH", _I),
            ("NUMERIC_PRECISION", _I),
            ("NUMERIC_PRECISION_RADIX", _I),
            ("NUMERIC_SCALE", _I),
            ("DATETIME_PRECISION", _I),
        ]
    ),
    "sys.jobs": pa.schema(
        [
            ("job_id", _S),
            ("user_name", _S),
            ("status", _S),
            ("query_type", _S),
            ("query", _S),
            ("queried_datasets", _S),
            ("submitted_ts", _TS),
            ("execution_start_ts", _TS),
            ("final_state_ts", _TS),
            ("planning_ms", pa.float64()),
            ("execution_ms", pa.float64()),
            ("rows_returned", _I),
            ("bytes_returned", _I),
            ("accelerated", _B),
            ("reflections_chosen", _S),
            ("error_msg", _S),
        ]
    ),
    "sys.reflections": pa.schema(
        [
            ("reflection_id", _S),
            ("reflection_name", _S),
            ("type", _S),
            ("status", _S),
            ("dataset_id", _S),
            ("dataset_name", _S),
            ("enabled", _B),
            ("refresh_policy", _S),
            ("refresh_every_seconds", _I),
            ("last_refresh_ts", _TS),
            ("last_refresh_seconds", pa.float64()),
            ("last_refresh_mode", _S),
            ("built_from_snapshot", _I),
            ("record_count", _I),
            ("size_bytes", _I),
            ("considered_count", _I),
            ("matched_count", _I),
            ("chosen_count", _I),
            ("error", _S),
        ]
    ),
}


class SystemTables:
    """Builds the system tables for one caller."""

    def __init__(
        self,
        catalog: Catalog,
        grants: Grants,
        reflections: Reflections,
        jobs: Callable[[Principal], list[Any]],
    ) -> None:
        self.catalog = catalog
        self.grants = grants
        self.reflections = reflections
        self.jobs = jobs

    def exists(self, name: str) -> bool:
        """True for a known system table (lowercase `schema.table`)."""
        return name in SCHEMAS

    def table(self, name: str, who: Principal) -> pa.Table:
        """The rows of system table `name` that `who` may see."""
        if name not in SCHEMAS:
            raise not_found(name.split("."))
        rows = getattr(self, "_" + name.replace(".", "_"))(who)
        return pa.Table.from_pylist(list(rows), schema=SCHEMAS[name])

    # -- what a caller may see ----------------------------------------------------------

    def visible_datasets(self, who: Principal) -> list[Dataset]:
        """The datasets `who` may read, in path order."""
        out = [d for d in self.catalog.datasets() if self.grants.allows(who, "SELECT", d.path)]
        return sorted(out, key=lambda d: [p.lower() for p in d.path])

    def schemas(self, who: Principal) -> list[str]:
        """Dotted names of the containers `who` may see, system schemas included."""
        names: dict[str, str] = {}
        for d in self.visible_datasets(who):
            for n in range(1, len(d.path)):
                name = ".".join(d.path[:n])
                names.setdefault(name.lower(), name)
        for c in self.catalog.containers():
            if self.grants.sees_container(who, c.path):
                names.setdefault(".".join(c.path).lower(), ".".join(c.path))
        for c in self.catalog.meta().containers.values():
            if self.grants.sees_container(who, c.path):
                names.setdefault(".".join(c.path).lower(), ".".join(c.path))
        home = who.home
        names.setdefault(home.lower(), home)
        for s in SYSTEM_SCHEMAS:
            names.setdefault(s.lower(), s)
        return sorted(names.values(), key=str.lower)

    # -- INFORMATION_SCHEMA -------------------------------------------------------------

    def _information_schema_catalogs(self, who: Principal) -> Iterable[dict]:
        yield {"CATALOG_NAME": CATALOG_NAME, "CATALOG_DESCRIPTION": "Fleuve", "CATALOG_CONNECT": ""}

    def _information_schema_schemata(self, who: Principal) -> Iterable[dict]:
        for name in self.schemas(who):
            system = name in SYSTEM_SCHEMAS
            yield {
                "CATALOG_NAME": CATALOG_NAME,
                "SCHEMA_NAME": name,
                "SCHEMA_OWNER": "<owner>",
                "TYPE": "SIMPLE",
                "IS_MUTABLE": "NO" if system else "YES",
            }

    def _information_schema_tables(self, who: Principal) -> Iterable[dict]:
        for name in SCHEMAS:
            schema, table = name.split(".")
            yield {
                "TABLE_CATALOG": CATALOG_NAME,
                "TABLE_SCHEMA": "INFORMATION_SCHEMA" if schema == "information_schema" else schema,
                "TABLE_NAME": table.upper() if schema == "information_schema" else table,
                "TABLE_TYPE": "SYSTEM_TABLE",
            }
        for d in self.visible_datasets(who):
            yield {
                "TABLE_CATALOG": CATALOG_NAME,
                "TABLE_SCHEMA": ".".join(d.path[:-1]),
                "TABLE_NAME": d.path[-1],
                "TABLE_TYPE": "VIEW" if d.virtual else "TABLE",
            }

    def _information_schema_views(self, who: Principal) -> Iterable[dict]:
        for d in self.visible_datasets(who):
            if d.virtual:
                yield {
                    "TABLE_CATALOG": CATALOG_NAME,
                    "TABLE_SCHEMA": ".".join(d.path[:-1]),
                    "TABLE_NAME": d.path[-1],
                    "VIEW_DEFINITION": d.sql
                    if sees_definition(self.catalog, self.grants, who, d)
                    else None,
                }

    def _information_schema_columns(self, who: Principal) -> Iterable[dict]:
        for d in self.visible_datasets(who):
            for i, f in enumerate(d.fields, start=1):
                yield column_row(d.path, i, f)

    # -- sys ----------------------------------------------------------------------------

    def _sys_jobs(self, who: Principal) -> Iterable[dict]:
        for job in self.jobs(who):
            chosen = [
                r.get("reflectionName") or r.get("reflectionId")
                for r in job.reflections
                if r.get("relationship") == "CHOSEN"
            ]
            yield {
                "job_id": job.id,
                "user_name": job.user,
                "status": job.state,
                "query_type": job.query_type,
                "query": job.sql,
                "queried_datasets": ", ".join(job.datasets),
                "submitted_ts": job.submitted_at,
                "execution_start_ts": job.started_at,
                "final_state_ts": job.ended_at,
                "planning_ms": job.planning_ms,
                "execution_ms": job.execution_ms,
                "rows_returned": job.row_count,
                "bytes_returned": job.bytes,
                "accelerated": bool(chosen),
                "reflections_chosen": ", ".join(str(c) for c in chosen),
                "error_msg": job.error,
            }

    def _sys_reflections(self, who: Principal) -> Iterable[dict]:
        for r in self.reflections.all():
            if not self.grants.allows(who, "SELECT", r.dataset_path):
                continue
            dataset = self.catalog.lookup(r.dataset_path)
            fresh = self.reflections.fresh(r) if r.table_name else None
            status = r.as_json(dataset.id if dataset else None, fresh)["status"]["combinedStatus"]
            considered, matched, chosen = self.reflections.counts(r.id)
            yield {
                "reflection_id": r.id,
                "reflection_name": r.name,
                "type": r.kind,
                "status": status,
                "dataset_id": dataset.id if dataset else None,
                "dataset_name": paths.render(r.dataset_path),
                "enabled": r.enabled,
                "refresh_policy": r.refresh_policy,
                "refresh_every_seconds": r.refresh_seconds,
                "last_refresh_ts": r.refreshed_at,
                "last_refresh_seconds": r.refresh_seconds_taken,
                "last_refresh_mode": r.refresh_mode,
                "built_from_snapshot": r.built_snapshot,
                "record_count": r.rows,
                "size_bytes": r.bytes,
                "considered_count": considered,
                "matched_count": matched,
                "chosen_count": chosen,
                "error": r.error,
            }

    # -- SHOW and DESCRIBE ----------------------------------------------------------------

    def show_schemas(self, who: Principal, like: str | None = None) -> pa.Table:
        """SHOW SCHEMAS: one SCHEMA_NAME per visible container."""
        names = self.schemas(who)
        if like:
            import re

            pattern = re.compile(
                "^"
                + "".join(
                    ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in like.strip("'")
                )
                + "$",
                re.IGNORECASE,
            )
            names = [n for n in names if pattern.match(n)]
        return pa.table({"SCHEMA_NAME": pa.array(names, _S)})

    def show_tables(self, who: Principal, path: Sequence[str] | None) -> pa.Table:
        """SHOW TABLES [IN path]: TABLE_SCHEMA, TABLE_NAME of visible datasets."""
        rows = [
            (".".join(d.path[:-1]), d.path[-1])
            for d in self.visible_datasets(who)
            if path is None or [p.lower() for p in d.path[:-1]] == [p.lower() for p in _split(path)]
        ]
        return pa.table(
            {
                "TABLE_SCHEMA": pa.array([r[0] for r in rows], _S),
                "TABLE_NAME": pa.array([r[1] for r in rows], _S),
            }
        )


def sees_definition(catalog: Catalog, grants: Grants, who: Principal, view: Dataset) -> bool:
    """True when `who` may see the view's SQL: admin, its home's owner, or reader of its inputs."""
    if who.admin or view.path[0].lower() == who.home.lower():
        return True
    reads = catalog.meta().dependencies.get(view.key, set())
    return all(grants.allows(who, "SELECT", json.loads(key)) for key in reads)


def column_row(path: Sequence[str], position: int, f: Field) -> dict:
    """One INFORMATION_SCHEMA.COLUMNS row."""
    precision, scale = precision_scale(f.type)
    radix = (10 if dremio_type(f.type) == "DECIMAL" else 2) if precision is not None else None
    return {
        "TABLE_CATALOG": CATALOG_NAME,
        "TABLE_SCHEMA": ".".join(path[:-1]),
        "TABLE_NAME": path[-1],
        "COLUMN_NAME": f.name,
        "ORDINAL_POSITION": position,
        "COLUMN_DEFAULT": None,
        "IS_NULLABLE": "YES",
        "DATA_TYPE": sql_type(f.type),
        "CHARACTER_MAXIMUM_LENGTH": 65536 if dremio_type(f.type) == "VARCHAR" else None,
        "NUMERIC_PRECISION": precision,
        "NUMERIC_PRECISION_RADIX": radix,
        "NUMERIC_SCALE": scale,
        # Times and timestamps are sent in milliseconds.
        "DATETIME_PRECISION": 3 if dremio_type(f.type) in ("TIMESTAMP", "TIME") else None,
    }


def describe_table(fields: Sequence[Field]) -> pa.Table:
    """DESCRIBE's answer: COLUMN_NAME, DATA_TYPE, IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE."""
    ps = [precision_scale(f.type) for f in fields]
    return pa.table(
        {
            "COLUMN_NAME": pa.array([f.name for f in fields], _S),
            "DATA_TYPE": pa.array([sql_type(f.type) for f in fields], _S),
            "IS_NULLABLE": pa.array(["YES"] * len(fields), _S),
            "NUMERIC_PRECISION": pa.array([p for p, _ in ps], _I),
            "NUMERIC_SCALE": pa.array([s for _, s in ps], _I),
        }
    )


def _split(path: Sequence[str]) -> list[str]:
    return [p for part in path for p in paths.parse(part)]
