"""Files in a local folder or an S3 bucket: CSV/TSV, JSON, JSON Lines and Parquet, by glob."""

from __future__ import annotations

import codecs
import gzip
import json
import logging
import mmap
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from fleuve.config import StreamSettings
from fleuve.ingest.connectors.base import (
    SOURCE_FILE,
    Capabilities,
    Connector,
    Cursor,
    Extract,
    ExtractContext,
    StreamInfo,
    arrow_pool,
    cursor_candidates,
    stream_types,
)
from fleuve.ingest.errors import IngestError, SourceUnavailable
from fleuve.ingest.names import normalize
from fleuve.ingest.schema import absorb
from fleuve.lake import quote_ident, quote_literal
from fleuve.logs.local import scrub

log = logging.getLogger("fleuve.ingest")

FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")
_EXTENSIONS = {
    "csv": "csv",
    "tsv": "tsv",
    "txt": "csv",
    "json": "json",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "parquet": "parquet",
    "pq": "parquet",
}
_SNIFF_BYTES = 1 << 16
# A CSV line (a record, with its quoted line breaks) longer than this is set apart unread; DuckDB's
# reader refuses longer ones, and Arrow's stops at a row larger than its block.
MAX_LINE_SIZE = 2 << 20
# The comment character of the copies in which set-apart lines are blanked (line numbers kept).
_COMMENT = b"\x01"
# Rejected rows keep at most this many characters of their raw line.
_RAW_CHARS = 10_000
# Above this many files in one sync, DuckDB's reader takes them all in one scan.
_ARROW_MAX_FILES = 256
# Uncompressed files up to this size are parsed whole by Arrow (in parallel); others and
# larger ones block by block, so memory stays bounded.
_ARROW_WHOLE_FILE = 64 << 20
_BATCH_ROWS = 122_880
# Date and time formats the sniffer may report that Arrow's ISO 8601 parser reads alike.
_ISO_FORMATS = (None, "%Y-%m-%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")


@dataclass
class _Read:
    """How a stream's files are read: the relation, and the SELECT of the rows it set apart.

    `strict`: the reader stops at a bad row instead of setting it apart (Arrow's CSV reader).
    """

    relation: str
    rejected: str | None = None
    strict: bool = False
    arrow: list[_ArrowCsv] | None = None
    describe: str | None = None


@dataclass
class _Head:
    """What the start of a CSV file says: its encoding and first line, and whether it looks bad.

    `bad_utf8`: UTF-8 with invalid bytes somewhere; `quotes`: a quote character in its start;
    `suspect`: its lines are checked one by one before a reader parses them.
    """

    encoding: str
    header: bytes | str = b""
    quotes: bool = False
    bad_utf8: bool = False
    suspect: bool = False


