"""PostgreSQL column types as bronze keeps them, and the SQL that turns their text form into them.

The mapping follows the cursor sync's (DuckDB's PostgreSQL scanner): numerics up to 38 digits as
DECIMAL and wider or unconstrained ones as their exact text, `timestamptz` with its zone,
`json`/`jsonb` as JSON, `bytea` as BLOB, arrays as lists. Types without a DuckDB equal (enums,
ranges, network addresses, ...) stay text.
"""

from __future__ import annotations

import json

from fleuve.lake import quote_ident

_SCALARS = {
    16: "BOOLEAN",
    17: "BLOB",
    18: "VARCHAR",
    19: "VARCHAR",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    25: "VARCHAR",
    26: "BIGINT",
    114: "JSON",
    700: "FLOAT",
    701: "DOUBLE",
    1042: "VARCHAR",
    1043: "VARCHAR",
    1082: "DATE",
    1083: "TIME",
    1114: "TIMESTAMP",
    1184: "TIMESTAMP WITH TIME ZONE",
    1186: "INTERVAL",
    1266: "TIME WITH TIME ZONE",
    2950: "UUID",
    3802: "JSON",
}
# Array type → element type.
_ARRAYS = {
    1000: 16,
    1005: 21,
    1007: 23,
    1016: 20,
    1009: 25,
    1015: 1043,
    1021: 700,
    1022: 701,
    1182: 1082,
    1115: 1114,
    1185: 1184,
    2951: 2950,
    1231: 1700,
}
NUMERIC = 1700


def _numeric(typmod: int) -> str:
    if typmod < 4:
        return "VARCHAR"  # unconstrained: any precision, kept exactly as text
    precision, scale = ((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF
    return f"DECIMAL({precision},{scale})" if precision <= 38 else "VARCHAR"


def duckdb_type(type_oid: int, typmod: int) -> str:
    """The bronze column type of a PostgreSQL column."""
    if type_oid == NUMERIC:
        return _numeric(typmod)
    if type_oid in _SCALARS:
        return _SCALARS[type_oid]
    if type_oid in _ARRAYS:
        element = _ARRAYS[type_oid]
        inner = _numeric(typmod) if element == NUMERIC else _SCALARS[element]
        return "VARCHAR[]" if inner in ("BLOB", "JSON") else f"{inner}[]"
    return "VARCHAR"


def is_array(type_oid: int) -> bool:
    """True for the array types mapped to lists (their text is rewritten as JSON first)."""
    return type_oid in _ARRAYS


def cast_sql(column: str, kind: str) -> str:
    """The expression turning a staged text column into its bronze type."""
    col = quote_ident(column)
    if kind == "VARCHAR":
        return col
    if kind == "BLOB":
        # bytea's text form is hex: \x0102ff.
        return f"from_hex(substr({col}, 3))"
    if kind == "INTERVAL":
        # PostgreSQL writes '-1 days +02:03:04'; DuckDB reads the time part's sign without '+'.
        return f"CAST(replace({col}, ' +', ' ') AS INTERVAL)"
    if kind.endswith("[]"):
        return f"CAST(CAST({col} AS JSON) AS {kind})"
    return f"CAST({col} AS {kind})"


def array_json(text: str | None) -> str | None:
    """A PostgreSQL array literal such as {1,"a b",NULL,{2}} as a JSON array of its texts."""
    if text is None:
        return None
    if text.startswith("["):  # explicit bounds: [0:2]={...}
        text = text[text.index("=") + 1 :]
    value, _ = _array(text, 0)
    return json.dumps(value, ensure_ascii=False)


def _array(text: str, pos: int) -> tuple[list[object], int]:
    assert text[pos] == "{"
    pos += 1
    out: list[object] = []
    while pos < len(text):
        ch = text[pos]
        if ch == "}":
            return out, pos + 1
        if ch == ",":
            pos += 1
            continue
        if ch == "{":
            inner, pos = _array(text, pos)
            out.append(inner)
        elif ch == '"':
            pos += 1
            chars = []
            while text[pos] != '"':
                if text[pos] == "\\":
                    pos += 1
                chars.append(text[pos])
                pos += 1
            out.append("".join(chars))
            pos += 1
        else:
            end = pos
            while text[end] not in ",}":
                end += 1
            item = text[pos:end]
            out.append(None if item == "NULL" else item)
            pos = end
    raise ValueError(f"unterminated array literal: {text!r}")
