"""Query results in the Arrow types Dremio sends its clients, and as its REST API writes them.

Dremio answers with few types: BOOLEAN, INT (int32), BIGINT (int64), FLOAT, DOUBLE,
DECIMAL(p, s), VARCHAR (utf8), VARBINARY, DATE (date64), TIME (time32, ms), TIMESTAMP
(millisecond timestamp without time zone, in UTC), INTERVAL, LIST, STRUCT and MAP. The engine
has more; each of its types leaves Fleuve as the Dremio type it would have become in Dremio:
TINYINT, SMALLINT and the small unsigned integers widen to INT, UINTEGER to BIGINT, UBIGINT
and HUGEINT to DECIMAL, UUID, JSON and ENUM are VARCHAR, TIMESTAMP WITH TIME ZONE is the UTC
instant as a TIMESTAMP, sub-millisecond digits are dropped. See docs/engine.md, "Types".
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import secrets
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fleuve.errors import FleuveError

# sqlalchemy-dremio (Superset's dialect) maps the pandas dtype of each result column through a
# fixed table; its PyPI release that Superset installs knows datetime64[ns] only, so the
# Dremio-style Flight endpoint sends timestamps in nanoseconds (values stay at millisecond
# precision, as Dremio's). Flight SQL and REST carry Dremio's own milliseconds.
MILLISECONDS = "ms"
NANOSECONDS = "ns"
_NS_RANGE = "1677-09-21 to 2262-04-11"


def client_type(t: pa.DataType, timestamp_unit: str = MILLISECONDS) -> pa.DataType:
    """The Arrow type a client receives for an engine column of type `t`."""
    if pa.types.is_timestamp(t):
        return pa.timestamp(timestamp_unit)
    return _nested_type(t)


def _nested_type(t: pa.DataType) -> pa.DataType:
    """Dremio's Arrow type for `t`; timestamps (at any depth) are milliseconds."""
    if isinstance(t, pa.BaseExtensionType):
        return _nested_type(t.storage_type)
    if pa.types.is_dictionary(t):
        return _nested_type(t.value_type)
    if pa.types.is_boolean(t) or pa.types.is_null(t):
        return t
    if pa.types.is_integer(t):
        if t.bit_width < 32 or t == pa.int32():
            return pa.int32()
        if t == pa.uint64():
            return pa.decimal128(20, 0)
        return pa.int64()
    if pa.types.is_floating(t):
        return pa.float64() if t == pa.float64() else pa.float32()
    if pa.types.is_decimal(t):
        return pa.decimal128(min(t.precision, 38), t.scale)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.utf8()
    if pa.types.is_union(t):
        return pa.utf8()
    if (
        pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    ):
        return pa.binary()
    if pa.types.is_date(t):
        return pa.date64()
    if pa.types.is_time(t):
        return pa.time32("ms")
    if pa.types.is_timestamp(t):
        return pa.timestamp("ms")
    if pa.types.is_map(t):
        return pa.map_(_nested_type(t.key_type), _nested_type(t.item_type))
    if (
        pa.types.is_list(t)
        or pa.types.is_large_list(t)
        or pa.types.is_fixed_size_list(t)
        or pa.types.is_list_view(t)
        or pa.types.is_large_list_view(t)
    ):
        return pa.list_(pa.field(t.value_field.name or "$data$", _nested_type(t.value_type)))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _nested_type(f.type), f.nullable) for f in t])
    # Intervals stay month-day-nano: Dremio's day-time and year-month intervals cannot hold
    # the engine's mixed intervals, and pyarrow reads neither of them.
    return t


def client_schema(schema: pa.Schema, timestamp_unit: str = MILLISECONDS) -> pa.Schema:
    """The result schema a client receives for an engine result schema."""
    return pa.schema(
        [pa.field(f.name, client_type(f.type, timestamp_unit), f.nullable) for f in schema]
    )