class FilesConnector(Connector):
    """Reads every file a stream's glob matches; on incremental syncs only new or changed ones."""

    type = "files"
    capabilities: ClassVar[Capabilities] = Capabilities(incremental_by="new or changed files")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.secret = f"fleuve_files_{uuid.uuid4().hex[:10]}"
        # Streams whose files Arrow's CSV reader could not take: DuckDB's reader from then on.
        self.tolerant: set[str] = set()

    @property
    def on_s3(self) -> bool:
        """True when the files live in an S3 bucket."""
        return str(self.source.get("path", "")).startswith("s3://")

    def base(self) -> str:
        """The folder or bucket prefix, without a trailing slash."""
        if "path" not in self.source:
            raise IngestError(
                f"connection '{self.conn.name}': the files source needs a path",
                "set source.path to a folder (e.g. sources/drops) or a bucket (s3://bucket/prefix)",
            )
        if self.on_s3:
            return str(self.source["path"]).rstrip("/")
        return str(self.settings.path(self.source["path"])).rstrip("/")

    def pattern(self, stream: StreamSettings) -> str:
        """The stream's glob, relative to the source's path."""
        return f"{self.base()}/{(stream.path or '*').lstrip('/')}"

    def open(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self.on_s3:
            return
        s3 = self.source.get("s3") or {}
        bucket = self.base().removeprefix("s3://").split("/", 1)[0]
        fields = {"REGION": s3.get("region", "us-east-1"), "SCOPE": f"s3://{bucket}"}
        if s3.get("endpoint"):
            fields["ENDPOINT"] = str(s3["endpoint"]).split("://")[-1]
        if s3.get("access_key_id"):
            fields["KEY_ID"] = str(s3["access_key_id"])
        if s3.get("secret_access_key"):
            fields["SECRET"] = str(s3["secret_access_key"])
        fields["URL_STYLE"] = s3.get("url_style", "path")
        body = ", ".join(f"{k} {quote_literal(v)}" for k, v in fields.items())
        use_ssl = "true" if s3.get("use_ssl", True) else "false"
        con.execute(f"CREATE OR REPLACE SECRET {self.secret} (TYPE s3, USE_SSL {use_ssl}, {body})")

    def close(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.on_s3:
            con.execute(f"DROP SECRET IF EXISTS {self.secret}")

    # -- listing ----------------------------------------------------------------------

    def list_files(
        self, con: duckdb.DuckDBPyConnection, pattern: str
    ) -> dict[str, tuple[int, str]]:
        """{file: (size, fingerprint)} of the files matching `pattern`."""
        if not self.on_s3 and not Path(self.base()).exists():
            raise IngestError(
                f"connection '{self.conn.name}': the folder {self.base()} does not exist",
                "create it or fix source.path in fleuve.yml",
            )
        try:
            rows = con.execute(
                "SELECT filename, size, last_modified FROM read_blob(?) ORDER BY filename",
                [pattern],
            ).fetchall()
        except duckdb.IOException as exc:
            text = scrub(str(exc).splitlines()[0])
            if "no files found" in text.lower():
                return {}
            raise SourceUnavailable(
                f"connection '{self.conn.name}': cannot list {pattern}: {text}",
                "check source.path and, for a bucket, source.s3 (endpoint, keys)",
            ) from None
        except duckdb.Error as exc:
            raise SourceUnavailable(
                f"connection '{self.conn.name}': cannot list {pattern}: {scrub(str(exc).splitlines()[0])}",
                "check source.path and, for a bucket, source.s3 (endpoint, keys)",
            ) from None
        return {f: (int(size), f"{size}:{modified.isoformat()}") for f, size, modified in rows}

    def file_format(self, stream: StreamSettings, files: list[str]) -> str:
        """The declared format, else the one the files' extension names."""
        declared = self.option(stream, "format")
        if declared:
            if declared not in FORMATS:
                raise IngestError(
                    f"stream '{stream.name}': unknown file format '{declared}'",
                    f"set format to one of: {', '.join(FORMATS)}",
                )
            return str(declared)
        sample = (files[0] if files else (stream.path or "")).lower()
        for suffix in (".gz", ".gzip", ".zst", ".zstd"):
            sample = sample.removesuffix(suffix)
        ext = sample.rsplit(".", 1)[-1]
        if ext not in _EXTENSIONS:
            raise IngestError(
                f"stream '{stream.name}': cannot tell the format of {sample!r}",
                f"set options.format to one of: {', '.join(FORMATS)}",
            )
        return _EXTENSIONS[ext]

    # -- reading ----------------------------------------------------------------------

    def check(self, con: duckdb.DuckDBPyConnection) -> str:
        self.list_files(con, f"{self.base()}/*")
        found = {s.name: len(self.list_files(con, self.pattern(s))) for s in self.conn.streams}
        listed = ", ".join(f"{k}: {v} files" for k, v in found.items()) or "no streams declared"
        return f"reached {self.base()}; {listed}"

    def discover(self, con: duckdb.DuckDBPyConnection) -> list[StreamInfo]:
        # Copies of bad CSV files are described, then deleted with this folder.
        with tempfile.TemporaryDirectory(prefix="fleuve-discover-") as scratch:
            ctx = ExtractContext(scratch=Path(scratch), cancelled=threading.Event())
            return [self._discover(con, stream, ctx) for stream in self.conn.streams]

    def _discover(
        self, con: duckdb.DuckDBPyConnection, stream: StreamSettings, ctx: ExtractContext
    ) -> StreamInfo:
        """What `discover` says of one stream."""
        listing = self.list_files(con, self.pattern(stream))
        if not listing:
            return StreamInfo(stream.name, [], sync_modes=list(self.capabilities.sync_modes))
        read = self._relation(con, stream, sorted(listing), ctx)
        Extract(read.relation, arrow=read.arrow).scannable(con)
        cols = [
            (r[0], r[1])
            for r in con.execute(f"DESCRIBE {read.relation}").fetchall()
            if r[0] != SOURCE_FILE
        ]
        return StreamInfo(
            stream.name,
            cols,
            primary_key=list(stream.primary_key),
            cursor_candidates=cursor_candidates(cols),
            sync_modes=list(self.capabilities.sync_modes),
        )

    def extract(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamSettings,
        since: Cursor | None,
        files: dict[str, str] | None,
        ctx: ExtractContext,
    ) -> Extract:
        listing = self.list_files(con, self.pattern(stream))
        fingerprints = {f: fp for f, (_, fp) in listing.items()}
        if files is None:
            chosen = sorted(listing)
            replaced: list[str] = []
        else:
            chosen = sorted(f for f, fp in fingerprints.items() if files.get(f) != fp)
            replaced = [f for f in chosen if f in files]
        kept = {**(files or {}), **fingerprints}
        if not chosen:
            return Extract(relation="", files=kept, has_source_file=True)
        read = self._relation(con, stream, chosen, ctx)
        fmt = self.file_format(stream, chosen)
        return Extract(
            nested_as_json=fmt in ("json", "jsonl"),
            inferred_types=fmt != "parquet",
            relation=f"SELECT * FROM {read.relation}",
            bytes_read=sum(listing[f][0] for f in chosen),
            rejected=read.rejected,
            fallback=(lambda: self.tolerant.add(stream.name)) if read.strict else None,
            arrow=read.arrow,
            describe=read.describe,
            files=kept,
            replaced_files=replaced,
            has_source_file=True,
        )

    def _relation(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamSettings,
        files: list[str],
        ctx: ExtractContext,
    ) -> _Read:
        """A relation reading `files`, and the SELECT of the rows it rejected."""
        fmt = self.file_format(stream, files)
        if fmt == "parquet":
            return _Read(
                f"read_parquet({_list(files)}, union_by_name = true, filename = {quote_literal(SOURCE_FILE)})"
            )
        if fmt in ("json", "jsonl"):
            return self._json(con, stream, files, fmt, ctx.scratch)
        if self.on_s3:
            return self._bucket_csv(con, stream, files, fmt, ctx)
        return self._csv(con, stream, files, fmt, ctx)

    def _bucket_csv(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamSettings,
        files: list[str],
        fmt: str,
        ctx: ExtractContext,
    ) -> _Read:
        """CSV files of a bucket, streamed to the sync's scratch folder and read as local ones.

        Every file is read once from the bucket either way; read locally, its lines get the
        same checks as a folder's (invalid UTF-8, above max_line_size, a quote left open) and
        clean files Arrow's parallel reader. The rows and rejected lines keep the s3:// names.
        """
        folder = ctx.scratch / f"bucket-{uuid.uuid4().hex[:12]}"
        local = []
        bucket = self._bucket()
        for file in files:
            key = file.removeprefix("s3://")
            target = folder / key
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with bucket.open_input_stream(key) as src, target.open("wb") as out:
                    while chunk := src.read(1 << 22):
                        out.write(chunk)
            except OSError as exc:
                raise SourceUnavailable(
                    f"connection '{self.conn.name}': cannot read {file}: "
                    f"{scrub(str(exc).splitlines()[0])}",
                    "check source.path and source.s3 (endpoint, keys)",
                ) from None
            local.append(str(target))
        read = self._csv(con, stream, local, fmt, ctx)
        prefix = quote_literal(f"{folder}/")

        def named(expr: str) -> str:
            return f"replace({expr}, {prefix}, 's3://')"

        read.relation = (
            f"(SELECT * REPLACE ({named(SOURCE_FILE)} AS {SOURCE_FILE}) FROM {read.relation})"
        )
        if read.rejected:
            read.rejected = (
                f"SELECT {named('location')} AS location, reason, raw FROM ({read.rejected})"
            )
        for source in read.arrow or []:
            source.origin = "s3://" + str(Path(source.file).relative_to(folder))
        return read

    def _bucket(self) -> Any:
        """The bucket's files through Arrow's S3 client, with the source's endpoint and keys."""
        from pyarrow import fs

        s3 = self.source.get("s3") or {}
        endpoint = str(s3.get("endpoint") or "")
        secure = bool(s3.get("use_ssl", True))
        return fs.S3FileSystem(
            access_key=s3.get("access_key_id"),
            secret_key=s3.get("secret_access_key"),
            region=s3.get("region", "us-east-1"),
            endpoint_override=endpoint.split("://")[-1] or None,
            scheme="https" if secure else "http",
            force_virtual_addressing=s3.get("url_style", "path") == "vhost",
        )

    def max_line_size(self, stream: StreamSettings) -> int:
        """The longest CSV line read, in bytes (`max_line_size`); longer ones are rejected."""
        value = self.option(stream, "max_line_size", MAX_LINE_SIZE)
        try:
            size = int(value)
        except (TypeError, ValueError):
            size = 0
        if size < 1024:
            raise IngestError(
                f"stream '{stream.name}': max_line_size must be a number of bytes of at least "
                f"1024, not {value!r}",
                f"set options.max_line_size to e.g. {MAX_LINE_SIZE} (the default, 2 MiB)",
            )
        return size

    def _csv(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamSettings,
        files: list[str],
        fmt: str,
        ctx: ExtractContext,
    ) -> _Read:
        options: dict[str, str] = {}
        delimiter = self.option(stream, "delimiter", "\t" if fmt == "tsv" else None)
        if delimiter is not None:
            options["delim"] = quote_literal(delimiter)
        if (header := self.option(stream, "header")) is not None:
            options["header"] = "true" if header else "false"
        if quote := self.option(stream, "quote"):
            options["quote"] = quote_literal(quote)
        max_line = self.max_line_size(stream)
        if max_line > MAX_LINE_SIZE:
            options["max_line_size"] = str(max_line)
        declared = self.option(stream, "encoding")
        groups, heads = self._groups(files, declared, max_line)
        tolerant = stream.name in self.tolerant
        # DuckDB's reader sets apart bad rows, but takes some bad lines as data (an unterminated
        # quote) or fails on them (invalid UTF-8 read as Latin-1, too long): those lines are set
        # apart first, in local files that look bad, or in every file of a stream whose reading
        # failed. The copies without them are what the sniffer and the reader see.
        # Each group's first file is sniffed once, with the options DuckDB's reader gets (it
        # tolerates bad rows, so it sniffs the same); the checks below and Arrow share it.
        sniff = _Sniffer(con, "".join(f", {k} = {v}" for k, v in options.items()))
        self._quotes_broken(sniff, groups, options, heads)
        scan = [f for f in files if tolerant or heads[f].suspect]
        scanned_quote = str(self.option(stream, "quote", '"') or "")
        copies, set_apart = self._set_apart(
            stream, scan, heads, ctx.scratch, max_line, scanned_quote
        )
        established: dict[str, str] = {}
        if ctx.established:
            established = self._established(sniff, groups, ctx.established, copies)
        if types := {**established, **stream_types(stream)}:
            pairs = ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in types.items())
            options["types"] = "{" + pairs + "}"
        if not tolerant and not scan:
            arrow = self._arrow_csv(stream, groups, sniff, established, ctx.on_rows)
            if arrow is not None:
                return _Read(arrow[0], strict=True, arrow=arrow[1], describe=arrow[2])
        options.update(filename=quote_literal(SOURCE_FILE), store_rejects="true")
        reads, rejects = [], []
        # DuckDB keeps rejected lines only for a single-schema scan: files sharing a header,
        # encoding and compression are read by one (parallel) scan, the others each by their own.
        for encoding, group in groups:
            kept = [f for f in group if f not in copies]
            batches: list[tuple[str, list[str], dict[str, str]]] = (
                [(encoding, kept, {})] if kept else []
            )
            # A copy is read with the quote character its lines were checked with.
            quoting = {"comment": "'\x01'", "quote": quote_literal(scanned_quote)}
            batches += [
                ("utf-8" if heads[f].bad_utf8 else encoding, [copies[f]], quoting)
                for f in group
                if f in copies
            ]
            for enc, batch, extra in batches:
                tag = uuid.uuid4().hex[:12]
                errors, scans = f"fleuve_rejects_{tag}", f"fleuve_scans_{tag}"
                opts = {
                    **options,
                    **extra,
                    "encoding": quote_literal(enc),
                    "rejects_table": quote_literal(errors),
                    "rejects_scan": quote_literal(scans),
                }
                args = ", ".join(f"{k} = {v}" for k, v in opts.items())
                reads.append(f"SELECT * FROM read_csv({_list(batch)}, {args})")
                # DuckDB reports a line once per error in it, and again at each scan of the
                # relation: one rejected row per line.
                rejects.append(
                    f"SELECT {_originals('s.file_path', copies)} || ':' || e.line AS location, "
                    "string_agg(DISTINCT e.error_type || coalesce(' in column ' || e.column_name, '') "
                    "|| ': ' || e.error_message, '; ') AS reason, any_value(e.csv_line) AS raw "
                    f"FROM {errors} e JOIN {scans} s USING (scan_id, file_id) "
                    "GROUP BY s.file_path, e.line"
                )
        relation = "(" + " UNION ALL BY NAME ".join(reads) + ")"
        if copies:
            relation = (
                f"(SELECT * REPLACE ({_originals(SOURCE_FILE, copies)} AS {SOURCE_FILE}) "
                f"FROM {relation})"
            )
        if set_apart:
            rejects.append(
                f"SELECT location, reason, raw FROM read_json({quote_literal(set_apart)}, "
                "format = 'newline_delimited', "
                "columns = {'location': 'VARCHAR', 'reason': 'VARCHAR', 'raw': 'VARCHAR'})"
            )
        return _Read(relation, " UNION ALL ".join(rejects), strict=not tolerant)

    def _established(
        self,
        sniff: _Sniffer,
        groups: list[tuple[str, list[str]]],
        established: dict[str, str],
        copies: dict[str, str],
    ) -> dict[str, str]:
        """The types to read the files' columns with, so that they keep the bronze table's:
        a column the sniffer reads otherwise is parsed as the table has it, and a value that
        does not fit sends its row to `bronze._rejected`."""
        out: dict[str, str] = {}
        headers: list[set[str]] = []
        for encoding, group in groups:
            file = copies.get(group[0], group[0])
            sniffed = sniff(file, encoding, ", comment = '\x01'" if file != group[0] else "")
            if sniffed is None:
                continue  # a file the sniffer cannot take fails its read, then is set apart
            headers.append({c["name"] for c in sniffed[6]})
            for column in sniffed[6]:
                old = established.get(normalize(column["name"]))
                # Text columns keep each value's text ('007' stays '007'); a type the table
                # cannot widen to is parsed as the table's; widening stays drift's job.
                if (
                    old
                    and old != column["type"]
                    and (old == "VARCHAR" or absorb(old, column["type"])[0] == "no")
                ):
                    out[column["name"]] = old
        # One set of types goes to every file's read: only columns all of them have.
        return {k: v for k, v in out.items() if all(k in h for h in headers)}

    def _set_apart(
        self,
        stream: StreamSettings,
        files: list[str],
        heads: dict[str, _Head],
        scratch: Path,
        max_line: int,
        quote: str,
    ) -> tuple[dict[str, str], str | None]:
        """Copies of `files` without the lines no reader should parse, and a JSON Lines file
        of those lines as rejected rows (None if there are none)."""
        copies: dict[str, str] = {}
        rows: list[dict[str, str]] = []
        for file in files:
            scratch.mkdir(parents=True, exist_ok=True)
            copy = scratch / f"{uuid.uuid4().hex}.csv"
            found = set_apart_lines(
                file,
                copy,
                quote=quote.encode(),
                encoding=heads[file].encoding,
                max_line=max_line,
            )
            if not found:
                copy.unlink()
                continue
            copies[file] = str(copy)
            reasons: dict[str, int] = {}
            for line, reason, raw in found:
                rows.append({"location": f"{file}:{line}", "reason": reason, "raw": raw})
                kind = reason.split(":", 1)[0]
                reasons[kind] = reasons.get(kind, 0) + 1
            log.warning(
                "lines set apart before parsing",
                extra={
                    "connection": self.conn.name,
                    "stream": stream.name,
                    "file": file,
                    "lines": len(found),
                    "reasons": reasons,
                },
            )
        if not rows:
            return copies, None
        rejected = scratch / f"{uuid.uuid4().hex}.rejected.jsonl"
        with rejected.open("w", encoding="utf-8") as out:
            out.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        return copies, str(rejected)

    def _arrow_csv(
        self,
        stream: StreamSettings,
        groups: list[tuple[str, list[str]]],
        sniff: _Sniffer,
        types: dict[str, str],
        on_rows: Callable[[int, int], None] | None,
    ) -> tuple[str, list[_ArrowCsv], str | None] | None:
        """A relation reading clean local UTF-8 CSV files with Arrow's multi-threaded reader,
        the Arrow streams it reads, and a relation of the same columns that reads nothing.

        The streams are not registered on `con` here: registering eight of them took 0.1 s
        (DuckDB imports `pyarrow.dataset` and inspects each), and a load that writes the files
        itself never scans them (`Extract.scannable` registers them when a load does).

        Arrow parses CSV faster than DuckDB (`bench/ingest.py`), but stops at the first bad row
        instead of setting it apart. So it reads with the dialect and column types DuckDB's
        sniffer finds, only where it parses them the same way (ISO dates, no declared types),
        and a load that fails on it is run again with DuckDB's reader (`Extract.fallback`).
        None when these files need DuckDB's reader.
        """
        files = [f for _, group in groups for f in group]
        if (
            stream.name in self.tolerant
            or stream_types(stream)
            or len(files) > _ARROW_MAX_FILES
            or any(f.endswith((".zst", ".zstd")) for f in files)
        ):
            return None
        import pyarrow.csv as pcsv

        parts, sources, shapes = [], [], []
        for encoding, group in groups:
            if encoding.replace("-", "").lower() != "utf8":
                return None
            sniffed = sniff(group[0], encoding)
            if sniffed is None:
                return None
            delim, quote, escape, comment, skip, header, columns, date_fmt, ts_fmt = sniffed
            # Columns whose bronze type differs are parsed as bronze has them (`_established`).
            columns = [{**c, "type": types.get(c["name"], c["type"])} for c in columns]
            quote, escape = _char(quote), _char(escape)
            schema = _arrow_schema(columns)
            iso = date_fmt in _ISO_FORMATS and ts_fmt in _ISO_FORMATS
            if schema is None or len(delim) != 1 or _char(comment) or not iso:
                return None
            reading = {
                "parse_options": pcsv.ParseOptions(
                    delimiter=delim,
                    quote_char=quote or False,
                    double_quote=escape in ("", quote),
                    escape_char=False if escape in ("", quote) else escape,
                    newlines_in_values=bool(quote),
                ),
                "read_options": pcsv.ReadOptions(
                    column_names=schema.names,
                    skip_rows=int(skip) + (1 if header else 0),
                    block_size=1 << 20,
                ),
                # DuckDB reads an empty field, quoted or not, as NULL whatever the type.
                "convert_options": pcsv.ConvertOptions(
                    column_types=schema,
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
                "memory_pool": arrow_pool(),
            }
            shapes.append([(c["name"], c["type"]) for c in columns])
            for file in group:
                sources.append(_ArrowCsv(file, schema, reading, on_rows, bool(quote)))
                parts.append(
                    f"SELECT *, {quote_literal(file)} AS {SOURCE_FILE} FROM {sources[-1].name}"
                )
        relation = "(" + " UNION ALL BY NAME ".join(parts) + ")"
        if any(shape != shapes[0] for shape in shapes):
            return relation, sources, None  # the union's columns are DuckDB's to work out
        nulls = [f"CAST(NULL AS {kind}) AS {quote_ident(name)}" for name, kind in shapes[0]]
        return relation, sources, f"(SELECT {', '.join(nulls)}, NULL::VARCHAR AS {SOURCE_FILE})"

    def _groups(
        self, files: list[str], declared: str | None, max_line: int
    ) -> tuple[list[tuple[str, list[str]]], dict[str, _Head]]:
        """(encoding, files) that one CSV scan can read together (same first line, encoding
        and compression), and what the start of each file says about it."""
        heads = {f: self._head(f, declared, max_line) for f in files}
        groups: dict[tuple[str, str, bytes | str], list[str]] = {}
        for file in files:
            compression = file.rsplit(".", 1)[-1] if file.endswith((".gz", ".zst", ".zstd")) else ""
            groups.setdefault((compression, heads[file].encoding, heads[file].header), []).append(
                file
            )
        return [(encoding, group) for (_, encoding, _), group in groups.items()], heads

    def _head(self, file: str, declared: str | None, max_line: int) -> _Head:
        """The encoding of a local file ('utf-8', with or without BOM, or 'latin-1'), from its
        start, and whether it looks bad there."""
        if file.endswith((".zst", ".zstd")):
            # A zstd file's start is not read here: a group of its own.
            return _Head(declared or "utf-8", header=file)
        opener = gzip.open if file.endswith((".gz", ".gzip")) else open
        with opener(file, "rb") as fh:
            head = fh.read(_SNIFF_BYTES)
            # DuckDB's sniffer takes minutes to fail on a line of tens of MB in its sample: the
            # start of a file whose first lines are long is measured, up to two lines' worth.
            long = False
            if len(head) == _SNIFF_BYTES and head.count(b"\n") < 64:
                start = head + fh.read(2 * max_line - len(head))
                long = max(len(x) for x in start.split(b"\n")) > max_line
        # A long line further on is found by a scan of the whole file costing a fraction of a
        # parse, so that it is set apart before any reader meets it (a gzip file's is not).
        later = not long and opener is open and has_long_line(file, max_line)
        found = _Head(
            declared or "utf-8",
            header=head.split(b"\n", 1)[0].removeprefix(b"\xef\xbb\xbf").rstrip(),
            quotes=b'"' in head,
            suspect=long or later,
        )
        if long:
            found.header = file  # its first line may be cut: a group of its own
        if declared:
            return found
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multi-byte character cut by the sample's end is still UTF-8.
            if exc.start < len(head) - 4:
                if _utf8_with_bad_bytes(file):
                    found.bad_utf8 = found.suspect = True
                else:
                    found.encoding = "latin-1"
        return found

    def _quotes_broken(
        self,
        sniff: _Sniffer,
        groups: list[tuple[str, list[str]]],
        options: dict[str, str],
        heads: dict[str, _Head],
    ) -> None:
        """Mark as suspect the files whose dialect an unterminated quote or an overlong line hid
        from the sniffer: no quote character found while the file starts with one, or no
        dialect at all."""
        if "quote" in options:
            return
        for encoding, group in groups:
            if heads[group[0]].suspect or not any(heads[f].quotes for f in group):
                continue
            sniffed = sniff(group[0], encoding)
            if sniffed is None or _char(sniffed[1]) == "":
                for f in group:
                    heads[f].suspect = heads[f].suspect or heads[f].quotes or sniffed is None

    def _json(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamSettings,
        files: list[str],
        fmt: str,
        scratch: Path,
    ) -> _Read:
        options = {
            "union_by_name": "true",
            "filename": quote_literal(SOURCE_FILE),
            "format": quote_literal("newline_delimited" if fmt == "jsonl" else "auto"),
        }
        if fmt != "jsonl":
            args = ", ".join(f"{k} = {v}" for k, v in options.items())
            return _Read(f"read_json({_list(files)}, {args})")
        bad = (
            "trim(raw) <> '' AND "
            "CASE WHEN json_valid(raw) THEN json_type(raw) <> 'OBJECT' ELSE true END"
        )
        lines = {f: _lines(f) for f in files}
        spoiled = {
            f
            for (f,) in con.execute(
                "SELECT DISTINCT filename FROM ("
                + " UNION ALL ".join(f"SELECT filename, raw FROM {r}" for r in lines.values())
                + f") WHERE {bad}"
            ).fetchall()
        }
        # A malformed line derails DuckDB's JSON reader for the lines after it, so a file
        # with bad lines is read from a copy holding only its good ones.
        readable: dict[str, str] = {}
        for file in files:
            if file in spoiled:
                scratch.mkdir(parents=True, exist_ok=True)
                clean = str(scratch / f"{uuid.uuid4().hex}.jsonl")
                con.execute(
                    f"COPY (SELECT raw FROM {lines[file]} WHERE NOT ({bad}) AND trim(raw) <> '') "
                    f"TO {quote_literal(clean)} (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', "
                    "DELIMITER '\x1e')"
                )
                readable[clean] = file
            else:
                readable[file] = file
        args = ", ".join(f"{k} = {v}" for k, v in options.items())
        relation = f"read_json({_list(list(readable))}, {args})"
        renamed = {k: v for k, v in readable.items() if k != v}
        if renamed:
            cases = " ".join(
                f"WHEN {quote_literal(k)} THEN {quote_literal(v)}" for k, v in renamed.items()
            )
            relation = (
                f"(SELECT * REPLACE (CASE {SOURCE_FILE} {cases} ELSE {SOURCE_FILE} END "
                f"AS {SOURCE_FILE}) FROM {relation})"
            )
        rejected = None
        if spoiled:
            rejected = " UNION ALL ".join(
                "SELECT filename || ':' || line AS location, 'not a JSON object' AS reason, raw "
                f"FROM (SELECT filename, raw, row_number() OVER () AS line FROM {lines[f]}) "
                f"WHERE {bad}"
                for f in sorted(spoiled)
            )
        return _Read(relation, rejected)


def _lines(file: str) -> str:
    """A single-threaded scan of a file's lines, in order, one VARCHAR `raw` per line."""
    return (
        f"read_csv({quote_literal(file)}, columns = {{'raw': 'VARCHAR'}}, header = false, "
        "delim = '\x1e', quote = '', escape = '', filename = true, strict_mode = false, "
        "parallel = false)"
    )


class _ArrowCsv:
    """One CSV file as an Arrow stream DuckDB can scan, and scan again: Arrow's reader."""

    def __init__(
        self,
        file: str,
        schema: Any,
        reading: dict[str, Any],
        on_rows: Callable[[int, int], None] | None,
        quoted: bool = False,
    ) -> None:
        self.file, self.schema, self.reading, self.quoted = file, schema, reading, quoted
        self.origin = file  # the name its rows keep: a bucket file's s3:// name
        self.on_rows = on_rows or (lambda rows, nbytes: None)
        self.name = f"fleuve_arrow_csv_{uuid.uuid4().hex[:12]}"  # as registered on a session

    def __arrow_c_schema__(self) -> object:
        return self.schema.__arrow_c_schema__()

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        import pyarrow as pa

        reader = pa.RecordBatchReader.from_batches(self.schema, self.batches())
        return reader.__arrow_c_stream__(requested_schema)

    def batches(self) -> Iterator[Any]:
        """The file's rows, in batches, reporting rows and file bytes read as they come."""
        import pyarrow as pa
        import pyarrow.csv as pcsv

        size = Path(self.file).stat().st_size
        gz = self.file.endswith((".gz", ".gzip"))
        with pa.OSFile(self.file, memory_pool=self.reading["memory_pool"]) as raw:
            source = pa.CompressedInputStream(raw, "gzip") if gz else raw
            if not gz and size <= _ARROW_WHOLE_FILE:
                # Parsed whole, a file's blocks are spread over every core.
                table = pcsv.read_csv(source, **self.reading)
                if table.num_rows:
                    self._check_end(table.slice(table.num_rows - 1))
                for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
                    self.on_rows(batch.num_rows, size * batch.num_rows // max(1, table.num_rows))
                    yield batch
                return
            position = 0
            last = None
            for batch in pcsv.open_csv(source, **self.reading):
                self.on_rows(batch.num_rows, raw.tell() - position)
                position = raw.tell()
                if batch.num_rows:
                    last = batch.slice(batch.num_rows - 1)
                yield batch
            if last is not None:
                # Raised after the rows were handed over: the load fails and is run again.
                self._check_end(last)

    def _check_end(self, last: Any) -> None:
        """Fail on a last row whose quoted value ran to the end of the file: a quote left open
        (Arrow takes the rest of the file as its value, DuckDB's reader and Fleuve's check do not)."""
        import pyarrow as pa

        if not self.quoted:
            return
        for column in last.columns:
            value = column[0].as_py() if pa.types.is_string(column.type) else None
            if isinstance(value, str) and value.endswith(("\n", "\r")):
                raise pa.ArrowInvalid(
                    f"{self.origin}: a quoted value of the last row runs to the end of the file "
                    "(a quote left open)"
                )


def _char(sniffed: str | None) -> str:
    """A quote or escape character as `sniff_csv` reports it; '' for none."""
    return "" if sniffed is None or sniffed == "(empty)" else sniffed


def _arrow_schema(columns: list[dict[str, str]]) -> Any:
    """The Arrow schema for DuckDB's sniffed CSV columns; None if a type is parsed differently."""
    import pyarrow as pa

    types = {
        "BOOLEAN": pa.bool_(),
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        "VARCHAR": pa.string(),
        "DATE": pa.date32(),
        "TIMESTAMP": pa.timestamp("us"),
        "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    }
    if any(c["type"] not in types for c in columns):
        return None
    return pa.schema([(c["name"], types[c["type"]]) for c in columns])


class _Sniffer:
    """The dialect and columns DuckDB's sniffer finds in a file (None if it finds none), with
    the reader's options `args`; each file sniffed once."""

    def __init__(self, con: duckdb.DuckDBPyConnection, args: str) -> None:
        self.con, self.args = con, args + ", store_rejects = true"
        self.found: dict[tuple[str, str, str], tuple[Any, ...] | None] = {}

    def __call__(self, file: str, encoding: str, extra: str = "") -> tuple[Any, ...] | None:
        key = (file, encoding, extra)
        if key not in self.found:
            try:
                self.found[key] = self.con.execute(
                    "SELECT Delimiter, Quote, Escape, Comment, SkipRows, HasHeader, Columns, "
                    f"DateFormat, TimestampFormat FROM sniff_csv({quote_literal(file)}{self.args}"
                    f"{extra}, encoding = {quote_literal(encoding)})"
                ).fetchone()
            except duckdb.InvalidInputException:
                self.found[key] = None
        return self.found[key]


def _utf8_with_bad_bytes(file: str) -> bool:
    """True when a file that is not valid UTF-8 still holds more valid multi-byte UTF-8
    characters than invalid bytes: a UTF-8 file with bad lines, not a Latin-1 file."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    valid = invalid = 0
    opener = gzip.open if file.endswith((".gz", ".gzip")) else open
    with opener(file, "rb") as fh:
        while chunk := fh.read(1 << 22):
            text = decoder.decode(chunk)
            bad = text.count("\ufffd")
            invalid += bad
            # Each valid multi-byte character is one character for two to four bytes.
            valid += len(chunk) - len(text) + bad
    return valid > invalid


def set_apart_lines(
    file: str, copy: Path, *, quote: bytes, encoding: str, max_line: int
) -> list[tuple[int, str, str]]:
    """(line, reason, raw) of each CSV line of `file` no reader should parse: invalid UTF-8,
    longer than `max_line` bytes, or opening a quote that is never closed. `copy` gets the
    file with each such line blanked as a comment line, so the other lines keep their numbers.

    A record spans lines while a quote is open (an odd count of quote characters opens or
    closes it); a quote still open at the end of the file or after `max_line` bytes was left
    open on the record's first line: that line is set apart and the next ones read again.
    """
    found: list[tuple[int, str, str]] = []
    utf8 = encoding.replace("-", "").lower() == "utf8"
    opener = gzip.open if file.endswith((".gz", ".gzip")) else open

    def text(data: bytes) -> str:
        decoded = data[: _RAW_CHARS * 4].decode("utf-8" if utf8 else encoding, errors="replace")
        return decoded[:_RAW_CHARS].rstrip("\r\n")

    with opener(file, "rb") as src, copy.open("wb") as out:
        lines = _Lines(src, max_line)
        record: list[tuple[int, bytes, int]] = []
        size, opened = 0, False

        def blank(items: list[tuple[int, bytes, int]]) -> None:
            out.writelines(
                _COMMENT + (b"\r\n" if x.endswith(b"\r\n") else b"\n") for _, x, _ in items
            )

        def left_open(why: str) -> None:
            """Set apart the record's first line, where the quote was opened; read the rest again."""
            nonlocal record, size, opened
            found.append((record[0][0], f"unterminated quote: {why}", text(record[0][1])))
            blank(record[:1])
            lines.again(record[1:])
            record, size, opened = [], 0, False

        while True:
            item = lines.next()
            if item is None:
                if not record:
                    break
                left_open("the value opened on this line is not closed before the end of the file")
                continue
            number, line, total = item
            if total:
                found.append(
                    (
                        record[0][0] if record else number,
                        f"line too long: {total + size:,} bytes, above max_line_size "
                        f"({max_line:,} bytes); it starts with {text(line[:200])!r}",
                        text(line[:1000]),
                    )
                )
                blank([*record, item])
                record, size, opened = [], 0, False
                continue
            record.append(item)
            size += len(line)
            if quote and line.count(quote) % 2:
                opened = not opened
            if opened:
                if size > max_line:
                    left_open(
                        f"the value opened on this line is not closed within max_line_size "
                        f"({max_line:,} bytes)"
                    )
                continue
            data = b"".join(x for _, x, _ in record)
            try:
                if utf8:
                    data.decode("utf-8")
            except UnicodeDecodeError as exc:
                found.append(
                    (
                        record[0][0],
                        f"invalid UTF-8: byte 0x{data[exc.start]:02X} at byte {exc.start + 1} of "
                        "the line; the file's other lines are read as UTF-8",
                        text(data),
                    )
                )
                blank(record)
            else:
                out.write(data)
            record, size = [], 0
    return found


def has_long_line(file: str, max_line: int) -> bool:
    """True when a line of an uncompressed file is longer than `max_line` bytes.

    Such a line covers a whole window of `max_line // 2` bytes of a fixed grid, so the scan
    asks each window for one newline (a memchr that stops at the first) and measures only a
    line around a window without any: a few hundred calls for a file of hundreds of MB.
    """
    size = os.path.getsize(file)
    if size <= max_line:
        return False
    step = max(1, max_line // 2)
    with open(file, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        start = 0
        while start < size:
            end = min(start + step, size)
            if data.find(b"\n", start, end) >= 0:
                start = end
                continue
            first = data.rfind(b"\n", 0, start) + 1
            stop = data.find(b"\n", end)
            stop = size if stop < 0 else stop
            if stop - first > max_line:
                return True
            start = stop + 1
    return False


class _Lines:
    """A file's physical lines as (number, bytes, 0), or (number, start, total bytes) for one
    longer than `max_line` (not held in memory); lines can be given back to be read again."""

    def __init__(self, src: Any, max_line: int) -> None:
        self.src, self.max_line, self.number = src, max_line, 0
        self.back: list[tuple[int, bytes, int]] = []

    def next(self) -> tuple[int, bytes, int] | None:
        """The next line, or None at the end of the file."""
        if self.back:
            return self.back.pop()
        line = self.src.readline(self.max_line + 1)
        if not line:
            return None
        self.number += 1
        if len(line) <= self.max_line or line.endswith(b"\n"):
            return self.number, line, 0
        start, total = line[:4096], len(line)
        while not line.endswith(b"\n") and (line := self.src.readline(1 << 20)):
            total += len(line)
        return self.number, start + (b"\r\n" if line.endswith(b"\r\n") else b"\n"), total

    def again(self, items: list[tuple[int, bytes, int]]) -> None:
        """Read `items` again, in order, before the next lines of the file."""
        self.back.extend(reversed(items))


def _originals(expr: str, copies: dict[str, str]) -> str:
    """`expr` (a file path) with each copy's path replaced by its original's."""
    if not copies:
        return expr
    cases = " ".join(f"WHEN {quote_literal(c)} THEN {quote_literal(f)}" for f, c in copies.items())
    return f"(CASE {expr} {cases} ELSE {expr} END)"


def _list(files: list[str]) -> str:
    return "[" + ", ".join(quote_literal(f) for f in files) + "]"


__all__ = ["SOURCE_FILE", "FilesConnector", "arrow_pool"]
