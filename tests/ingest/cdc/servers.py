"""Private PostgreSQL and MariaDB servers for change data capture: their own data folders,
transaction logs set up for replication, free loopback ports; the machine's shared servers are
left as they are."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pymysql

from tests.conftest import free_port


def _unprivileged_user() -> str | None:
    """The account servers run as when the tests run as root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root, and no 'postgres' or 'nobody' account to run PostgreSQL")


def _wait(ready: Any, proc: subprocess.Popen[bytes], log: Path, what: str, seconds: float) -> None:
    """Poll `ready()` until it succeeds, failing with the server's log if it dies or times out."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{what} exited at start:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            ready()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{what} not ready after {seconds:g}s:\n{log.read_text(errors='replace')[-3000:]}"
                ) from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes] | None, sig: int) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in a temporary folder with `wal_level=logical` and trust auth."""

    port: int = 0
    root: Path = field(default_factory=Path)
    proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def binaries() -> Path:
        """The newest installed PostgreSQL's bin folder."""
        found = sorted(
            glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
        )
        if not found:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin")
        return Path(found[-1]).parent

    def start(self) -> PostgresServer:
        """initdb, then start the server and wait until it takes connections."""
        user = _unprivileged_user()
        self.root = Path(tempfile.mkdtemp(prefix="fleuve-cdc-pg-"))
        data, log = self.root / "data", self.root / "server.log"
        if user:
            shutil.chown(self.root, user)
        bins = self.binaries()
        subprocess.run(
            [str(bins / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync",
             "-E", "UTF8", "--locale=C.UTF-8"],
            check=True, capture_output=True, user=user,
        )  # fmt: skip
        self.port = free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "wal_level": "logical",
            "max_replication_slots": "32",
            "max_wal_senders": "32",
            "max_connections": "100",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "64MB",
            "logging_collector": "off",
        }
        args = [str(bins / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, user=user, start_new_session=True
            )
        _wait(lambda: psycopg.connect(self.dsn(), connect_timeout=2).close(), self.proc, log,
              "PostgreSQL", 60)  # fmt: skip
        return self

    def dsn(self, database: str = "postgres") -> str:
        """A libpq URL of the server as its superuser."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, params: Any = None, database: str = "postgres") -> list[tuple]:
        """Run `sql` in autocommit mode; its rows, if any."""
        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def stop(self) -> None:
        """Fast shutdown, then remove the cluster's folder."""
        _stop(self.proc, signal.SIGINT)
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class MariaDBServer:
    """A MariaDB server in a temporary folder with its row-based binary log on."""

    port: int = 0
    root: Path = field(default_factory=Path)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> MariaDBServer:
        """mariadb-install-db, then start the server and wait until it takes connections."""
        self.root = Path(tempfile.mkdtemp(prefix="fleuve-cdc-maria-"))
        data, log = self.root / "data", self.root / "server.log"
        user = ["--user=root"] if os.geteuid() == 0 else []
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}",
             "--auth-root-authentication-method=normal", "--skip-test-db", *user],
            check=True, capture_output=True,
        )  # fmt: skip
        self.port = free_port()
        args = [
            "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={data}", f"--port={self.port}",
            "--bind-address=127.0.0.1", f"--socket={self.root / 'mysqld.sock'}",
            f"--pid-file={self.root / 'mysqld.pid'}", f"--log-bin={data / 'binlog'}",
            "--binlog-format=ROW", "--binlog-row-image=FULL", "--binlog-row-metadata=FULL",
            "--server-id=1",
            "--innodb-buffer-pool-size=64M", "--innodb-flush-log-at-trx-commit=0",
            "--sync-binlog=0", "--skip-name-resolve", "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci", *user,
        ]  # fmt: skip
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait(lambda: self.connect().close(), self.proc, log, "MariaDB", 60)
        return self

    def connect(self, database: str | None = None) -> pymysql.Connection:
        """A client session as root, autocommitting."""
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user="root", database=database,
            autocommit=True, charset="utf8mb4", connect_timeout=2,
        )  # fmt: skip

    def execute(self, sql: str, params: Any = None, database: str | None = None) -> list[tuple]:
        """Run `sql`; its rows, if any."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        finally:
            conn.close()

    def stop(self) -> None:
        """Shut down, then remove the server's folder."""
        _stop(self.proc, signal.SIGTERM)
        shutil.rmtree(self.root, ignore_errors=True)
