"""`fleuve serve`: HTTP (REST) and Arrow Flight in one process, stopped cleanly by a signal."""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import uvicorn

from fleuve.errors import FleuveError
from fleuve.project import Project
from fleuve.security import audit
from fleuve.serve.app import create_app
from fleuve.serve.flight import FlightService
from fleuve.serve.queries import Queries
from fleuve.serve.rest import elasticsearch

log = logging.getLogger("fleuve.serve")

COMPAT_INGESTION_PORT = 8001  # where Airbyte serves its API
COMPAT_SEARCH_PORT = 9200  # Elasticsearch's port: the log search API at its root
PURGE_EVERY = timedelta(hours=24)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class Addresses:
    """Where a running server listens."""

    http: str
    flight: str
    compat: str | None


class _Uvicorn(uvicorn.Server):
    """Uvicorn, telling us as soon as a signal asks it to stop."""

    def __init__(self, config: uvicorn.Config, on_exit: threading.Event) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: object) -> None:
        super().handle_exit(sig, frame)  # type: ignore[arg-type]
        self._on_exit.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Stop on SIGINT/SIGTERM; unlike uvicorn, do not re-raise the signal afterwards, so
        that Fleuve finishes closing (audit written, engine stopped) and exits with status 0."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


class FleuveServer:
    """The REST API and Flight (with Flight SQL) over one engine, with one shutdown."""

    def __init__(
        self,
        project: Project,
        *,
        host: str | None = None,
        http_port: int | None = None,
        flight_port: int | None = None,
        compat_ports: bool | None = None,
    ) -> None:
        settings = project.settings.server
        self.project = project
        self.host = host or settings.host
        self.tls = _tls_files(project)
        self._stop = threading.Event()
        self.queries = Queries(project)
        try:
            http_port = settings.http_port if http_port is None else http_port
            self._sockets = [_bind(self.host, http_port, "server.http_port")]
            compat = settings.compat_ports if compat_ports is None else compat_ports
            if compat:
                self._sockets.append(_bind(self.host, COMPAT_INGESTION_PORT, "server.compat_ports"))
                self._sockets.append(_bind(self.host, COMPAT_SEARCH_PORT, "server.compat_ports"))
            self.flight = self._flight(settings.flight_port if flight_port is None else flight_port)
        except BaseException:
            for sock in getattr(self, "_sockets", []):
                sock.close()
            self.queries.close()
            raise
        self._app = create_app(project, self.queries)
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=5,
            ssl_certfile=str(self.tls[0]) if self.tls else None,
            ssl_keyfile=str(self.tls[1]) if self.tls else None,
        )
        if compat:
            config.app = SearchAtRoot(config.app, COMPAT_SEARCH_PORT)
        self._http = _Uvicorn(config, self._stop)
        self._threads: list[threading.Thread] = []
        self.scheduler: Any = None  # started with the other background work
        self._closed = False

    def _flight(self, port: int) -> FlightService:
        scheme = "grpc+tls" if self.tls else "grpc+tcp"
        certificates = [(self.tls[0].read_bytes(), self.tls[1].read_bytes())] if self.tls else None
        try:
            return FlightService(
                self.project,
                self.queries,
                f"{scheme}://{_url_host(self.host)}:{port}",
                tls_certificates=certificates,
            )
        except Exception as exc:
            raise FleuveError(
                f"cannot serve Arrow Flight on {self.host}:{port}: {str(exc).splitlines()[0]}",
                "stop what uses the port or set server.flight_port (e.g. --set server.flight_port=32011)",
            ) from None

    @property
    def addresses(self) -> Addresses:
        """The URLs clients connect to."""
        web = "https" if self.tls else "http"
        grpc = "grpc+tls" if self.tls else "grpc"
        host = _url_host("127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host)
        ports = [s.getsockname()[1] for s in self._sockets]
        return Addresses(
            http=f"{web}://{host}:{ports[0]}",
            flight=f"{grpc}://{host}:{self.flight.port}",
            compat=f"{web}://{host}:{ports[1]}" if len(ports) > 1 else None,
        )

    def _background(self) -> None:
        """Serve Flight, run the schedules (due reflections among them), purge the audit trail
        daily, and cancel queries once a stop is asked."""
        self.project.log_to_lake()
        if self.project.settings.schedule.in_server:
            from fleuve.schedule.clock import clock_from_env
            from fleuve.schedule.scheduler import Scheduler

            self.scheduler = Scheduler(
                self.project, clock=clock_from_env(), engine=self.queries.engine
            )
            self.scheduler.start()
        flight = threading.Thread(target=self.flight.serve, name="fleuve-flight", daemon=True)
        purge = threading.Thread(target=self._purge_daily, name="fleuve-audit-purge", daemon=True)
        stopper = threading.Thread(target=self._stop_on_signal, name="fleuve-stop", daemon=True)
        self._threads = [flight, purge, stopper]
        for thread in self._threads:
            thread.start()

    def _purge_daily(self) -> None:
        days = self.project.settings.server.audit_retention_days
        while True:
            try:
                removed = audit.purge(self.project.db, days)
                if removed:
                    log.info(
                        "audit events past retention removed",
                        extra={"removed": removed, "days": days},
                    )
            except Exception:
                log.exception("could not purge the audit trail")
            if self._stop.wait(PURGE_EVERY.total_seconds()):
                return

    def _stop_on_signal(self) -> None:
        self._stop.wait()
        self.queries.cancel_all()
        self.flight.stop()

    def run(self) -> None:
        """Serve until SIGINT/SIGTERM; in-flight queries are cancelled, then everything closes."""
        self._background()
        try:
            self._http.run(sockets=self._sockets)
        finally:
            self.close()

    def start(self) -> None:
        """Serve from background threads (tests, embedding); `stop()` ends it."""
        self._background()
        http = threading.Thread(
            target=self._http.run,
            kwargs={"sockets": self._sockets},
            name="fleuve-http",
            daemon=True,
        )
        http.start()
        self._threads.append(http)
        while not self._http.started and http.is_alive():
            self._stop.wait(0.02)

    def stop(self) -> None:
        """Stop serving: cancel running queries, close the ports, wait for the threads."""
        self._http.should_exit = True
        self._stop.set()
        self.close()

    def close(self) -> None:
        """Release everything (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self.scheduler is not None:
            # Runs still going after the wait are taken over by a worker once their lease ends.
            self.scheduler.stop(wait=10)
        self.queries.close()
        self._app.state.request_counter.stop()
        self.flight.stop()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)
        for sock in self._sockets:
            sock.close()
        self.project.stop_logging_to_lake()


class SearchAtRoot:
    """Serves the search API at the root of one port, where Elasticsearch clients expect it."""

    def __init__(self, app: Any, port: int) -> None:
        self.app, self.port = app, port

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        server = scope.get("server") or (None, None)
        if scope["type"] == "http" and server[1] == self.port:
            path = elasticsearch.PREFIX + scope["path"]
            scope = {**scope, "path": path, "raw_path": path.encode()}
        await self.app(scope, receive, send)


def _tls_files(project: Project) -> tuple | None:
    settings = project.settings
    cert, key = settings.server.tls_cert, settings.server.tls_key
    if not cert and not key:
        return None
    if not (cert and key):
        raise FleuveError(
            "TLS needs both server.tls_cert and server.tls_key",
            "set both (PEM certificate and its private key) or neither",
        )
    files = (settings.path(cert), settings.path(key))
    for path in files:
        if not path.is_file():
            raise FleuveError(
                f"TLS file {path} does not exist", "fix server.tls_cert / server.tls_key"
            )
    return files


def _bind(host: str, port: int, setting: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        raise FleuveError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            f"stop what uses the port or change {setting}",
        ) from None
    # Accepted connections inherit it. Without it, a response written as headers then body
    # waits for the client's delayed ACK: 40 ms on every request of a kept-alive connection.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def serve(
    project: Project,
    *,
    host: str | None = None,
    port: int | None = None,
    flight_port: int | None = None,
    compat_ports: bool | None = None,
    on_ready: Callable[[Addresses], None] | None = None,
) -> None:
    """Serve the project's REST API and Flight until SIGINT/SIGTERM."""
    server = FleuveServer(
        project, host=host, http_port=port, flight_port=flight_port, compat_ports=compat_ports
    )
    # Every query allocates thousands of short-lived objects: with the default thresholds the
    # collector runs hundreds of times a second, each pause holding every thread. Collect less
    # often, and never rescan what start-up loaded (it lives as long as the process).
    gc.freeze()
    gc.set_threshold(50_000, 50, 1_000)
    if on_ready is not None:
        on_ready(server.addresses)
    server.run()
