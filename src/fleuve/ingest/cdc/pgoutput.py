"""PostgreSQL's `pgoutput` logical replication messages (protocol 1), decoded.

Only what change capture needs: Begin, Commit, Relation, Type, Insert, Update, Delete and
Truncate; Origin and logical Messages are read and ignored. RelationColumn values stay in PostgreSQL's
text form (decoded from UTF-8); the lake casts them to their column types in bulk.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

# Commit timestamps count microseconds from PostgreSQL's epoch.
PG_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)


class Unchanged:
    """An unchanged TOASTed value: an update that left it alone does not resend it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()
Value = str | None | Unchanged

_I16 = struct.Struct("!h")
_I32 = struct.Struct("!i")
_U32 = struct.Struct("!I")
_BEGIN = struct.Struct("!QqI")
_COMMIT = struct.Struct("!BQQq")
_TRUNCATE = struct.Struct("!iB")


@dataclass
class RelationColumn:
    """One column of a published table, as the Relation message describes it."""

    name: str
    type_oid: int
    typmod: int
    key: bool


@dataclass
class Relation:
    """A published table: its columns as of the changes that follow this message."""

    oid: int
    schema: str
    table: str
    replica_identity: str
    columns: list[RelationColumn] = field(default_factory=list)


@dataclass(frozen=True)
class Begin:
    """A transaction starts; `lsn` is its commit record's position (known in advance)."""

    lsn: int
    committed_at: datetime
    xid: int


@dataclass(frozen=True)
class Commit:
    """The transaction ends; `end_lsn` is where the next one can start."""

    lsn: int
    end_lsn: int
    committed_at: datetime


@dataclass(frozen=True)
class Change:
    """A row inserted, updated or deleted. `old` is the key or whole old row, when sent."""

    op: str
    relation: int
    new: list[Value] | None
    old: list[Value] | None = None


@dataclass(frozen=True)
class Truncate:
    """Tables emptied in one statement."""

    relations: list[int]


Message = Begin | Commit | Relation | Change | Truncate | None


def lsn_text(lsn: int) -> str:
    """An LSN as PostgreSQL writes it, e.g. 0/16B3748."""
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """'0/16B3748' → its 64-bit position."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def _time(micros: int) -> datetime:
    return PG_EPOCH + timedelta(microseconds=micros)


def _string(buf: bytes, pos: int) -> tuple[str, int]:
    end = buf.index(0, pos)
    return buf[pos:end].decode("utf-8"), end + 1


def _tuple(buf: bytes, pos: int) -> tuple[list[Value], int]:
    """TupleData: a column count, then per column a kind byte and, for text, its bytes."""
    (count,) = _I16.unpack_from(buf, pos)
    pos += 2
    values: list[Value] = []
    append = values.append
    unpack = _I32.unpack_from
    for _ in range(count):
        kind = buf[pos]
        pos += 1
        if kind == 116:  # 't': text
            (size,) = unpack(buf, pos)
            pos += 4
            append(buf[pos : pos + size].decode("utf-8"))
            pos += size
        elif kind == 110:  # 'n': null
            append(None)
        elif kind == 117:  # 'u': unchanged TOASTed value
            append(UNCHANGED)
        else:
            raise ValueError(f"pgoutput: unknown tuple value kind {chr(kind)!r}")
    return values, pos


def decode(buf: bytes) -> Message:
    """One pgoutput message; None for the kinds change capture ignores (Origin, Message, Type)."""
    tag = buf[0]
    if tag in (73, 85, 68):  # 'I', 'U', 'D'
        (oid,) = _U32.unpack_from(buf, 1)
        kind = buf[5]
        if tag == 73:
            new, _ = _tuple(buf, 6)
            return Change("insert", oid, new)
        if tag == 68:
            gone, _ = _tuple(buf, 6)
            return Change("delete", oid, None, gone)
        if kind in (75, 79):  # 'K' key or 'O' whole old row, then 'N'
            old, pos = _tuple(buf, 6)
            new, _ = _tuple(buf, pos + 1)
            return Change("update", oid, new, old)
        new, _ = _tuple(buf, 6)
        return Change("update", oid, new)
    if tag == 66:  # 'B'
        lsn, ts, xid = _BEGIN.unpack_from(buf, 1)
        return Begin(lsn, _time(ts), xid)
    if tag == 67:  # 'C'
        _, lsn, end, ts = _COMMIT.unpack_from(buf, 1)
        return Commit(lsn, end, _time(ts))
    if tag == 82:  # 'R'
        (oid,) = _U32.unpack_from(buf, 1)
        schema, pos = _string(buf, 5)
        table, pos = _string(buf, pos)
        identity = chr(buf[pos])
        (count,) = _I16.unpack_from(buf, pos + 1)
        pos += 3
        rel = Relation(oid, schema, table, identity)
        for _ in range(count):
            flags = buf[pos]
            name, pos = _string(buf, pos + 1)
            type_oid, typmod = struct.unpack_from("!Ii", buf, pos)
            pos += 8
            rel.columns.append(RelationColumn(name, type_oid, typmod, bool(flags & 1)))
        return rel
    if tag == 84:  # 'T'
        count, _ = _TRUNCATE.unpack_from(buf, 1)
        return Truncate(list(struct.unpack_from(f"!{count}I", buf, 6)))
    if tag in (89, 79, 77):  # 'Y' type, 'O' origin, 'M' logical message
        return None
    raise ValueError(f"pgoutput: unknown message {chr(tag)!r}")
