"""What every connector declares and does: capabilities, check, discover, extract."""

from __future__ import annotations

import functools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from fleuve.config import ConnectionSettings, Settings, StreamSettings

# Column types a cursor can be compared on.
CURSOR_TYPES = (
    "TIMESTAMP",
    "DATE",
    "INTEGER",
    "BIGINT",
    "SMALLINT",
    "HUGEINT",
    "DECIMAL",
    "VARCHAR",
)
CURSOR_NAMES = ("updated_at", "modified_at", "last_modified", "updated", "modified", "ts")
# The column in which a files stream's relation names each row's file (`Extract.has_source_file`);
# bronze keeps it, so that a file read again replaces its own rows.
SOURCE_FILE = "_fleuve_source_file"


@dataclass(frozen=True)
class Capabilities:
    """What a connector can do; `fleuve source discover` shows it and validation relies on it."""

    sync_modes: tuple[str, ...] = ("full_refresh", "incremental")
    destination_sync_modes: tuple[str, ...] = ("overwrite", "append", "append_dedup")
    incremental_by: str = "cursor column"
    custom_query: bool = False
    discover: bool = True


@dataclass
class StreamInfo:
    """A stream a source offers, with its inferred schema and the modes it supports."""

    name: str
    columns: list[tuple[str, str]]
    primary_key: list[str] = field(default_factory=list)
    cursor_candidates: list[str] = field(default_factory=list)
    sync_modes: list[str] = field(default_factory=list)
    estimated_rows: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        out = asdict(self)
        out["columns"] = [{"name": n, "type": t} for n, t in self.columns]
        return out


@dataclass
class Cursor:
    """Where the previous sync of a stream stopped: the largest cursor value it committed."""

    value: str
    type: str

    def literal(self) -> str:
        """The value as a typed DuckDB literal."""
        return f"CAST('{self.value.replace(chr(39), chr(39) * 2)}' AS {self.type})"


@dataclass
class Extract:
    """The rows one stream reads this time, as a relation the lake session can query."""

    relation: str
    bytes_read: int = 0
    estimated_rows: int | None = None
    row_bytes: float | None = None
    # Columns the source guarantees unique (a declared primary key), if any.
    unique_key: list[str] = field(default_factory=list)
    # SELECT of (location, reason, raw) for rows the source could not parse, if any.
    rejected: str | None = None
    # Files streams: fingerprints of every file seen, and the files read again after a change.
    files: dict[str, str] | None = None
    replaced_files: list[str] = field(default_factory=list)
    has_source_file: bool = False
    # The newest cursor value in the source's own format, when the connector tracks it.
    cursor_value: str | None = None
    # JSON sources: nested objects and arrays are kept as JSON values unless flattened.
    nested_as_json: bool = False
    # Set when the relation's reader stops at a bad row instead of setting it apart: called
    # after a load of it failed in the engine, so that the next read sets bad rows apart.
    fallback: Callable[[], None] | None = None
    # The same rows as Arrow streams, one per source file, when the loader may write them
    # to bronze itself (`fleuve.ingest.direct`). `relation` names each by its `name`; they are
    # registered on the session only before it is scanned (`scannable`).
    arrow: list[Any] | None = None
    # A relation with the columns of `relation` that reads nothing, when one is known.
    describe: str | None = None
    # The column types come from the values read (CSV, JSON, REST), not from a declared schema:
    # values are then read with the bronze table's types, and rows that do not fit rejected.
    inferred_types: bool = False
    # The session the Arrow streams were last registered on.
    _registered_on: Any = field(default=None, repr=False, compare=False)

    def scannable(self, con: duckdb.DuckDBPyConnection) -> None:
        """Register the Arrow streams `relation` reads on `con` (once), so that it can be scanned."""
        if self._registered_on is con:
            return
        for source in self.arrow or []:
            con.register(source.name, source)
        self._registered_on = con


@dataclass
class ExtractContext:
    """What a connector may use while reading: a scratch folder, cancellation, progress."""

    scratch: Path
    cancelled: threading.Event
    on_rows: Callable[[int, int], None] = lambda rows, nbytes: None
    # Called once the extract is planned: (estimated rows, estimated bytes per row).
    on_estimate: Callable[[int | None, float | None], None] = lambda rows, width: None
    # The stream's bronze table's columns and types, when it exists: the types established by
    # earlier syncs, which a source whose types are inferred from values reads its values with.
    established: dict[str, str] = field(default_factory=dict)


def stream_types(stream: StreamSettings) -> dict[str, str]:
    """The column types a stream's options declare (`options: {types: {col: TYPE}}`)."""
    return dict(stream.options.get("types") or {})


@functools.cache
def arrow_pool() -> Any:
    """The allocator for files parsed and written through Arrow: jemalloc where Arrow has it.

    Arrow's default, mimalloc, hands freed memory back to the system within milliseconds, so
    every file's buffers were faulted in and zeroed by the kernel anew: a fifth of a CSV
    sync's CPU (`docs/benchmarks.md`). jemalloc keeps freed pages for reuse a while longer.
    Connectors parse with it and the loader writes `Extract.arrow`'s rows with it.
    """
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # an Arrow built without it
        return pa.system_memory_pool()


class Connector(ABC):
    """One kind of source. Subclasses declare `type` and `capabilities` and read streams."""

    type: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, conn: ConnectionSettings, settings: Settings) -> None:
        self.conn = conn
        self.settings = settings
        self.source = conn.source

    def __repr__(self) -> str:
        return f"{type(self).__name__}(connection={self.conn.name!r})"

    def option(self, stream: StreamSettings | None, key: str, default: Any = None) -> Any:
        """A setting from the stream's options, else the source's, else `default`."""
        if stream is not None and key in stream.options:
            return stream.options[key]
        return self.source.get(key, default)

    def open(self, con: duckdb.DuckDBPyConnection) -> None:  # noqa: B027 - optional hook
        """Prepare the lake session (attach a database, create a secret); default: nothing."""

    def close(self, con: duckdb.DuckDBPyConnection) -> None:  # noqa: B027 - optional hook
        """Undo `open`; default: nothing."""

    @abstractmethod
    def check(self, con: duckdb.DuckDBPyConnection) -> str:
        """Reach the source and say what was found; raise an IngestError naming the fix."""

    @abstractmethod
    def discover(self, con: duckdb.DuckDBPyConnection) -> list[StreamInfo]:
        """The streams the source offers, with their inferred schemas."""

    @abstractmethod
    def extract(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamSettings,
        since: Cursor | None,
        files: dict[str, str] | None,
        ctx: ExtractContext,
    ) -> Extract:
        """The stream's rows: all of them, or those at or after `since` (or in new files)."""


def cursor_candidates(columns: list[tuple[str, str]]) -> list[str]:
    """Columns that look like a cursor: well-known names first, then any timestamp."""
    named = [n for n, t in columns if n.lower() in CURSOR_NAMES and _orderable(t)]
    stamps = [n for n, t in columns if t.startswith(("TIMESTAMP", "DATE")) and n not in named]
    return named + stamps


def _orderable(duck_type: str) -> bool:
    return duck_type.upper().startswith(CURSOR_TYPES)
