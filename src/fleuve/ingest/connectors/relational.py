"""Relational sources read through DuckDB's scanners: PostgreSQL, MySQL/MariaDB and SQLite.

The scanners stream rows straight into the lake session (PostgreSQL in parallel over page
ranges with binary COPY), which measured fastest of the paths tried; see docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from typing import ClassVar
from urllib.parse import unquote, urlsplit

import duckdb
import sqlglot
from sqlglot import exp

from fleuve.config import StreamSettings
from fleuve.ingest.connectors.base import (
    Capabilities,
    Connector,
    Cursor,
    Extract,
    ExtractContext,
    StreamInfo,
    cursor_candidates,
)
from fleuve.ingest.errors import IngestError, SourceUnavailable
from fleuve.lake import quote_ident, quote_literal
from fleuve.logs.local import scrub


class DatabaseConnector(Connector):
    """A database attached to the lake session for the length of a sync."""

    capabilities: ClassVar[Capabilities] = Capabilities(custom_query=True)
    default_schema: ClassVar[str]
    query_function: ClassVar[str | None] = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.alias = f"fleuve_src_{uuid.uuid4().hex[:10]}"

    # -- session --------------------------------------------------------------------

    def close(self, con: duckdb.DuckDBPyConnection) -> None:
        for sql in (
            f"DETACH DATABASE IF EXISTS {self.alias}",
            f"DROP SECRET IF EXISTS {self.alias}",
        ):
            with contextlib.suppress(duckdb.Error):
                con.execute(sql)

    def _unreachable(self, exc: BaseException) -> IngestError:
        text = scrub(str(exc).splitlines()[0])
        lowered = text.lower()
        if "password" in lowered or "access denied" in lowered or "authentication" in lowered:
            return IngestError(
                f"connection '{self.conn.name}': the {self.type} server refused the login: {text}",
                "check the source's user and password (write the password as ${VAR})",
            )
        if "does not exist" in lowered or "unknown database" in lowered or "no such" in lowered:
            return IngestError(
                f"connection '{self.conn.name}': {text}",
                "check the source's database name (or path) in fleuve.yml",
            )
        return SourceUnavailable(
            f"connection '{self.conn.name}': cannot reach the {self.type} source: {text}",
            "check that the server is running and that host and port are right",
        )

    # -- streams ----------------------------------------------------------------------

    def split_table(self, table: str) -> tuple[str, str]:
        """('schema', 'table') from 'schema.table' or 'table'."""
        schema, _, name = table.rpartition(".")
        return (schema or self.source.get("schema") or self.default_schema), name

    def source_columns(
        self, con: duckdb.DuckDBPyConnection, schema: str, table: str
    ) -> list[tuple[str, str, str]]:
        """(name, duckdb type, native type) of a table, in order."""
        rows = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = ? AND schema_name = ? AND table_name = ? ORDER BY column_index",
            [self.alias, schema, table],
        ).fetchall()
        if not rows:
            raise IngestError(
                f"connection '{self.conn.name}': no table {schema}.{table} in the source",
                "run `fleuve source discover " + self.conn.name + "` to list its tables",
            )
        return [(n, t, t) for n, t in rows]

    def estimate_rows(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int | None:
        """The source's own estimate of a table's row count, when it keeps one."""
        return None

    def row_bytes(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> float | None:
        """The source's average stored row size, to report bytes read."""
        return None

    def select_list(self, columns: list[tuple[str, str, str]]) -> str:
        """The projection of a table scan; subclasses map native types the scanner flattens."""
        return ", ".join(quote_ident(n) for n, _, _ in columns)

    def text_columns(self, columns: list[tuple[str, str, str]]) -> list[str]:
        """Columns the scanner would read lossily; they are read as exact text instead."""
        return []

    def query_text_columns(self, columns: list[tuple[str, str, str]]) -> list[str]:
        """Text columns a source query returns in a form the scanner misreads (as BLOB)."""
        return []

    def native_literal(self, since: Cursor) -> str:
        """The cursor value as a literal of the source's own SQL."""
        return "'" + since.value.replace("'", "''") + "'"

    def extract(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamSettings,
        since: Cursor | None,
        files: dict[str, str] | None,
        ctx: ExtractContext,
    ) -> Extract:
        cursor = stream.cursor_field
        if stream.query and self.query_function:
            inner = stream.query.strip().rstrip(";")
            if since is not None and cursor:
                inner = (
                    f"SELECT * FROM ({inner}) AS fleuve_q "
                    f"WHERE {self.native_ident(cursor)} >= {self.native_literal(since)}"
                )
            return Extract(
                relation=f"SELECT * FROM {self.query_function}({quote_literal(self.alias)}, {quote_literal(inner)})"
            )
        schema, table = self.split_table(stream.table or stream.name)
        columns = self.source_columns(con, schema, table)
        estimate, width = self.estimate_rows(con, schema, table), self.row_bytes(con, schema, table)
        if since is not None:
            estimate = None  # an incremental read is a small, unknown part of the table
        lossy = self.text_columns(columns)
        where = ""
        if since is not None and cursor:
            if cursor not in {n for n, _, _ in columns}:
                raise IngestError(
                    f"stream '{stream.name}': cursor_field '{cursor}' is not a column of {schema}.{table}",
                    f"pick one of: {', '.join(n for n, _, _ in columns)}",
                )
            where = f" WHERE {quote_ident(cursor)} >= {since.literal()}"
        # The source runs the query itself when some columns must be rendered as exact text,
        # and for incremental reads, where its index on the cursor finds the few new rows
        # (the parallel scanner reads page ranges, which no index helps).
        if (lossy or where) and self.query_function:
            lossy += self.query_text_columns(columns)
            native = ", ".join(
                f"CAST({self.native_ident(n)} AS {self.text_type}) AS {self.native_ident(n)}"
                if n in lossy
                else self.native_ident(n)
                for n, _, _ in columns
            )
            inner = f"SELECT {native} FROM {self.native_ident(schema)}.{self.native_ident(table)}"
            if where:
                inner += f" WHERE {self.native_ident(cursor)} >= {self.native_literal(since)}"  # type: ignore[arg-type]
            relation = (
                f"SELECT {self.select_list(columns)} FROM {self.query_function}("
                f"{quote_literal(self.alias)}, {quote_literal(inner)})"
            )
        else:
            relation = (
                f"SELECT {self.select_list(columns)} FROM "
                f"{self.alias}.{quote_ident(schema)}.{quote_ident(table)}{where}"
            )
        unique = self.primary_key(con, schema, table) if stream.primary_key else []
        return Extract(
            relation=relation, estimated_rows=estimate, row_bytes=width, unique_key=unique
        )

    text_type: ClassVar[str] = "TEXT"

    def native_ident(self, name: str) -> str:
        """An identifier quoted for the source's own SQL."""
        return quote_ident(name)

    def check(self, con: duckdb.DuckDBPyConnection) -> str:
        tables = self._tables(con)
        return f"reached {self.type} source; {len(tables)} tables visible"

    def _tables(self, con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
        """(schema, table) pairs, limited to source.schema when it is set."""
        found = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
            "UNION SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = ? "
            "AND NOT internal ORDER BY 1, 2",
            [self.alias, self.alias],
        ).fetchall()
        wanted = self.source.get("schema")
        hidden = ("information_schema", "pg_catalog", "mysql", "performance_schema", "sys")
        return [(s, t) for s, t in found if (s == wanted if wanted else s not in hidden)]

    def discover(self, con: duckdb.DuckDBPyConnection) -> list[StreamInfo]:
        tables = self._tables(con)
        columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, table, name, kind in con.execute(
            "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = ? ORDER BY schema_name, table_name, column_index",
            [self.alias],
        ).fetchall():
            columns.setdefault((schema, table), []).append((name, kind))
        keys, estimates = self.catalog_facts(con, tables)
        out = []
        for schema, table in tables:
            cols = columns.get((schema, table), [])
            out.append(
                StreamInfo(
                    name=table if schema == self.default_schema else f"{schema}.{table}",
                    columns=cols,
                    primary_key=keys.get((schema, table), []),
                    cursor_candidates=cursor_candidates(cols),
                    sync_modes=list(self.capabilities.sync_modes),
                    estimated_rows=estimates.get((schema, table)),
                )
            )
        return out

    def catalog_facts(
        self, con: duckdb.DuckDBPyConnection, tables: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], int | None]]:
        """Primary keys and row estimates of `tables` (sources with a catalog ask it once)."""
        keys = {t: self.primary_key(con, *t) for t in tables}
        return keys, {t: self.estimate_rows(con, *t) for t in tables}

    def primary_key(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
        """The table's declared primary key, when the scanner reports it."""
        rows = con.execute(
            "SELECT constraint_column_names FROM duckdb_constraints() WHERE database_name = ? "
            "AND schema_name = ? AND table_name = ? AND constraint_type = 'PRIMARY KEY'",
            [self.alias, schema, table],
        ).fetchall()
        return list(rows[0][0]) if rows else []


def _dsn_fields(source: dict, kind: str) -> dict[str, str]:
    """Host, port, database, user and password from `dsn:` or the individual keys."""
    fields: dict[str, str] = {}
    if dsn := source.get("dsn"):
        parts = urlsplit(dsn)
        if parts.hostname:
            fields["host"] = parts.hostname
        if parts.port:
            fields["port"] = str(parts.port)
        if parts.username:
            fields["user"] = unquote(parts.username)
        if parts.password:
            fields["password"] = unquote(parts.password)
        if parts.path.strip("/"):
            fields["database"] = parts.path.strip("/")
    for key in ("host", "port", "database", "user", "password"):
        if source.get(key) is not None:
            fields[key] = str(source[key])
    if "database" not in fields:
        raise IngestError(
            f"the {kind} source needs a database",
            f"set source.database (or a dsn such as {kind}://user@host/db)",
        )
    return fields


def _secret_sql(name: str, kind: str, fields: dict[str, str]) -> str:
    body = ", ".join(f"{k.upper()} {quote_literal(v)}" for k, v in fields.items())
    return f"CREATE OR REPLACE SECRET {name} (TYPE {kind}, {body})"


class PostgresConnector(DatabaseConnector):
    """PostgreSQL: tables (in parallel, binary COPY) or custom queries run by the server."""

    type = "postgres"
    default_schema = "public"
    query_function = "postgres_query"

    def open(self, con: duckdb.DuckDBPyConnection) -> None:
        fields = _dsn_fields(self.source, "postgresql")
        fields.setdefault("host", "127.0.0.1")
        try:
            con.execute(_secret_sql(self.alias, "postgres", fields))
            con.execute(
                f"ATTACH '' AS {self.alias} (TYPE postgres, SECRET {self.alias}, READ_ONLY)"
            )
        except duckdb.Error as exc:
            raise self._unreachable(exc) from None

    def source_columns(
        self, con: duckdb.DuckDBPyConnection, schema: str, table: str
    ) -> list[tuple[str, str, str]]:
        base = super().source_columns(con, schema, table)
        native = dict(
            con.execute(
                "SELECT * FROM postgres_query(?, ?)",
                [
                    self.alias,
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    f"WHERE attrelid = {quote_literal(quote_ident(schema) + '.' + quote_ident(table))}::regclass "
                    "AND attnum > 0 AND NOT attisdropped",
                ],
            ).fetchall()
        )
        return [(n, t, native.get(n, t)) for n, t, _ in base]

    def text_columns(self, columns: list[tuple[str, str, str]]) -> list[str]:
        # NUMERIC without a precision, or wider than 38 digits, would become a DOUBLE.
        out = []
        for name, _, native in columns:
            if (
                native == "numeric"
                or native == "numeric[]"
                or (
                    native.startswith("numeric(") and int(native[8:].split(",")[0].rstrip(")")) > 38
                )
            ):
                out.append(name)
        return out

    def select_list(self, columns: list[tuple[str, str, str]]) -> str:
        parts = []
        for name, _, native in columns:
            ident = quote_ident(name)
            parts.append(
                f"CAST({ident} AS JSON) AS {ident}" if native in ("json", "jsonb") else ident
            )
        return ", ".join(parts)

    def estimate_rows(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int | None:
        rows = con.execute(
            "SELECT * FROM postgres_query(?, ?)",
            [
                self.alias,
                "SELECT reltuples::bigint FROM pg_class WHERE oid = "
                f"{quote_literal(quote_ident(schema) + '.' + quote_ident(table))}::regclass",
            ],
        ).fetchall()
        return int(rows[0][0]) if rows and rows[0][0] and rows[0][0] > 0 else None

    def catalog_facts(
        self, con: duckdb.DuckDBPyConnection, tables: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], int | None]]:
        keys: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in con.execute(
            "SELECT * FROM postgres_query(?, ?)",
            [
                self.alias,
                "SELECT n.nspname, c.relname, a.attname FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true "
                "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
                "WHERE i.indisprimary ORDER BY 1, 2, k.pos",
            ],
        ).fetchall():
            keys.setdefault((schema, table), []).append(column)
        estimates = {
            (s, t): int(n) if n and n > 0 else None
            for s, t, n in con.execute(
                "SELECT * FROM postgres_query(?, ?)",
                [
                    self.alias,
                    "SELECT n.nspname, c.relname, c.reltuples::bigint FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')",
                ],
            ).fetchall()
        }
        return keys, estimates

    def row_bytes(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> float | None:
        rows = con.execute(
            "SELECT * FROM postgres_query(?, ?)",
            [
                self.alias,
                "SELECT pg_relation_size(oid)::float8 / greatest(reltuples, 1) FROM pg_class "
                f"WHERE oid = {quote_literal(quote_ident(schema) + '.' + quote_ident(table))}::regclass "
                "AND reltuples > 0",
            ],
        ).fetchall()
        return float(rows[0][0]) if rows else None

    def primary_key(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
        rows = con.execute(
            "SELECT * FROM postgres_query(?, ?)",
            [
                self.alias,
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = "
                f"{quote_literal(quote_ident(schema) + '.' + quote_ident(table))}::regclass",
            ],
        ).fetchall()
        return [r[0] for r in rows]


class MySQLConnector(DatabaseConnector):
    """MySQL and MariaDB: tables or custom queries, through DuckDB's MySQL scanner."""

    type = "mysql"
    default_schema = ""
    query_function = "mysql_query"
    text_type = "CHAR"

    def open(self, con: duckdb.DuckDBPyConnection) -> None:
        fields = _dsn_fields(self.source, "mysql")
        fields.setdefault("host", "127.0.0.1")
        try:
            con.execute(_secret_sql(self.alias, "mysql", fields))
            con.execute(f"ATTACH '' AS {self.alias} (TYPE mysql, SECRET {self.alias}, READ_ONLY)")
        except duckdb.Error as exc:
            raise self._unreachable(exc) from None
        self.database = fields["database"]

    def split_table(self, table: str) -> tuple[str, str]:
        schema, _, name = table.rpartition(".")
        return (schema or self.database), name

    def native_ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def source_columns(
        self, con: duckdb.DuckDBPyConnection, schema: str, table: str
    ) -> list[tuple[str, str, str]]:
        base = super().source_columns(con, schema, table)
        native = dict(
            con.execute(
                "SELECT * FROM mysql_query(?, ?)",
                [
                    self.alias,
                    "SELECT column_name, column_type FROM information_schema.columns "
                    f"WHERE table_schema = {quote_literal(schema)} AND table_name = {quote_literal(table)}",
                ],
            ).fetchall()
        )
        return [(n, t, str(native.get(n, t)).lower()) for n, t, _ in base]

    def text_columns(self, columns: list[tuple[str, str, str]]) -> list[str]:
        out = []
        for name, _, native in columns:
            if native.startswith("decimal(") and int(native[8:].split(",")[0].rstrip(")")) > 38:
                out.append(name)
        return out

    def query_text_columns(self, columns: list[tuple[str, str, str]]) -> list[str]:
        # mysql_query() hands TEXT and JSON columns over as BLOB.
        return [n for n, _, native in columns if native.endswith("text") or native == "json"]

    def select_list(self, columns: list[tuple[str, str, str]]) -> str:
        parts = []
        for name, _, native in columns:
            ident = quote_ident(name)
            if native == "json":
                parts.append(f"CAST({ident} AS JSON) AS {ident}")
            elif native == "tinyint(1)":
                parts.append(f"CAST({ident} AS BOOLEAN) AS {ident}")
            else:
                parts.append(ident)
        return ", ".join(parts)

    def estimate_rows(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> int | None:
        rows = con.execute(
            "SELECT * FROM mysql_query(?, ?)",
            [
                self.alias,
                "SELECT table_rows FROM information_schema.tables "
                f"WHERE table_schema = {quote_literal(schema)} AND table_name = {quote_literal(table)}",
            ],
        ).fetchall()
        return int(rows[0][0]) if rows and rows[0][0] else None

    def row_bytes(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> float | None:
        rows = con.execute(
            "SELECT * FROM mysql_query(?, ?)",
            [
                self.alias,
                "SELECT avg_row_length FROM information_schema.tables "
                f"WHERE table_schema = {quote_literal(schema)} AND table_name = {quote_literal(table)}",
            ],
        ).fetchall()
        return float(rows[0][0]) if rows and rows[0][0] else None

    def discover(self, con: duckdb.DuckDBPyConnection) -> list[StreamInfo]:
        self.default_schema = self.database  # type: ignore[misc]
        return super().discover(con)

    def catalog_facts(
        self, con: duckdb.DuckDBPyConnection, tables: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], list[str]], dict[tuple[str, str], int | None]]:
        keys: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in con.execute(
            "SELECT * FROM mysql_query(?, ?)",
            [
                self.alias,
                "SELECT table_schema, table_name, column_name FROM information_schema.key_column_usage "
                f"WHERE constraint_name = 'PRIMARY' AND table_schema = {quote_literal(self.database)} "
                "ORDER BY table_name, ordinal_position",
            ],
        ).fetchall():
            keys.setdefault((schema, table), []).append(column)
        estimates = {
            (s, t): int(n) if n else None
            for s, t, n in con.execute(
                "SELECT * FROM mysql_query(?, ?)",
                [
                    self.alias,
                    "SELECT table_schema, table_name, table_rows FROM information_schema.tables "
                    f"WHERE table_schema = {quote_literal(self.database)}",
                ],
            ).fetchall()
        }
        return keys, estimates

    def primary_key(self, con: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[str]:
        rows = con.execute(
            "SELECT * FROM mysql_query(?, ?)",
            [
                self.alias,
                "SELECT column_name FROM information_schema.key_column_usage WHERE "
                f"constraint_name = 'PRIMARY' AND table_schema = {quote_literal(schema)} "
                f"AND table_name = {quote_literal(table)} ORDER BY ordinal_position",
            ],
        ).fetchall()
        return [r[0] for r in rows]


class SQLiteConnector(DatabaseConnector):
    """A SQLite database file (the demo's shop); custom queries run in DuckDB over it."""

    type = "sqlite"
    default_schema = "main"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        # Streams whose table holds values of another kind than their column's: read as text.
        self.loose: set[str] = set()

    def path(self) -> Path:
        """The database file, resolved against the project folder."""
        if "path" not in self.source:
            raise IngestError(
                f"connection '{self.conn.name}': the sqlite source needs a path",
                "set source.path to the database file, e.g. sources/shop.sqlite",
            )
        return self.settings.path(self.source["path"])

    def open(self, con: duckdb.DuckDBPyConnection) -> None:
        path = self.path()
        if not path.exists():
            raise IngestError(
                f"connection '{self.conn.name}': no SQLite database at {path}",
                "fix source.path in fleuve.yml",
            )
        try:
            con.execute(
                f"ATTACH {quote_literal(str(path))} AS {self.alias} (TYPE sqlite, READ_ONLY)"
            )
        except duckdb.Error as exc:
            raise self._unreachable(exc) from None

    def _in_file(self, query: str) -> str:
        """The query with its tables resolved in the attached file rather than the lake."""
        try:
            tree = sqlglot.parse_one(query.strip().rstrip(";"), read="duckdb")
        except sqlglot.errors.ParseError as exc:
            raise IngestError(
                f"connection '{self.conn.name}': cannot parse the stream's query: {exc}",
                "write the query in DuckDB's SQL dialect",
            ) from None
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if not table.args.get("catalog") and table.name not in ctes:
                table.set("catalog", exp.to_identifier(self.alias))
                if not table.args.get("db"):
                    table.set("db", exp.to_identifier("main"))
        return tree.sql(dialect="duckdb")

    def extract(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: StreamSettings,
        since: Cursor | None,
        files: dict[str, str] | None,
        ctx: ExtractContext,
    ) -> Extract:
        if stream.query:
            relation = f"SELECT * FROM ({self._in_file(stream.query)}) AS q"
            if since is not None and stream.cursor_field:
                relation += f" WHERE {quote_ident(stream.cursor_field)} >= {since.literal()}"
            return Extract(relation=relation)
        if stream.name in self.loose:
            return self._as_text(con, stream, since)
        extract = super().extract(con, stream, since, files, ctx)
        extract.bytes_read = 0
        # SQLite stores a value of any kind in any column, which DuckDB's scanner refuses:
        # a load that fails reads the table again as text, setting such rows apart.
        extract.fallback = lambda: self.loose.add(stream.name)
        return extract

    def _as_text(
        self, con: duckdb.DuckDBPyConnection, stream: StreamSettings, since: Cursor | None
    ) -> Extract:
        """The table read as text by a session of its own (`sqlite_all_varchar`, which no
        other read sees), each value cast to its column's declared type; a row with a value
        that does not fit is rejected, naming the column, the value and the type."""
        schema, table = self.split_table(stream.table or stream.name)
        columns = [(n, t) for n, t, _ in self.source_columns(con, schema, table)]
        text = _SQLiteText(con, f"{self.alias}.{quote_ident(schema)}.{quote_ident(table)}")
        con.register(text.name, text)

        def cast(name: str, kind: str) -> str:
            return f"TRY_CAST({quote_ident(name)} AS {kind})"

        misfits = {
            n: f"({quote_ident(n)} IS NOT NULL AND {cast(n, t)} IS NULL)" for n, t in columns
        }
        fits = " AND ".join(f"NOT {m}" for m in misfits.values()) or "true"
        where = ""
        if since is not None and stream.cursor_field:
            kind = dict(columns).get(stream.cursor_field, "VARCHAR")
            where = f" AND {cast(stream.cursor_field, kind)} >= {since.literal()}"
        values = ", ".join(f"{cast(n, t)} AS {quote_ident(n)}" for n, t in columns)
        reasons = ", ".join(
            f"CASE WHEN {m} THEN {quote_literal(f'column {n}: ' + chr(39))} || left({quote_ident(n)}, 200) "
            f"|| {quote_literal(chr(39) + f' is not a {t}')} END"
            for (n, t), m in zip(columns, misfits.values(), strict=True)
        )
        raw = ", ".join(f"{quote_literal(n)}: {quote_ident(n)}" for n, _ in columns)
        return Extract(
            relation=f"SELECT {values} FROM {text.name} WHERE {fits}{where}",
            rejected=(
                f"SELECT {quote_literal(f'{schema}.{table} row ')} || fleuve_row AS location, "
                f"'value of another type than its column: ' || concat_ws('; ', {reasons}) "
                f"AS reason, CAST(to_json({{{raw}}}) AS VARCHAR) AS raw "
                f"FROM (SELECT *, row_number() OVER () AS fleuve_row FROM {text.name}) "
                f"WHERE NOT ({fits}){where}"
            ),
        )


class _SQLiteText:
    """An attached SQLite table's rows as text, as an Arrow stream DuckDB can scan again: each
    scan runs on a session of its own with `sqlite_all_varchar` set."""

    def __init__(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        self.con, self.table = con, table
        self.name = f"fleuve_sqlite_text_{uuid.uuid4().hex[:12]}"

    def _session(self) -> duckdb.DuckDBPyConnection:
        """A new session of the same database (it sees the attached file) reading text."""
        session = self.con.cursor()
        session.execute("SET sqlite_all_varchar = true")
        return session

    def __arrow_c_schema__(self) -> object:
        session = self._session()
        try:
            empty = session.execute(f"SELECT * FROM {self.table} LIMIT 0").arrow()
            return empty.schema.__arrow_c_schema__()
        finally:
            session.close()

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        session = self._session()
        reader = session.execute(f"SELECT * FROM {self.table}").to_arrow_reader()
        return reader.__arrow_c_stream__(requested_schema)
