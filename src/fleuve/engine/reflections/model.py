"""A reflection as the engine sees it: its definition, its layout and its last build."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fleuve.engine.reflections.definition import GRAINS, Dimension, Measure, ReflectionSpec
from fleuve.engine.reflections.match import AggregateLayout, layout
from fleuve.metadata.engine import EngineReflection

REFLECTION_SCHEMA = "__reflections"


@dataclass(frozen=True)
class Reflection:
    """One reflection: what it keeps, how it refreshes, what it last built."""

    id: str
    name: str
    dataset_key: str
    dataset_path: tuple[str, ...]
    kind: str
    enabled: bool
    spec: ReflectionSpec
    refresh_policy: str
    refresh_seconds: int | None
    table_name: str | None
    built_snapshot: int | None
    built_inputs: dict[str, Any]
    refreshed_at: datetime | None
    refresh_started_at: datetime | None
    refresh_seconds_taken: float | None
    refresh_mode: str | None
    rows: int
    bytes: int
    considered: int
    matched: int
    chosen: int
    error: str | None
    version: int
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_row(cls, row: EngineReflection) -> Reflection:
        """The reflection stored in `row`."""
        d = row.definition or {}
        spec = ReflectionSpec(
            kind=row.kind,
            display=tuple(d.get("display", ())),
            dimensions=tuple(
                Dimension(x["column"], x.get("grain")) for x in d.get("dimensions", ())
            ),
            measures=tuple(Measure(x["column"], tuple(x["types"])) for x in d.get("measures", ())),
            partition=tuple(d.get("partition", ())),
            sort=tuple(d.get("sort", ())),
        )
        return cls(
            id=row.id,
            name=row.name,
            dataset_key=row.dataset_key,
            dataset_path=tuple(row.dataset_path),
            kind=row.kind,
            enabled=row.enabled,
            spec=spec,
            refresh_policy=row.refresh_policy,
            refresh_seconds=row.refresh_seconds,
            table_name=row.table_name,
            built_snapshot=row.built_snapshot,
            built_inputs=dict(row.built_inputs or {}),
            refreshed_at=row.refreshed_at,
            refresh_started_at=row.refresh_started_at,
            refresh_seconds_taken=row.refresh_seconds_taken,
            refresh_mode=row.refresh_mode,
            rows=row.rows or 0,
            bytes=row.bytes or 0,
            considered=row.considered or 0,
            matched=row.matched or 0,
            chosen=row.chosen or 0,
            error=row.error,
            version=row.version,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    @property
    def layout(self) -> AggregateLayout:
        """How the aggregation reflection's table is laid out."""
        return self.build_plan()[0]

    def build_plan(self) -> tuple[AggregateLayout, list[tuple[str, str]]]:
        """The layout and the (expression, column) pairs that build the table."""
        return _layout(self.spec)

    @property
    def column_types(self) -> dict[str, str]:
        """The built table's column types (lowercase names), as DuckDB describes them."""
        return self.built_inputs.get("columns") or {}

    @property
    def cost(self) -> float:
        """What reading it costs, relatively: its rows, weighted by its width for raw ones."""
        width = len(self.spec.display) if self.kind == "RAW" else 1
        return float(self.rows) * (1.0 + width / 100.0)

    @property
    def expires_at(self) -> datetime | None:
        """When a periodic reflection is due again."""
        if self.refresh_policy == "EVERY" and self.refresh_seconds and self.refreshed_at:
            return self.refreshed_at + timedelta(seconds=self.refresh_seconds)
        return None

    def as_json(self, dataset_id: str | None, fresh: bool | None) -> dict[str, Any]:
        """The REST API v3 reflection object, with Fleuve's refresh policy and metrics."""
        s = self.spec
        if not self.enabled:
            combined = "DISABLED"
        elif self.refresh_started_at:
            combined = "REFRESHING"
        elif self.table_name is None:
            combined = "FAILED" if self.error else "CANNOT_ACCELERATE_SCHEDULED"
        elif fresh is False:
            combined = "EXPIRED"
        else:
            combined = "CAN_ACCELERATE_WITH_FAILURES" if self.error else "CAN_ACCELERATE"
        out: dict[str, Any] = {
            "id": self.id,
            "type": self.kind,
            "name": self.name,
            "datasetId": dataset_id,
            "datasetPath": list(self.dataset_path),
            "enabled": self.enabled,
            "tag": str(self.version),
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
            "partitionFields": [{"name": c} for c in s.partition],
            "sortFields": [{"name": c} for c in s.sort],
            "status": {
                "availability": "AVAILABLE" if self.table_name else "NONE",
                "combinedStatus": combined,
                "refreshStatus": "MANUAL" if self.refresh_policy == "MANUAL" else "SCHEDULED",
                "lastRefreshFinished": _iso(self.refreshed_at),
                "expiresAt": _iso(self.expires_at),
                "failureCount": 1 if self.error else 0,
                "lastFailureMessage": self.error,
            },
            "refreshPolicy": {"type": self.refresh_policy, "everySeconds": self.refresh_seconds},
            "metrics": {
                "rows": self.rows,
                "sizeBytes": self.bytes,
                "lastRefreshSeconds": self.refresh_seconds_taken,
                "lastRefreshMode": self.refresh_mode,
                "builtFromSnapshot": self.built_snapshot,
                "considered": self.considered,
                "matched": self.matched,
                "chosen": self.chosen,
            },
        }
        if self.kind == "RAW":
            out["displayFields"] = [{"name": c} for c in s.display]
        else:
            out["dimensionFields"] = [d.as_json() for d in s.dimensions]
            out["measureFields"] = [m.as_json() for m in s.measures]
        return out


