"""The Flight server: Dremio-style SQL commands and the Flight SQL protocol on one port.

A command that is a serialized `google.protobuf.Any` from the Flight SQL package is Flight SQL;
any other command is SQL text, as Dremio's Flight endpoint takes it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight

from fleuve.engine import AccessDenied
from fleuve.errors import FleuveError
from fleuve.project import Project
from fleuve.serve.flight import metadata
from fleuve.serve.flight import protocol as sql_proto
from fleuve.serve.flight.call_counts import MetricsMiddlewareFactory
from fleuve.serve.flight.handshake import AuthMiddlewareFactory, HandshakeHandler, Session
from fleuve.serve.flight.params import bind, placeholders
from fleuve.serve.queries import Caller, Queries, Stream
from fleuve.serve.wire_types import MILLISECONDS, NANOSECONDS, Converter

log = logging.getLogger("fleuve.serve")

# A query started by get_flight_info and not fetched by do_get within this time is cancelled.
PENDING_TTL_SECONDS = 120
PREPARED_TTL_SECONDS = 3600
STOP_TIMEOUT_SECONDS = 10


@dataclass
class _Pending:
    username: str
    stream: Stream
    converter: Converter
    created: float = field(default_factory=time.monotonic)


@dataclass
class _Prepared:
    username: str
    sql: str
    parameters: list[list[Any]] = field(default_factory=list)
    used: float = field(default_factory=time.monotonic)


class FlightService(flight.FlightServerBase):
    """Serves the engine's queries over Arrow Flight and Flight SQL."""

    def __init__(
        self,
        project: Project,
        queries: Queries,
        location: str,
        *,
        tls_certificates: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(
            location,
            auth_handler=HandshakeHandler(),
            tls_certificates=tls_certificates or [],
            middleware={
                "metrics": MetricsMiddlewareFactory(),
                "auth": AuthMiddlewareFactory(project.db),
            },
        )
        self.project = project
        self.queries = queries
        self._lock = threading.Lock()
        self._pending: dict[bytes, _Pending] = {}
        self._prepared: dict[bytes, _Prepared] = {}
        self._stopped = False

    # -- callers ------------------------------------------------------------------------

    def _session(self, context: flight.ServerCallContext) -> Session:
        session = context.get_middleware("auth")
        if session is None:  # the middleware refuses unauthenticated calls before this
            raise flight.FlightUnauthenticatedError("authentication required")
        return session

    def _caller(self, context: flight.ServerCallContext, protocol: str) -> Caller:
        peer = context.peer()
        return Caller(
            self._session(context).username, peer.split(":", 1)[-1] if peer else None, protocol
        )

    # -- queries ------------------------------------------------------------------------

    def _start(
        self,
        context: flight.ServerCallContext,
        sql: str,
        protocol: str,
    ) -> tuple[bytes, pa.Schema]:
        """Start `sql` for the caller; returns the handle do_get will redeem and the schema.

        The schema is the one the client receives: Dremio's types (see `wire_types`), with
        nanosecond timestamps on the Dremio-style endpoint, where Superset's dialect reads.
        """
        self._reap()
        caller = self._caller(context, protocol)
        stream = _run(
            lambda: self.queries.stream(
                sql, caller, default_schema=self._session(context).default_schema
            )
        )
        unit = NANOSECONDS if protocol == "flight" else MILLISECONDS
        converter = Converter(stream.schema, unit)
        handle = secrets.token_bytes(16)
        with self._lock:
            self._pending[handle] = _Pending(caller.username, stream, converter)
        return handle, converter.schema

    def _take(self, handle: bytes, username: str) -> _Pending:
        with self._lock:
            pending = self._pending.get(handle)
            if pending is None or pending.username != username:
                raise flight.FlightServerError(
                    "unknown or expired ticket: call get_flight_info again"
                )
            del self._pending[handle]
        return pending

    def _reap(self) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [h for h, p in self._pending.items() if now - p.created > PENDING_TTL_SECONDS]
            expired = [h for h, p in self._prepared.items() if now - p.used > PREPARED_TTL_SECONDS]
            streams = [self._pending.pop(h).stream for h in stale]
            for h in expired:
                del self._prepared[h]
        for stream in streams:
            stream.close()

    def _batches(
        self,
        context: flight.ServerCallContext,
        pending: _Pending,
        head: list[pa.RecordBatch],
    ) -> Iterator[pa.RecordBatch]:
        """Batches as the engine produces them; a client that goes away cancels the query."""
        try:
            yield from head
            for batch in pending.stream.batches:
                if context.is_cancelled():
                    return
                yield _run(lambda b=batch: pending.converter.batch(b))
        finally:
            pending.stream.close()

    # -- Flight methods -----------------------------------------------------------------

    def get_flight_info(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.FlightInfo:
        command = _command(descriptor)
        message = _unpack(command)
        if message is None:
            handle, schema = self._start(context, _sql_text(command), "flight")
            return _info(schema, descriptor, [handle])
        name = sql_proto.name_of(message)
        if name == "CommandStatementQuery":
            handle, schema = self._start(context, message.query, "flight-sql")
            return _info(schema, descriptor, [_statement_ticket(handle)])
        if name == "CommandPreparedStatementQuery":
            prepared = self._prepared_for(context, message.prepared_statement_handle)
            tickets, schema = [], None
            for sql in _bound(prepared):
                handle, schema = self._start(context, sql, "flight-sql")
                tickets.append(_statement_ticket(handle))
            return _info(schema, descriptor, tickets)
        if name in metadata.SCHEMAS:
            return _info(metadata.schema_for(message), descriptor, [command])
        raise pa.ArrowNotImplementedError(f"Flight SQL command {name} is not supported by Fleuve")

    def get_schema(
        self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor
    ) -> flight.SchemaResult:
        command = _command(descriptor)
        message = _unpack(command)
        name = sql_proto.name_of(message) if message is not None else None
        if name in metadata.SCHEMAS:
            return flight.SchemaResult(metadata.schema_for(message))
        if message is None or name in ("CommandStatementQuery", "CommandPreparedStatementQuery"):
            info = self.get_flight_info(context, descriptor)
            for endpoint in info.endpoints:
                handle = _handle(endpoint.ticket.ticket)
                self._take(handle, self._session(context).username).stream.close()
            return flight.SchemaResult(info.schema)
        raise pa.ArrowNotImplementedError(f"Flight SQL command {name} is not supported by Fleuve")

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.FlightDataStream:
        message = _unpack(ticket.ticket)
        if message is None or sql_proto.name_of(message) == "TicketStatementQuery":
            pending = self._take(_handle(ticket.ticket), self._session(context).username)
            stream, converter = pending.stream, pending.converter
            # A dashboard's result is one batch: read it here and answer in one piece, saving
            # the server a trip into Python per batch.
            head: list[pa.RecordBatch] = []
            try:
                head.append(_run(lambda: converter.batch(next(stream))))
                head.append(_run(lambda: converter.batch(next(stream))))
            except StopIteration:
                return flight.RecordBatchStream(pa.Table.from_batches(head, converter.schema))
            except BaseException:
                stream.close()
                raise
            return flight.GeneratorStream(converter.schema, self._batches(context, pending, head))
        caller = self._caller(context, "flight-sql")
        table = _run(lambda: metadata.answer(message, self.queries, caller))
        return flight.RecordBatchStream(table)

    def do_put(
        self,
        context: flight.ServerCallContext,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        message = _unpack(_command(descriptor))
        name = sql_proto.name_of(message) if message is not None else None
        if name == "CommandPreparedStatementQuery":
            prepared = self._prepared_for(context, message.prepared_statement_handle)
            prepared.parameters = [list(row.values()) for row in reader.read_all().to_pylist()]
            result = sql_proto.new(
                "DoPutPreparedStatementResult",
                prepared_statement_handle=message.prepared_statement_handle,
            )
            writer.write(pa.py_buffer(result.SerializeToString()))
            return
        if name in ("CommandStatementUpdate", "CommandPreparedStatementUpdate"):
            if name == "CommandStatementUpdate":
                statements = [message.query]
            else:
                prepared = self._prepared_for(context, message.prepared_statement_handle)
                prepared.parameters = [list(r.values()) for r in reader.read_all().to_pylist()]
                statements = _bound(prepared)
            count = 0
            for sql in statements:
                stream = _run(
                    lambda s=sql: self.queries.stream(s, self._caller(context, "flight-sql"))
                )
                for batch in stream.batches:
                    if (
                        batch.num_columns == 1
                        and batch.num_rows == 1
                        and pa.types.is_integer(batch.schema.field(0).type)
                    ):
                        count += batch.column(0)[0].as_py() or 0
            writer.write(
                pa.py_buffer(
                    sql_proto.new("DoPutUpdateResult", record_count=count).SerializeToString()
                )
            )
            return
        raise pa.ArrowNotImplementedError(
            "do_put takes Flight SQL statements and prepared-statement parameters only"
        )

    def list_flights(
        self, context: flight.ServerCallContext, criteria: bytes
    ) -> Iterator[flight.FlightInfo]:
        """No standing flights: every query is a command."""
        self._session(context)
        return iter(())

    def list_actions(self, context: flight.ServerCallContext) -> list[tuple[str, str]]:
        self._session(context)
        return [
            (
                "CreatePreparedStatement",
                "Flight SQL: prepare a statement, possibly with parameters",
            ),
            ("ClosePreparedStatement", "Flight SQL: release a prepared statement"),
        ]

    def do_action(
        self, context: flight.ServerCallContext, action: flight.Action
    ) -> Iterator[bytes]:
        session = self._session(context)
        body = action.body.to_pybytes() if action.body is not None else b""
        if action.type == "CreatePreparedStatement":
            request = _unpack(body)
            if (
                request is None
                or sql_proto.name_of(request) != "ActionCreatePreparedStatementRequest"
            ):
                raise flight.FlightServerError(
                    "CreatePreparedStatement takes an ActionCreatePreparedStatementRequest"
                )
            handle = secrets.token_bytes(16)
            with self._lock:
                self._prepared[handle] = _Prepared(session.username, request.query)
            result = sql_proto.new(
                "ActionCreatePreparedStatementResult",
                prepared_statement_handle=handle,
                parameter_schema=_parameter_schema(placeholders(request.query)),
            )
            return iter([sql_proto.pack(result)])
        if action.type == "ClosePreparedStatement":
            request = _unpack(body)
            with self._lock:
                prepared = self._prepared.get(request.prepared_statement_handle)
                if prepared is not None and prepared.username == session.username:
                    del self._prepared[request.prepared_statement_handle]
            return iter(())
        raise pa.ArrowNotImplementedError(f"unknown action {action.type!r}; see list_actions()")

    def _prepared_for(self, context: flight.ServerCallContext, handle: bytes) -> _Prepared:
        username = self._session(context).username
        with self._lock:
            prepared = self._prepared.get(handle)
        if prepared is None or prepared.username != username:
            raise flight.FlightServerError("unknown prepared statement: create it again")
        prepared.used = time.monotonic()
        return prepared

    # -- lifecycle ----------------------------------------------------------------------

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Cancel every query in flight and stop serving (once; later calls return at once)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            streams = [p.stream for p in self._pending.values()]
            self._pending.clear()
        for stream in streams:
            stream.close()
        # shutdown() waits for running calls; a client that stopped reading would hold it forever.
        stopper = threading.Thread(target=self.shutdown, name="fleuve-flight-stop", daemon=True)
        stopper.start()
        stopper.join(timeout)
        if stopper.is_alive():
            log.warning("Flight calls still running after %ss; stopping without them", timeout)


def _command(descriptor: flight.FlightDescriptor) -> bytes:
    if descriptor.descriptor_type != flight.DescriptorType.CMD:
        raise flight.FlightServerError(
            "Fleuve answers commands: use FlightDescriptor.for_command(b'SELECT ...')"
        )
    return descriptor.command


def _unpack(data: bytes) -> sql_proto.Command:
    try:
        return sql_proto.unpack(data)
    except NotImplementedError as exc:
        raise pa.ArrowNotImplementedError(str(exc)) from None


def _sql_text(command: bytes) -> str:
    try:
        return command.decode("utf-8")
    except UnicodeDecodeError:
        raise flight.FlightServerError(
            "the command is neither UTF-8 SQL text nor a Flight SQL command"
        ) from None


def _run(start: Any) -> Any:
    """Call `start`, turning Fleuve's errors into Flight statuses a client shows as is."""
    try:
        return start()
    except AccessDenied as exc:
        raise flight.FlightUnauthorizedError(str(exc)) from None
    except FleuveError as exc:
        raise flight.FlightServerError(str(exc)) from None


def _statement_ticket(handle: bytes) -> bytes:
    return sql_proto.pack(sql_proto.new("TicketStatementQuery", statement_handle=handle))


def _handle(ticket: bytes) -> bytes:
    message = _unpack(ticket)
    return message.statement_handle if message is not None else ticket


def _info(
    schema: pa.Schema | None, descriptor: flight.FlightDescriptor, tickets: list[bytes]
) -> flight.FlightInfo:
    endpoints = [flight.FlightEndpoint(t, []) for t in tickets]
    return flight.FlightInfo(schema or pa.schema([]), descriptor, endpoints, -1, -1)


def _bound(prepared: _Prepared) -> list[str]:
    """The prepared SQL once per bound parameter row (or as is, when it takes none)."""
    if not prepared.parameters:
        return [prepared.sql]
    try:
        return [bind(prepared.sql, row) for row in prepared.parameters]
    except FleuveError as exc:
        raise flight.FlightServerError(str(exc)) from None


def _parameter_schema(count: int) -> bytes:
    if not count:
        return b""
    schema = pa.schema([pa.field(f"${i + 1}", pa.null()) for i in range(count)])
    return schema.serialize().to_pybytes()
