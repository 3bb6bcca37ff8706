"""Real sources for the ingestion tests: PostgreSQL, MariaDB, SQLite, files, S3 and an HTTP API."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
import pymysql
import pytest
import yaml

from fleuve.ingest import SyncResult, sync_connection
from fleuve.project import Project, init_project
from tests.conftest import PG_ADMIN, S3Server

BASE = datetime(2026, 1, 1, 12, 0, 0)
NAMES = ["Élodie Durand", "李小龙", "محمد علي", "佐藤 花子", "Zoë O'Brien", "Jürgen Groß"]


@dataclass(frozen=True)
class Row:
    """One source row of the conformance data set."""

    id: int
    name: str
    amount: Decimal
    updated_at: datetime


def rows(ids: range | list[int], minute: int = 0, tag: str = "") -> list[Row]:
    """Rows with ids `ids`; the last two of an initial batch share one cursor value."""
    out = []
    for i in ids:
        stamp = BASE + timedelta(minutes=minute, seconds=min(i, 99))
        out.append(Row(i, f"{NAMES[i % len(NAMES)]} {i}{tag}", Decimal(i) / 4, stamp))
    return out


class Harness:
    """A source the conformance suite can create, grow and change."""

    kind = ""
    source: dict[str, Any]

    def stream(self) -> dict[str, Any]:
        """The items stream as it is declared in fleuve.yml."""
        raise NotImplementedError

    def load(self, data: list[Row]) -> None:
        """Create the source with `data`."""
        raise NotImplementedError

    def add(self, data: list[Row]) -> None:
        """Insert new rows."""
        raise NotImplementedError

    def change(self, data: list[Row]) -> None:
        """Update existing rows (same ids, new values and cursor)."""
        raise NotImplementedError

    def add_odd(self, data: list[Row]) -> dict[int, str] | None:
        """Add `data` (three rows) with values of another kind than their column's, as the
        source can hold them: the first row's name written as a number, the second's amount
        as text ('n/a'). The name each row must keep, by id; None if the source's declared
        column types refuse such values."""
        return None

    def add_malformed(self, data: list[Row]) -> int | None:
        """Add `data` and records the source cannot hand over as rows (malformed lines, not
        objects); how many. None if the source only hands over well-formed rows."""
        return None

    def close(self) -> None:
        """Drop what was created."""


class PostgresHarness(Harness):
    kind = "postgres"

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.source = {
            "type": "postgres",
            "dsn": "postgresql://postgres@127.0.0.1:5432/test",
            "schema": schema,
        }

    def stream(self) -> dict[str, Any]:
        return {"table": "items"}

    def _exec(
        self, sql: str, params: list[Any] | None = None, many: list[Any] | None = None
    ) -> None:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            if many is not None:
                conn.cursor().executemany(sql, many)
            else:
                conn.execute(sql, params)

    def load(self, data: list[Row]) -> None:
        self._exec(
            f'CREATE TABLE "{self.schema}".items (id integer PRIMARY KEY, name text, '
            "amount numeric(10,2), updated_at timestamp)"
        )
        self.add(data)

    def add(self, data: list[Row]) -> None:
        self._exec(
            f'INSERT INTO "{self.schema}".items VALUES (%s, %s, %s, %s)',
            many=[(r.id, r.name, r.amount, r.updated_at) for r in data],
        )

    def change(self, data: list[Row]) -> None:
        self._exec(
            f'UPDATE "{self.schema}".items SET name = %s, amount = %s, updated_at = %s WHERE id = %s',
            many=[(r.name, r.amount, r.updated_at, r.id) for r in data],
        )


MYSQL = {"host": "127.0.0.1", "port": 3306, "user": "root", "database": "test"}


class MySQLHarness(Harness):
    kind = "mysql"

    def __init__(self) -> None:
        self.table = f"items_{uuid.uuid4().hex[:8]}"
        self.source = {"type": "mysql", **MYSQL}

    def stream(self) -> dict[str, Any]:
        return {"table": self.table}

    def _exec(self, sql: str, many: list[Any] | None = None) -> None:
        conn = pymysql.connect(**MYSQL, autocommit=True, charset="utf8mb4")
        try:
            with conn.cursor() as cur:
                if many is not None:
                    cur.executemany(sql, many)
                else:
                    cur.execute(sql)
        finally:
            conn.close()

    def load(self, data: list[Row]) -> None:
        self._exec(
            f"CREATE TABLE {self.table} (id INT PRIMARY KEY, name VARCHAR(200), "
            "amount DECIMAL(10,2), updated_at DATETIME(6)) CHARACTER SET utf8mb4"
        )
        self.add(data)

    def add(self, data: list[Row]) -> None:
        self._exec(
            f"INSERT INTO {self.table} VALUES (%s, %s, %s, %s)",
            many=[(r.id, r.name, r.amount, r.updated_at) for r in data],
        )

    def change(self, data: list[Row]) -> None:
        self._exec(
            f"UPDATE {self.table} SET name = %s, amount = %s, updated_at = %s WHERE id = %s",
            many=[(r.name, r.amount, r.updated_at, r.id) for r in data],
        )

    def close(self) -> None:
        self._exec(f"DROP TABLE IF EXISTS {self.table}")


class SQLiteHarness(Harness):
    kind = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.path = folder / "source.sqlite"
        self.source = {"type": "sqlite", "path": str(self.path)}

    def stream(self) -> dict[str, Any]:
        return {"table": "items"}

    def load(self, data: list[Row]) -> None:
        with sqlite3.connect(self.path) as db:
            db.execute(
                "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, amount DECIMAL(10,2), "
                "updated_at TIMESTAMP)"
            )
        self.add(data)

    def add(self, data: list[Row]) -> None:
        with sqlite3.connect(self.path) as db:
            db.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?)",
                [(r.id, r.name, float(r.amount), r.updated_at.isoformat(" ")) for r in data],
            )

    def change(self, data: list[Row]) -> None:
        with sqlite3.connect(self.path) as db:
            db.executemany(
                "UPDATE items SET name = ?, amount = ?, updated_at = ? WHERE id = ?",
                [(r.name, float(r.amount), r.updated_at.isoformat(" "), r.id) for r in data],
            )

    def add_odd(self, data: list[Row]) -> dict[int, str] | None:
        # SQLite stores a value of any kind in any column.
        odd: list[tuple[Any, ...]] = [
            (r.id, r.name, float(r.amount), r.updated_at.isoformat(" ")) for r in data
        ]
        odd[0] = (data[0].id, f"{data[0].id:04d}", *odd[0][2:])
        odd[1] = (*odd[1][:2], "n/a", odd[1][3])
        with sqlite3.connect(self.path) as db:
            db.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", odd)
        return {data[0].id: f"{data[0].id:04d}", data[2].id: data[2].name}


def csv_text(data: list[Row]) -> str:
    """The rows as CSV with a header."""
    lines = ["id,name,amount,updated_at"]
    lines += [f'{r.id},"{r.name}",{r.amount},{r.updated_at.isoformat(" ")}' for r in data]
    return "\n".join(lines) + "\n"


class FilesHarness(Harness):
    """A drop folder: every change arrives as a new CSV file."""

    kind = "files"

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "drops"
        self.folder.mkdir()
        self.source = {"type": "files", "path": str(self.folder)}
        self.count = 0

    def stream(self) -> dict[str, Any]:
        # Lines are short here: a line above 4 KiB is a malformed one (`add_malformed`).
        return {"path": "items/*.csv", "options": {"max_line_size": 4096}}

    def write(self, name: str, text: str) -> None:
        target = self.folder / "items" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def _drop(self, data: list[Row]) -> None:
        self.count += 1
        self.write(f"part-{self.count:03d}.csv", csv_text(data))

    load = add = change = _drop

    def add_odd(self, data: list[Row]) -> dict[int, str] | None:
        # A file of its own, where every name is digits and one amount is text: the sniffer
        # reads the names as numbers (dropping leading zeros) and the amounts as text.
        names = {r.id: f"{r.id:04d}" for r in data}
        lines = ["id,name,amount,updated_at"]
        for i, r in enumerate(data):
            amount = "n/a" if i == 1 else str(r.amount)
            lines.append(f"{r.id},{names[r.id]},{amount},{r.updated_at.isoformat(' ')}")
        self.count += 1
        self.write(f"part-{self.count:03d}.csv", "\n".join(lines) + "\n")
        return {data[0].id: names[data[0].id], data[2].id: names[data[2].id]}

    def add_malformed(self, data: list[Row]) -> int | None:
        good = csv_text(data).encode()
        bad = [
            b"900,too,many,fields,here\n",  # two fields too many: DuckDB reports it twice
            '901,"Caf\xe9",1.5,2026-01-01 12:00:00\n'.encode("latin-1"),  # invalid UTF-8
            b'902,"' + b"x" * 5000 + b'",1.5,2026-01-01 12:00:00\n',  # above max_line_size
            b'903,"never closed,1.5,2026-01-01 12:00:00\n',  # a quote left open
        ]
        header, _, body = good.partition(b"\n")
        lines = body.splitlines(keepends=True)
        mixed = [header + b"\n", *lines[:3], bad[0], *lines[3:6], bad[1], *lines[6:], bad[2]]
        self.count += 1
        target = f"part-{self.count:03d}.csv"
        self.write_bytes(target, b"".join([*mixed, bad[3]]))
        return len(bad)

    def write_bytes(self, name: str, data: bytes) -> None:
        target = self.folder / "items" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


class S3Harness(FilesHarness):
    """The same drop folder in an S3 bucket."""

    kind = "s3"

    def __init__(self, server: S3Server) -> None:
        self.server = server
        self.bucket = server.bucket()
        self.client = server.client()
        self.source = {
            "type": "files",
            "path": f"s3://{self.bucket}/drops",
            "s3": {
                "endpoint": server.endpoint,
                "access_key_id": server.access_key,
                "secret_access_key": server.secret_key,
                "use_ssl": False,
                "url_style": "path",
            },
        }
        self.count = 0

    def write(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def write_bytes(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=f"drops/items/{name}", Body=data)


@dataclass
class ApiState:
    """What the test API serves and how it misbehaves."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    api_key: str = "k-" + uuid.uuid4().hex
    fail_next: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    # This page of the page style is answered with a body cut in the middle of a record.
    broken_page: int = 0
    requests: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


