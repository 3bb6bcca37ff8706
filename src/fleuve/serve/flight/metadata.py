"""Flight SQL's catalog commands (GetCatalogs, GetDbSchemas, GetTables, GetSqlInfo, ...).

Their result schemas are fixed by the protocol; the answers come from the engine's
INFORMATION_SCHEMA as the caller sees it, so grants apply.
"""

from __future__ import annotations

import pyarrow as pa

from fleuve import __version__
from fleuve.serve import visibility
from fleuve.serve.flight import protocol
from fleuve.serve.queries import Caller, Queries
from fleuve.serve.wire_types import client_schema

_utf8 = pa.utf8()
_KEY_COLUMNS = [
    pa.field("catalog_name", _utf8),
    pa.field("db_schema_name", _utf8),
    pa.field("table_name", _utf8, nullable=False),
    pa.field("column_name", _utf8, nullable=False),
    pa.field("key_name", _utf8),
    pa.field("key_sequence", pa.int32(), nullable=False),
]
_FOREIGN_KEY_COLUMNS = [
    pa.field("pk_catalog_name", _utf8),
    pa.field("pk_db_schema_name", _utf8),
    pa.field("pk_table_name", _utf8, nullable=False),
    pa.field("pk_column_name", _utf8, nullable=False),
    pa.field("fk_catalog_name", _utf8),
    pa.field("fk_db_schema_name", _utf8),
    pa.field("fk_table_name", _utf8, nullable=False),
    pa.field("fk_column_name", _utf8, nullable=False),
    pa.field("key_sequence", pa.int32(), nullable=False),
    pa.field("fk_key_name", _utf8),
    pa.field("pk_key_name", _utf8),
    pa.field("update_rule", pa.uint8(), nullable=False),
    pa.field("delete_rule", pa.uint8(), nullable=False),
]
_SQL_INFO_VALUE = pa.dense_union(
    [
        pa.field("string_value", _utf8),
        pa.field("bool_value", pa.bool_()),
        pa.field("bigint_value", pa.int64()),
        pa.field("int32_bitmask", pa.int32()),
        pa.field("string_list", pa.list_(_utf8)),
        pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32()))),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "CommandGetCatalogs": pa.schema([pa.field("catalog_name", _utf8, nullable=False)]),
    "CommandGetDbSchemas": pa.schema(
        [pa.field("catalog_name", _utf8), pa.field("db_schema_name", _utf8, nullable=False)]
    ),
    "CommandGetTables": pa.schema(
        [
            pa.field("catalog_name", _utf8),
            pa.field("db_schema_name", _utf8),
            pa.field("table_name", _utf8, nullable=False),
            pa.field("table_type", _utf8, nullable=False),
        ]
    ),
    "CommandGetTableTypes": pa.schema([pa.field("table_type", _utf8, nullable=False)]),
    "CommandGetPrimaryKeys": pa.schema(_KEY_COLUMNS),
    "CommandGetExportedKeys": pa.schema(_FOREIGN_KEY_COLUMNS),
    "CommandGetImportedKeys": pa.schema(_FOREIGN_KEY_COLUMNS),
    "CommandGetCrossReference": pa.schema(_FOREIGN_KEY_COLUMNS),
    "CommandGetSqlInfo": pa.schema(
        [
            pa.field("info_name", pa.uint32(), nullable=False),
            pa.field("value", _SQL_INFO_VALUE, nullable=False),
        ]
    ),
}
TABLES_WITH_SCHEMA = SCHEMAS["CommandGetTables"].append(
    pa.field("table_schema", pa.binary(), nullable=False)
)

# SqlInfo ids (FlightSql.proto) → value; the union member follows from the Python type.
SQL_INFO: dict[int, object] = {
    0: "Fleuve",  # FLIGHT_SQL_SERVER_NAME
    1: __version__,  # FLIGHT_SQL_SERVER_VERSION
    2: pa.__version__,  # FLIGHT_SQL_SERVER_ARROW_VERSION
    3: False,  # FLIGHT_SQL_SERVER_READ_ONLY
    4: True,  # FLIGHT_SQL_SERVER_SQL
    5: False,  # FLIGHT_SQL_SERVER_SUBSTRAIT
    8: ("int32", 0),  # FLIGHT_SQL_SERVER_TRANSACTION: none
    9: False,  # FLIGHT_SQL_SERVER_CANCEL
    100: ("int32", 0),  # FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT: none
    101: ("int32", 0),  # FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT: none
    500: False,  # SQL_DDL_CATALOG
    501: True,  # SQL_DDL_SCHEMA
    502: True,  # SQL_DDL_TABLE
    503: ("int32", 1),  # SQL_IDENTIFIER_CASE: case-insensitive
    504: '"',  # SQL_IDENTIFIER_QUOTE_CHAR
    505: ("int32", 1),  # SQL_QUOTED_IDENTIFIER_CASE: case-insensitive
    506: True,  # SQL_ALL_TABLES_ARE_SELECTABLE
    507: ("int32", 3),  # SQL_NULL_ORDERING: nulls sorted at end
    529: "schema",  # SQL_SCHEMA_TERM
    531: "catalog",  # SQL_CATALOG_TERM
    532: True,  # SQL_CATALOG_AT_START
}


