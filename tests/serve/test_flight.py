"""Arrow Flight the Dremio way: basic-auth handshake, SQL commands, streamed batches."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from fleuve.security import auth
from tests.serve.conftest import ADMIN_PASSWORD, ORDERS_ROWS, Served


def test_seed_snippet_reads_a_table(served: Served) -> None:
    """The seed's snippet, as written there, with the token passed in call options."""
    client = flight.FlightClient(served.flight_url)
    token = client.authenticate_basic_token("admin", ADMIN_PASSWORD)
    options = flight.FlightCallOptions(headers=[token])
    descriptor = flight.FlightDescriptor.for_command(
        b"SELECT * FROM gold.fct_daily_revenue LIMIT 1000"
    )
    flight_info = client.get_flight_info(descriptor, options)
    reader = client.do_get(flight_info.endpoints[0].ticket, options)
    table = reader.read_all()
    df = table.to_pandas()

    assert token[0] == b"authorization" and token[1].startswith(b"Bearer ")
    assert flight_info.schema.names == ["order_date", "store_id", "amount", "city"]
    assert len(df) == 1000
    assert set(df["city"]) == {"Café", "مرحبا", "北京", "東京"}


def test_results_stream_in_many_batches(served: Served) -> None:
    client, options = served.flight_client()
    info = client.get_flight_info(
        flight.FlightDescriptor.for_command(b"SELECT * FROM gold.fct_daily_revenue"), options
    )
    reader = client.do_get(info.endpoints[0].ticket, options)
    batches = rows = 0
    for chunk in reader:
        batches += 1
        rows += chunk.data.num_rows
    assert rows == ORDERS_ROWS
    assert batches > 1  # streamed as produced, not one materialized table


def test_schema_header_sets_the_default_schema(served: Served) -> None:
    client, options = served.flight_client()
    with_schema = flight.FlightCallOptions(headers=[*options.headers, (b"schema", b"gold")])
    info = client.get_flight_info(
        flight.FlightDescriptor.for_command(b"SELECT count(*) AS n FROM fct_daily_revenue"),
        with_schema,
    )
    table = client.do_get(info.endpoints[0].ticket, with_schema).read_all()
    assert table.column("n").to_pylist() == [ORDERS_ROWS]


def test_sql_errors_reach_the_client(served: Served) -> None:
    client, options = served.flight_client()
    with pytest.raises(flight.FlightServerError, match="no_such_table"):
        client.get_flight_info(
            flight.FlightDescriptor.for_command(b"SELECT * FROM gold.no_such_table"), options
        )


def test_tickets_belong_to_their_user(served: Served) -> None:
    client, options = served.flight_client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT 1 AS x"), options)
    other = flight.FlightClient(served.flight_url)
    pair = other.authenticate_basic_token("analyst", "analyst-pass-5678")
    with pytest.raises(flight.FlightError, match="unknown or expired ticket"):
        other.do_get(info.endpoints[0].ticket, flight.FlightCallOptions(headers=[pair])).read_all()


CLIENT = """
import sys
import pyarrow.flight as flight
client = flight.FlightClient(sys.argv[1])
options = flight.FlightCallOptions(headers=[client.authenticate_basic_token("admin", sys.argv[2])])
info = client.get_flight_info(flight.FlightDescriptor.for_command(sys.argv[3].encode()), options)
reader = client.do_get(info.endpoints[0].ticket, options)
reader.read_chunk()
print("reading", flush=True)
sys.stdin.read()
"""


def _wait_cancelled(served: Served, sql: str) -> None:
    (event,) = served.audit_events("query", target=sql)
    assert event.outcome == "cancelled"
    assert 0 < event.detail["rows"] < 2_000_000_000
    assert served.server.queries.engine.job(event.detail["job_id"]).state == "CANCELED"