_LAYOUTS: dict[ReflectionSpec, tuple[AggregateLayout, list[tuple[str, str]]]] = {}


def _layout(spec: ReflectionSpec) -> tuple[AggregateLayout, list[tuple[str, str]]]:
    if spec not in _LAYOUTS:
        _LAYOUTS[spec] = layout(spec.dimensions, {m.column: m.types for m in spec.measures})
    return _LAYOUTS[spec]


def spec_json(spec: ReflectionSpec) -> dict[str, Any]:
    """The definition as stored in the metadata database."""
    return {
        "display": list(spec.display),
        "dimensions": [{"column": d.column, "grain": d.grain} for d in spec.dimensions],
        "measures": [{"column": m.column, "types": list(m.types)} for m in spec.measures],
        "partition": list(spec.partition),
        "sort": list(spec.sort),
    }


def spec_from_rest(body: dict[str, Any]) -> ReflectionSpec:
    """A definition from the REST API's reflection object."""
    from fleuve.engine.errors import EngineError

    kind = str(body.get("type", "")).upper()
    if kind not in ("RAW", "AGGREGATION"):
        raise EngineError("a reflection's type is RAW or AGGREGATION", 'set "type"')

    def names(key: str) -> tuple[str, ...]:
        return tuple(str(f["name"]) for f in body.get(key) or [])

    dims = []
    for f in body.get("dimensionFields") or []:
        g = str(f.get("granularity") or "NORMAL").lower()
        grain = None if g == "normal" else "day" if g == "date" else g
        if grain is not None and grain not in GRAINS:
            raise EngineError(
                f"unknown granularity '{f.get('granularity')}'",
                "use NORMAL, DATE or one of " + ", ".join(x.upper() for x in GRAINS),
            )
        dims.append(Dimension(str(f["name"]), grain))
    measures = []
    for f in body.get("measureFields") or []:
        types = tuple(str(t).upper() for t in f.get("measureTypeList") or ["SUM", "COUNT"])
        measures.append(Measure(str(f["name"]), types))
    spec = ReflectionSpec(
        kind,
        display=names("displayFields"),
        dimensions=tuple(dims),
        measures=tuple(measures),
        partition=names("partitionFields"),
        sort=names("sortFields"),
    )
    if kind == "RAW" and not spec.display:
        raise EngineError("a raw reflection needs displayFields", "list the columns to keep")
    if kind == "AGGREGATION" and not (spec.dimensions or spec.measures):
        raise EngineError(
            "an aggregation reflection needs dimensionFields or measureFields",
            "list the grouping columns and the measured ones",
        )
    return spec


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
