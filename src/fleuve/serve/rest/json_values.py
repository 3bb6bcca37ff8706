"""Arrow types and values as Dremio's REST API shows them."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pyarrow as pa


def dremio_type(t: pa.DataType) -> dict[str, Any]:
    """The `{"name": ...}` type object of a column, e.g. {"name": "BIGINT"}."""
    if pa.types.is_dictionary(t):
        return dremio_type(t.value_type)
    if pa.types.is_decimal(t):
        return {"name": "DECIMAL", "precision": t.precision, "scale": t.scale}
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return {"name": "LIST", "subSchema": [{"type": dremio_type(t.value_type)}]}
    if pa.types.is_struct(t):
        return {
            "name": "STRUCT",
            "subSchema": [{"name": f.name, "type": dremio_type(f.type)} for f in t],
        }
    for check, name in _NAMES:
        if check(t):
            return {"name": name}
    return {"name": "OTHER"}


_NAMES = [
    (pa.types.is_boolean, "BOOLEAN"),
    (pa.types.is_int64, "BIGINT"),
    (pa.types.is_uint64, "BIGINT"),
    (pa.types.is_uint32, "BIGINT"),
    (pa.types.is_integer, "INTEGER"),
    (pa.types.is_float64, "DOUBLE"),
    (pa.types.is_floating, "FLOAT"),
    (
        lambda t: (
            pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
        ),
        "VARCHAR",
    ),
    (
        lambda t: (
            pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
        ),
        "VARBINARY",
    ),
    (pa.types.is_date, "DATE"),
    (pa.types.is_time, "TIME"),
    (pa.types.is_timestamp, "TIMESTAMP"),
    (lambda t: pa.types.is_interval(t) or pa.types.is_duration(t), "INTERVAL"),
    (pa.types.is_map, "MAP"),
    (pa.types.is_null, "NULL"),
]


def schema_json(schema: pa.Schema) -> list[dict[str, Any]]:
    """The `schema` list of a results page."""
    return [{"name": f.name, "type": dremio_type(f.type)} for f in schema]


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def dumps(document: Any) -> bytes:
    """JSON bytes for a response holding Arrow values (dates, decimals, bytes...)."""
    return json.dumps(document, default=_default, ensure_ascii=False).encode()
