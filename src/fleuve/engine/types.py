"""Column types as Dremio's clients expect them (catalog fields, DESCRIBE, INFORMATION_SCHEMA)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SIMPLE = {
    "BOOLEAN": "BOOLEAN",
    "TINYINT": "INTEGER",
    "SMALLINT": "INTEGER",
    "INTEGER": "INTEGER",
    "UTINYINT": "INTEGER",
    "USMALLINT": "INTEGER",
    "BIGINT": "BIGINT",
    "UINTEGER": "BIGINT",
    "UBIGINT": "DECIMAL",
    "HUGEINT": "DECIMAL",
    "UHUGEINT": "DECIMAL",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "DATE": "DATE",
    "TIME": "TIME",
    "TIME WITH TIME ZONE": "TIME",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP_S": "TIMESTAMP",
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_NS": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "INTERVAL": "INTERVAL",
    "VARCHAR": "VARCHAR",
    "UUID": "VARCHAR",
    "JSON": "VARCHAR",
    "BLOB": "VARBINARY",
    "BIT": "VARBINARY",
    "VARINT": "VARBINARY",
    "BIGNUM": "VARBINARY",
    # A column of NULLs is sent as an INT column holding nulls.
    "NULL": "INTEGER",
}
# The DECIMAL that integers wider than BIGINT are sent as.
_WIDE_INTEGERS = {"UBIGINT": (20, 0), "HUGEINT": (38, 0), "UHUGEINT": (38, 0)}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


@dataclass(frozen=True)
class Field:
    """One column of a dataset: its name and its DuckDB type."""

    name: str
    type: str

    @property
    def dremio_type(self) -> str:
        """The type's name as Dremio reports it."""
        return dremio_type(self.type)

    def as_json(self) -> dict:
        """The REST catalog shape of a field."""
        out: dict = {"name": self.name, "type": {"name": self.dremio_type}}
        if self.dremio_type == "DECIMAL":
            precision, scale = precision_scale(self.type)
            if precision is not None:
                out["type"].update(precision=precision, scale=scale)
        return out


def dremio_type(duck: str) -> str:
    """Dremio's name for a DuckDB type, e.g. VARCHAR, BIGINT, DECIMAL, LIST, STRUCT."""
    t = duck.upper().strip()
    if t in _SIMPLE:
        return _SIMPLE[t]
    if t.startswith("DECIMAL") or t.startswith("NUMERIC"):
        return "DECIMAL"
    if t.endswith("]"):
        return "LIST"
    if t.startswith("STRUCT"):
        return "STRUCT"
    if t.startswith("MAP"):
        return "MAP"
    if t.startswith("ENUM") or t.startswith("VARCHAR") or t.startswith("UNION"):
        return "VARCHAR"
    return t


def precision_scale(duck: str) -> tuple[int | None, int | None]:
    """Numeric precision and scale of the Dremio type a DuckDB type is sent as."""
    t = duck.upper()
    if m := _DECIMAL.fullmatch(t):
        return int(m.group(1)), int(m.group(2))
    if t in _WIDE_INTEGERS:
        return _WIDE_INTEGERS[t]
    return {
        "TINYINT": (32, 0),
        "SMALLINT": (32, 0),
        "UTINYINT": (32, 0),
        "USMALLINT": (32, 0),
        "INTEGER": (32, 0),
        "UINTEGER": (64, 0),
        "BIGINT": (64, 0),
        "FLOAT": (24, None),
        "DOUBLE": (53, None),
    }.get(t, (None, None))
