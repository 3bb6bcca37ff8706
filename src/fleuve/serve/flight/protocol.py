"""The Flight SQL protocol messages (arrow.flight.protocol.sql), built from their field numbers.

Flight SQL clients wrap each command in a `google.protobuf.Any`. The message classes below
are generated at import time from a descriptor, so no generated code or protoc is needed;
the field numbers follow FlightSql.proto.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

PACKAGE = "arrow.flight.protocol.sql"
TYPE_URL_PREFIX = f"type.googleapis.com/{PACKAGE}."

_S, _B, _BY, _U32, _I32, _I64 = "string", "bool", "bytes", "uint32", "int32", "int64"
_OPT, _REP = "optional", "repeated"

# name → [(field, number, type, label)]
MESSAGES: dict[str, list[tuple[str, int, str, str]]] = {
    "CommandGetSqlInfo": [("info", 1, _U32, _REP)],
    "CommandGetXdbcTypeInfo": [("data_type", 1, _I32, _OPT)],
    "CommandGetCatalogs": [],
    "CommandGetDbSchemas": [("catalog", 1, _S, _OPT), ("db_schema_filter_pattern", 2, _S, _OPT)],
    "CommandGetTables": [
        ("catalog", 1, _S, _OPT),
        ("db_schema_filter_pattern", 2, _S, _OPT),
        ("table_name_filter_pattern", 3, _S, _OPT),
        ("table_types", 4, _S, _REP),
        ("include_schema", 5, _B, _OPT),
    ],
    "CommandGetTableTypes": [],
    "CommandGetPrimaryKeys": [
        ("catalog", 1, _S, _OPT),
        ("db_schema", 2, _S, _OPT),
        ("table", 3, _S, _OPT),
    ],
    "CommandGetExportedKeys": [
        ("catalog", 1, _S, _OPT),
        ("db_schema", 2, _S, _OPT),
        ("table", 3, _S, _OPT),
    ],
    "CommandGetImportedKeys": [
        ("catalog", 1, _S, _OPT),
        ("db_schema", 2, _S, _OPT),
        ("table", 3, _S, _OPT),
    ],
    "CommandGetCrossReference": [
        ("pk_catalog", 1, _S, _OPT),
        ("pk_db_schema", 2, _S, _OPT),
        ("pk_table", 3, _S, _OPT),
        ("fk_catalog", 4, _S, _OPT),
        ("fk_db_schema", 5, _S, _OPT),
        ("fk_table", 6, _S, _OPT),
    ],
    "ActionCreatePreparedStatementRequest": [
        ("query", 1, _S, _OPT),
        ("transaction_id", 2, _BY, _OPT),
    ],
    "ActionCreatePreparedStatementResult": [
        ("prepared_statement_handle", 1, _BY, _OPT),
        ("dataset_schema", 2, _BY, _OPT),
        ("parameter_schema", 3, _BY, _OPT),
    ],
    "ActionClosePreparedStatementRequest": [("prepared_statement_handle", 1, _BY, _OPT)],
    "CommandStatementQuery": [("query", 1, _S, _OPT), ("transaction_id", 2, _BY, _OPT)],
    "TicketStatementQuery": [("statement_handle", 1, _BY, _OPT)],
    "CommandPreparedStatementQuery": [("prepared_statement_handle", 1, _BY, _OPT)],
    "CommandStatementUpdate": [("query", 1, _S, _OPT), ("transaction_id", 2, _BY, _OPT)],
    "CommandPreparedStatementUpdate": [("prepared_statement_handle", 1, _BY, _OPT)],
    "DoPutUpdateResult": [("record_count", 1, _I64, _OPT)],
    "DoPutPreparedStatementResult": [("prepared_statement_handle", 1, _BY, _OPT)],
}

_TYPES = {
    _S: descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    _B: descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    _BY: descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    _U32: descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    _I32: descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    _I64: descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
}
_LABELS = {
    _OPT: descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    _REP: descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
}


# A Flight SQL message. Its class is built at run time from MESSAGES, so no type checker knows
# its fields (`query`, `prepared_statement_handle`, ...): they read as Any.
Command = Any


def _build() -> dict[str, type[Message]]:
    # proto2 on our side keeps presence (HasField) for every scalar; the wire format is the
    # same as the proto3 definitions clients use.
    file = descriptor_pb2.FileDescriptorProto(
        name="fleuve_flight_sql.proto", package=PACKAGE, syntax="proto2"
    )
    for name, fields in MESSAGES.items():
        msg = file.message_type.add(name=name)
        for field_name, number, kind, label in fields:
            msg.field.add(name=field_name, number=number, type=_TYPES[kind], label=_LABELS[label])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
        for name in MESSAGES
    }


CLASSES = _build()


def new(name: str, **fields: Any) -> Command:
    """A new Flight SQL message of type `name`."""
    return CLASSES[name](**fields)


def pack(message: Message) -> bytes:
    """The message wrapped in a serialized `google.protobuf.Any`, as Flight SQL sends it."""
    wrapper = any_pb2.Any()
    wrapper.Pack(message)
    return wrapper.SerializeToString()


def unpack(data: bytes) -> Command:
    """The Flight SQL message inside a serialized Any; None when `data` is not one."""
    if not data.startswith(b"\n"):  # an Any starts with field 1 (type_url): tag 0x0A
        return None
    wrapper = any_pb2.Any()
    try:
        wrapper.ParseFromString(data)
    except DecodeError:
        return None
    if not wrapper.type_url.startswith(TYPE_URL_PREFIX):
        return None
    name = wrapper.type_url.removeprefix(TYPE_URL_PREFIX)
    cls = CLASSES.get(name)
    if cls is None:
        raise NotImplementedError(f"Flight SQL command {name} is not supported by Fleuve")
    message = cls()
    message.ParseFromString(wrapper.value)
    return message


def name_of(message: Message) -> str:
    """The message's short type name, e.g. 'CommandGetTables'."""
    return message.DESCRIPTOR.name