def test_a_client_that_dies_cancels_its_query(served: Served) -> None:
    """A client process killed mid-stream: the server notices and cancels the query."""
    sql = "SELECT i, i * 2 AS j FROM range(2000000000) t(i) -- killed client"
    proc = subprocess.Popen(
        [sys.executable, "-c", CLIENT, served.flight_url, ADMIN_PASSWORD, sql],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "reading"
    finally:
        proc.kill()
        proc.wait()
    _wait_cancelled(served, sql)


def test_a_client_that_cancels_its_stream_cancels_its_query(served: Served) -> None:
    sql = "SELECT i, i * 2 AS j FROM range(2000000000) t(i) -- cancelled stream"
    client, options = served.flight_client()
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    reader = client.do_get(info.endpoints[0].ticket, options)
    reader.read_chunk()
    reader.cancel()
    _wait_cancelled(served, sql)


def _calls(client: flight.FlightClient, options: flight.FlightCallOptions) -> dict:
    """One call of each Flight method, by the method's name."""
    descriptor = flight.FlightDescriptor.for_command(b"SELECT 1")

    def put() -> None:
        writer, _ = client.do_put(descriptor, pa.schema([("x", pa.int64())]), options)
        writer.close()

    def exchange() -> None:
        writer, reader = client.do_exchange(descriptor, options)
        writer.close()
        reader.read_all()

    return {
        "HANDSHAKE": lambda: client.authenticate_basic_token("intruder", "wrong-password"),
        "LIST_FLIGHTS": lambda: list(client.list_flights(options=options)),
        "GET_FLIGHT_INFO": lambda: client.get_flight_info(descriptor, options),
        "GET_SCHEMA": lambda: client.get_schema(descriptor, options),
        "DO_GET": lambda: client.do_get(flight.Ticket(b"x"), options).read_all(),
        "DO_PUT": put,
        "DO_EXCHANGE": exchange,
        "LIST_ACTIONS": lambda: client.list_actions(options),
        "DO_ACTION": lambda: list(
            client.do_action(flight.Action("CreatePreparedStatement", b""), options)
        ),
    }


@pytest.mark.parametrize(
    "method", [m for m in flight.FlightMethod.__members__.values() if m.name != "INVALID"]
)
@pytest.mark.parametrize("header", [None, b"Bearer not-a-token", b"Basic YWRtaW46eA=="])
def test_every_flight_method_needs_a_token(
    served: Served, method: flight.FlightMethod, header: bytes | None
) -> None:
    """Each Flight method, enumerated from pyarrow, refuses a caller without a valid token."""
    client = flight.FlightClient(served.flight_url)
    options = flight.FlightCallOptions(headers=[(b"authorization", header)] if header else [])
    with pytest.raises(Exception) as refused:
        _calls(client, options)[method.name]()
    # pyarrow raises FlightUnauthenticatedError, except get_schema which wraps the same status.
    assert isinstance(refused.value, flight.FlightUnauthenticatedError) or (
        "Detail: Unauthenticated" in str(refused.value)
    )


def test_expired_and_revoked_tokens_are_refused(served: Served) -> None:
    db = served.project.db
    user = auth.get_user(db, "admin")
    expired, _ = auth.issue_token(db, user, ttl=timedelta(seconds=-1))
    revoked, _ = auth.issue_token(db, user)
    assert auth.revoke_token(db, revoked)
    valid, _ = auth.issue_token(db, user)
    client = flight.FlightClient(served.flight_url)
    descriptor = flight.FlightDescriptor.for_command(b"SELECT 1 AS x")
    for token in (expired, revoked):
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.get_flight_info(descriptor, options)
    ok = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {valid}".encode())])
    assert client.get_flight_info(descriptor, ok).schema.names == ["x"]


def test_flight_logins_and_queries_are_audited(served: Served) -> None:
    client = flight.FlightClient(served.flight_url)
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token("admin", "not-the-password")
    client, options = served.flight_client()
    sql = "SELECT count(*) AS n FROM gold.fct_daily_revenue -- audited"
    info = client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    client.do_get(info.endpoints[0].ticket, options).read_all()

    logins = served.audit_events("login", action="flight")
    assert {e.outcome for e in logins} >= {"ok", "failed"}
    (query,) = served.audit_events("query", target=sql)
    assert query.username == "admin" and query.action == "flight" and query.outcome == "ok"
    assert query.detail["objects"] == ["gold.fct_daily_revenue"]
    assert query.detail["rows"] == 1 and query.detail["duration_ms"] >= 0
    assert "reflections" in query.detail


def test_stale_pending_queries_are_cancelled(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleuve.serve.flight import endpoint as flight_server

    client, options = served.flight_client()
    sql = "SELECT * FROM range(100000000) t(i) -- never fetched"
    client.get_flight_info(flight.FlightDescriptor.for_command(sql.encode()), options)
    monkeypatch.setattr(flight_server, "PENDING_TTL_SECONDS", 0)
    time.sleep(0.01)
    client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT 1"), options)
    (event,) = served.audit_events("query", target=sql)
    assert event.outcome == "cancelled"


def test_no_grant_no_data_over_flight(served: Served) -> None:
    client = flight.FlightClient(served.flight_url)
    options = flight.FlightCallOptions(
        headers=[client.authenticate_basic_token("analyst", "analyst-pass-5678")]
    )
    for sql in (
        b"SELECT * FROM gold.fct_daily_revenue",
        b'SELECT * FROM "gold"."fct_daily_revenue"',
        b"SELECT store_id, sum(amount) FROM gold.fct_daily_revenue GROUP BY 1",
    ):
        with pytest.raises(flight.FlightServerError, match="not found"):
            client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
    info = client.get_flight_info(
        flight.FlightDescriptor.for_command(b'SELECT * FROM INFORMATION_SCHEMA."TABLES"'), options
    )
    names = client.do_get(info.endpoints[0].ticket, options).read_all().column("TABLE_NAME")
    assert "fct_daily_revenue" not in names.to_pylist()