class TestAPI:
    """A JSON API on a free loopback port with page, offset, cursor, next-link and Link paging."""

    __test__ = False

    def __init__(self) -> None:
        self.state = ApiState()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return

            def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self, params: dict[str, str]) -> bool:
                st = api.state
                got = (
                    self.headers.get("X-API-Key")
                    or params.get("key")
                    or self.headers.get("Authorization", "").removeprefix("Bearer ")
                )
                if self.headers.get("Authorization", "").startswith("Basic "):
                    import base64

                    user, _, pw = (
                        base64.b64decode(self.headers["Authorization"][6:]).decode().partition(":")
                    )
                    return user == "reader" and pw == st.api_key
                return got == st.api_key

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                self._serve(url.path, params)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                self._serve(urlsplit(self.path).path, {k: str(v) for k, v in body.items()})

            def _serve(self, path: str, params: dict[str, str]) -> None:
                st = api.state
                st.requests.append((self.command, path, params))
                if st.delay:
                    import time

                    time.sleep(st.delay)
                if st.fail_next > 0:
                    st.fail_next -= 1
                    headers = {"Retry-After": st.retry_after} if st.retry_after else {}
                    return self._send(st.fail_status, {"error": "try later"}, headers)
                if not self._authorized(params):
                    return self._send(401, {"error": "unauthorized"})
                style, _, name = path.strip("/").partition("/")
                data = st.records.get(name)
                if data is None:
                    return self._send(404, {"error": "no such endpoint"})
                since = params.get("updated_since")
                # Records that are not objects are sent as they are, whatever the cursor.
                data = [
                    r
                    for r in data
                    if not since or not isinstance(r, dict) or r["updated_at"] >= since
                ]
                size = int(
                    params.get("per_page") or params.get("limit") or params.get("size") or 10
                )
                if style == "page":
                    page = int(params.get("page", 1))
                    if page == st.broken_page:
                        cut = json.dumps({"data": data[:2]})[:40].encode()
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(cut)))
                        self.end_headers()
                        self.wfile.write(cut)
                        return None
                    chunk = data[(page - 1) * size : page * size]
                    return self._send(200, {"data": chunk, "page": page})
                if style == "offset":
                    off = int(params.get("offset", 0))
                    return self._send(200, {"results": {"items": data[off : off + size]}})
                start = int(params.get("cursor") or params.get("after") or 0)
                chunk = data[start : start + size]
                nxt = start + size if start + size < len(data) else None
                if style == "cursor":
                    return self._send(200, {"data": chunk, "meta": {"next": nxt and str(nxt)}})
                link = f"{api.url}/{style}/{name}?after={nxt}&size={size}" if nxt else None
                if since and link:
                    link += f"&updated_since={since}"
                if style == "next":
                    return self._send(200, {"data": chunk, "next": link})
                if style == "link":
                    headers = {"Link": f'<{link}>; rel="next"'} if link else {}
                    return self._send(200, chunk, headers)
                return self._send(404, {"error": "unknown style"})

        return Handler