def schema_for(message: protocol.Command) -> pa.Schema:
    """The result schema of a catalog command."""
    if protocol.name_of(message) == "CommandGetTables" and message.include_schema:
        return TABLES_WITH_SCHEMA
    return SCHEMAS[protocol.name_of(message)]


def answer(message: protocol.Command, queries: Queries, caller: Caller) -> pa.Table:
    """The rows answering one catalog command."""
    name = protocol.name_of(message)
    schema = SCHEMAS[name]
    if name == "CommandGetCatalogs":
        found = sorted({c for c, _ in visibility.schemas(queries, caller)})
        return pa.Table.from_pylist([{"catalog_name": c} for c in found], schema=schema)
    if name == "CommandGetTableTypes":
        rows = [{"table_type": t} for t in sorted(set(visibility.TABLE_TYPES.values()))]
        return pa.Table.from_pylist(rows, schema=schema)
    if name == "CommandGetSqlInfo":
        return sql_info(list(message.info))
    if name == "CommandGetDbSchemas":
        pattern = _optional(message, "db_schema_filter_pattern")
        rows = [
            {"catalog_name": c, "db_schema_name": s}
            for c, s in visibility.schemas(queries, caller, schema_like=pattern)
            if _catalog_matches(message, c)
        ]
        return pa.Table.from_pylist(rows, schema=schema)
    if name == "CommandGetTables":
        return _tables(message, queries, caller)
    return schema.empty_table()  # keys: the lake declares no primary or foreign keys


def _optional(message: protocol.Command, field: str) -> str | None:
    return getattr(message, field) if message.HasField(field) else None


def _catalog_matches(message: protocol.Command, name: str) -> bool:
    return not message.HasField("catalog") or message.catalog == name


def _tables(message: protocol.Command, queries: Queries, caller: Caller) -> pa.Table:
    schema = TABLES_WITH_SCHEMA if message.include_schema else SCHEMAS["CommandGetTables"]
    found = visibility.datasets(
        queries,
        caller,
        schema_like=_optional(message, "db_schema_filter_pattern"),
        name_like=_optional(message, "table_name_filter_pattern"),
    )
    types = set(message.table_types)
    rows = []
    for dataset in found:
        if (types and dataset.type not in types) or not _catalog_matches(message, dataset.catalog):
            continue
        row = {
            "catalog_name": dataset.catalog,
            "db_schema_name": dataset.schema,
            "table_name": dataset.name,
            "table_type": dataset.type,
        }
        if message.include_schema:
            columns = client_schema(visibility.arrow_schema(queries, caller, dataset))
            row["table_schema"] = columns.serialize().to_pybytes()
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema)


def sql_info(wanted: list[int]) -> pa.Table:
    """GetSqlInfo's rows for the requested ids (all known ones when none are asked)."""
    ids = [i for i in (wanted or SQL_INFO) if i in SQL_INFO]
    children: list[list] = [[] for _ in _SQL_INFO_VALUE]
    type_ids, offsets = [], []
    for info in ids:
        value = SQL_INFO[info]
        if isinstance(value, tuple):
            code, value = 3, value[1]
        elif isinstance(value, bool):
            code = 1
        elif isinstance(value, int):
            code = 2
        elif isinstance(value, list):
            code = 4
        else:
            code = 0
        type_ids.append(code)
        offsets.append(len(children[code]))
        children[code].append(value)
    union = pa.UnionArray.from_dense(
        pa.array(type_ids, pa.int8()),
        pa.array(offsets, pa.int32()),
        [
            pa.array(values, type=f.type)
            for values, f in zip(children, _SQL_INFO_VALUE, strict=True)
        ],
        [f.name for f in _SQL_INFO_VALUE],
    )
    return pa.Table.from_arrays(
        [pa.array(ids, pa.uint32()), union], schema=SCHEMAS["CommandGetSqlInfo"]
    )