class Converter:
    """Turns the engine's record batches into the client's types (`schema`)."""

    def __init__(self, source: pa.Schema, timestamp_unit: str = MILLISECONDS) -> None:
        self.schema = client_schema(source, timestamp_unit)
        # A nanosecond column keeps its type on the Dremio-style endpoint but loses its digits.
        self._same = [
            f.type == g.type and not pa.types.is_timestamp(f.type)
            for f, g in zip(source, self.schema, strict=True)
        ]

    def batch(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One engine batch in the client's types."""
        if all(self._same):
            return pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        columns = [
            column if same else _convert(column, field)
            for column, field, same in zip(batch.columns, self.schema, self._same, strict=True)
        ]
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def table(self, table: pa.Table) -> pa.Table:
        """A whole engine result in the client's types."""
        batches = [self.batch(b) for b in table.to_batches()]
        return pa.Table.from_batches(batches, schema=self.schema)


def _convert(array: pa.Array, field: pa.Field) -> pa.Array:
    target = field.type
    if isinstance(array.type, pa.BaseExtensionType):
        array = array.storage
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if pa.types.is_union(array.type):
        return pa.array([None if v is None else _text(v) for v in array.to_pylist()], pa.utf8())
    if pa.types.is_timestamp(array.type):
        return _timestamps(array, field)
    if pa.types.is_time(array.type):
        return array.cast(target, safe=False)  # drops the sub-millisecond digits
    # Nested values may hold timestamps and times: their extra digits are dropped likewise.
    return array.cast(target, safe=not pa.types.is_nested(target))


def _timestamps(array: pa.Array, field: pa.Field) -> pa.Array:
    """UTC instants without zone, cut to the millisecond, in the field's unit."""
    unit = array.type.unit
    if array.type.tz is not None:
        array = array.cast(pa.timestamp(unit))  # the stored values are already UTC
    if unit in ("us", "ns"):
        array = pc.floor_temporal(array, unit="millisecond").cast(pa.timestamp("ms"))
    try:
        return array.cast(field.type)
    except pa.ArrowInvalid:
        raise FleuveError(
            f"column {field.name!r} holds a timestamp outside {_NS_RANGE}, the range of the "
            "nanosecond timestamps the Dremio-style Flight endpoint sends (Superset's dialect "
            "reads no other unit)",
            "read it through Flight SQL or the REST API (millisecond timestamps), or select "
            f'it as text: CAST("{field.name}" AS VARCHAR)',
        ) from None


def _text(value: Any) -> str:
    """A value of a union column as text."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


# -- REST: job results as Dremio's JSON writes them --------------------------------------------


def json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """The rows of a converted result (see `Converter`) with Dremio's JSON value forms."""
    columns = [
        [_json_value(v, f.type) for v in c.to_pylist()]
        for c, f in zip(table.columns, table.schema, strict=True)
    ]
    names = table.column_names
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _json_value(value: Any, t: pa.DataType) -> Any:
    """One value as Dremio writes it: texts for temporal types, exact decimals, base64 bytes."""
    if value is None:
        return None
    if pa.types.is_floating(t):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        # A FLOAT is written with the digits it holds (0.1), not as the double it widens to.
        return Decimal(str(np.float32(value))) if t == pa.float32() else value
    if pa.types.is_timestamp(t):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if pa.types.is_date(t):
        return value.isoformat()
    if pa.types.is_time(t):
        return value.isoformat(timespec="milliseconds")
    if pa.types.is_interval(t):
        return _interval(value)
    if pa.types.is_binary(t):
        return base64.b64encode(value).decode()
    if pa.types.is_map(t):
        return {_map_key(k, t.key_type): _json_value(v, t.item_type) for k, v in value}
    if pa.types.is_list(t):
        return [_json_value(v, t.value_type) for v in value]
    if pa.types.is_struct(t):
        # Dremio leaves a struct's null members out.
        return {f.name: _json_value(value[f.name], f.type) for f in t if value[f.name] is not None}
    return value


def _map_key(key: Any, t: pa.DataType) -> str:
    out = _json_value(key, t)
    return out if isinstance(out, str) else json.dumps(out, default=str)


def _interval(value: Any) -> str:
    """Dremio's interval text: "+001-02" (year to month) or "+001 02:03:04.000" (day to second)."""
    months, days, nanoseconds = value.months, value.days, value.nanoseconds
    year_month = f"{'-' if months < 0 else '+'}{abs(months) // 12:03d}-{abs(months) % 12:02d}"
    if months and not days and not nanoseconds:
        return year_month
    millis = days * 86_400_000 + nanoseconds // 1_000_000
    sign, millis = ("-" if millis < 0 else "+"), abs(millis)
    seconds, ms = divmod(millis, 1000)
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    d, h = divmod(hours, 24)
    day_second = f"{sign}{d:03d} {h:02d}:{m:02d}:{s:02d}.{ms:03d}"
    return f"{year_month} {day_second}" if months else day_second


def dumps(document: Any) -> bytes:
    """JSON bytes of a results document; decimals are written as exact numbers, as Dremio's."""
    marker = secrets.token_hex(8)
    pattern = re.compile(rf'"{marker}([^"]*){marker}"')

    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return f"{marker}{value}{marker}"
        if isinstance(value, (dt.date, dt.time)):
            return value.isoformat()
        return str(value)

    text = json.dumps(document, default=default, ensure_ascii=False, allow_nan=False)
    return pattern.sub(r"\1", text).encode()