class RestHarness(Harness):
    kind = "rest"

    def __init__(self, api: TestAPI) -> None:
        self.api = api
        self.source = {
            "type": "rest",
            "url": api.url,
            "auth": {"type": "api_key", "name": "X-API-Key", "value": api.state.api_key},
            "pagination": {"type": "page", "size": 7},
        }

    def stream(self) -> dict[str, Any]:
        return {"path": "/page/items", "options": {"cursor_param": "updated_since"}}

    @staticmethod
    def _json(r: Row) -> dict[str, Any]:
        return {
            "id": r.id,
            "name": r.name,
            "amount": float(r.amount),
            "updated_at": r.updated_at.isoformat(),
        }

    def load(self, data: list[Row]) -> None:
        self.api.state.records["items"] = [self._json(r) for r in data]

    def add(self, data: list[Row]) -> None:
        self.api.state.records["items"] += [self._json(r) for r in data]

    def change(self, data: list[Row]) -> None:
        by_id = {r.id: r for r in data}
        current = [r for r in self.api.state.records["items"] if r["id"] not in by_id]
        # An API returns changed records in cursor order, so they move to the end.
        self.api.state.records["items"] = current + [self._json(r) for r in data]

    def add_odd(self, data: list[Row]) -> dict[int, str] | None:
        odd = [self._json(r) for r in data]
        odd[0]["name"] = data[0].id  # a JSON number among strings
        odd[1]["amount"] = "n/a"  # a JSON string among numbers
        self.api.state.records["items"] += odd
        return {data[0].id: str(data[0].id), data[2].id: data[2].name}

    def add_malformed(self, data: list[Row]) -> int | None:
        records: list[Any] = [self._json(r) for r in data]
        records[2:2] = ["not a record", [1, 2]]
        self.api.state.records["items"] += records
        return 2


@pytest.fixture
def api() -> Iterator[TestAPI]:
    """A real HTTP API on a free loopback port."""
    server = TestAPI()
    try:
        yield server
    finally:
        server.stop()


KINDS = ["postgres", "mysql", "sqlite", "files", "s3", "rest"]


@pytest.fixture(params=KINDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    """Each kind of source in turn."""
    kind = request.param
    if kind == "postgres":
        h: Harness = PostgresHarness(request.getfixturevalue("pg_schema"))
    elif kind == "mysql":
        h = MySQLHarness()
    elif kind == "sqlite":
        h = SQLiteHarness(tmp_path)
    elif kind == "files":
        h = FilesHarness(tmp_path)
    elif kind == "s3":
        h = S3Harness(request.getfixturevalue("s3_server"))
    else:
        h = RestHarness(request.getfixturevalue("api"))
    try:
        yield h
    finally:
        h.close()


@dataclass
class Workspace:
    """A project whose connections a test declares, and helpers to sync and read bronze."""

    folder: Path
    project: Project | None = None

    def configure(self, connections: list[dict[str, Any]]) -> Project:
        """Write `connections` into fleuve.yml and (re)open the project."""
        if self.project is not None:
            self.project.close()
        config_file = self.folder / "fleuve.yml"
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        config["connections"] = connections
        config_file.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        self.project = Project.open(self.folder)
        return self.project

    def sync(self, name: str = "src", **kwargs: Any) -> SyncResult:
        """Sync a connection and return the result."""
        p = self.project
        assert p is not None
        return sync_connection(p.settings, p.lake, p.db, name, **kwargs)

    def rows(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a query on the lake."""
        assert self.project is not None
        cur = self.project.lake.connect()
        try:
            return cur.execute(sql, params or []).fetchall()
        finally:
            cur.close()

    def close(self) -> None:
        if self.project is not None:
            self.project.close()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """An initialized project to declare connections in."""
    init_project(tmp_path / "proj", "ingest-test")
    ws = Workspace(tmp_path / "proj")
    try:
        yield ws
    finally:
        ws.close()


def sync_killed_after(project: Path, seconds: float) -> bool:
    """`fleuve sync src` in its own process, SIGKILLed after `seconds`; True if it was killed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleuve", "sync", "src"],
        env={**os.environ, "FLEUVE_PROJECT": str(project)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(seconds)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


def connection(
    source: dict[str, Any], streams: list[dict[str, Any]], **settings: Any
) -> dict[str, Any]:
    """A connection named 'src' as fleuve.yml declares it."""
    return {"name": "src", "source": source, "streams": streams, **settings}


Maker = Callable[..., dict[str, Any]]
