"""TLS, secrets kept out of logs, the users and audit commands, and the audit's retention."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.flight as flight
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import update

from fleuve.cli import cli
from fleuve.errors import FleuveError
from fleuve.metadata import AuditEvent
from fleuve.metadata.models import utcnow
from fleuve.project import Project
from fleuve.security import audit, auth
from fleuve.serve.server import FleuveServer
from tests.serve.conftest import ADMIN_PASSWORD, ANALYST_PASSWORD, Served, make_project


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleuve-test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "fleuve.pem", folder / "fleuve.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture(scope="module")
def tls_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(folder)
    with pytest.MonkeyPatch.context() as mp:
        make_project(folder / "proj", mp).close()
    project = Project.open(
        folder / "proj", {"server.tls_cert": str(cert), "server.tls_key": str(key)}
    )
    server = FleuveServer(project, host="127.0.0.1", http_port=0, flight_port=0)
    server.start()
    try:
        yield Served(project, server), cert
    finally:
        server.stop()
        project.close()


def test_tls_for_http_and_flight(tls_served: tuple[Served, Path]) -> None:
    served, cert = tls_served
    assert served.http.startswith("https://") and served.flight_url.startswith("grpc+tls://")
    login = httpx.post(
        f"{served.http}/apiv2/login",
        json={"userName": "admin", "password": ADMIN_PASSWORD},
        verify=ssl.create_default_context(cafile=cert),
    )
    assert login.status_code == 200
    catalog = httpx.get(
        f"{served.http}/api/v3/catalog",
        headers={"Authorization": f"_dremio{login.json()['token']}"},
        verify=ssl.create_default_context(cafile=cert),
    )
    assert catalog.status_code == 200
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the certificate
        httpx.get(f"{served.http}/health")
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port
        httpx.get(served.http.replace("https://", "http://") + "/health")

    client = flight.FlightClient(served.flight_url, tls_root_certs=cert.read_bytes())
    options = flight.FlightCallOptions(
        headers=[client.authenticate_basic_token("admin", ADMIN_PASSWORD)]
    )
    info = client.get_flight_info(
        flight.FlightDescriptor.for_command(b"SELECT count(*) AS n FROM bronze.shop_customers"),
        options,
    )
    assert client.do_get(info.endpoints[0].ticket, options).read_all().to_pylist() == [{"n": 1000}]
    plain = flight.FlightClient(served.flight_url.replace("grpc+tls://", "grpc://"))
    with pytest.raises(flight.FlightError):
        plain.authenticate_basic_token("admin", ADMIN_PASSWORD)


def test_tls_needs_both_files(served: Served) -> None:
    folder = served.project.settings.project_dir
    for overrides, problem in (
        ({"server.tls_cert": "missing.pem"}, r"both server\.tls_cert and server\.tls_key"),
        ({"server.tls_cert": "a.pem", "server.tls_key": "a.key"}, r"a\.pem does not exist"),
    ):
        project = Project.open(folder, overrides)
        with pytest.raises(FleuveError, match=problem):
            FleuveServer(project, http_port=0, flight_port=0)
        project.close()


def test_no_password_or_token_in_logs(served: Served, capfd: pytest.CaptureFixture[str]) -> None:
    wrong = "Wr0ng-but-secret-guess"
    httpx.post(f"{served.http}/apiv2/login", json={"userName": "admin", "password": wrong})
    token = served.login()
    api = httpx.Client(base_url=served.http, headers={"Authorization": f"Bearer {token}"})
    job = api.post("/api/v3/sql", json={"sql": "SELECT * FROM gold.missing_table"}).json()
    api.get(f"/api/v3/job/{job['id']}")
    api.get("/api/v3/catalog/by-path/nowhere")
    client = flight.FlightClient(served.flight_url)
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.authenticate_basic_token("analyst", wrong)
    pair = client.authenticate_basic_token("analyst", ANALYST_PASSWORD)
    with pytest.raises(flight.FlightError):
        client.get_flight_info(
            flight.FlightDescriptor.for_command(b"SELECT * FROM gold.missing_table"),
            flight.FlightCallOptions(headers=[pair]),
        )
    served.audit_events("query", username="analyst")

    secrets = [ADMIN_PASSWORD, ANALYST_PASSWORD, wrong, token, pair[1].decode().split()[-1]]
    captured = capfd.readouterr()
    logs = "".join(p.read_text() for p in (served.project.settings.state_dir / "logs").glob("*"))
    with served.project.db.session() as s:
        trail = json.dumps([(e.target, e.detail) for e in s.query(AuditEvent)], default=str)
    for text in (captured.out, captured.err, logs, trail):
        for secret in secrets:
            assert secret not in text


def test_users_commands(served: Served) -> None:
    runner = CliRunner()
    base = ["--project", str(served.project.settings.project_dir)]

    def run(*args: str, stdin: str | None = None) -> str:
        result = runner.invoke(cli, [*base, *args], input=stdin)
        assert result.exit_code == 0, result.output
        return result.output

    run("users", "add", "carol", "--role", "analyst", "--password-stdin", stdin="carol-pass-123\n")
    assert auth.authenticate(served.project.db, "carol", "carol-pass-123") is not None
    assert "analyst" in run("users", "list")
    run("users", "roles", "carol", "--add", "data_engineer", "--remove", "analyst")
    assert auth.get_user(served.project.db, "carol").roles == ["data_engineer"]
    run("users", "passwd", "carol", "--password-stdin", stdin="carol-new-456\n")
    assert auth.authenticate(served.project.db, "carol", "carol-pass-123") is None
    token = run("users", "token", "carol", "--name", "ci", "--days", "7").split()[-1]
    assert httpx.get(
        f"{served.http}/api/v3/catalog", headers={"Authorization": f"Bearer {token}"}
    ).is_success
    run("users", "disable", "carol")
    assert (
        httpx.get(
            f"{served.http}/api/v3/catalog", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )
    assert auth.authenticate(served.project.db, "carol", "carol-new-456") is None
    run("users", "enable", "carol")
    token_id = auth.list_tokens(served.project.db, "carol")[0].id
    run("users", "revoke", "carol", str(token_id))
    assert auth.list_tokens(served.project.db, "carol") == []

    refused = runner.invoke(
        cli, [*base, "users", "add", "dave", "--password-stdin"], input="short\n"
    )
    assert refused.exit_code == 1 and "shorter than 8" in refused.output
    unknown = runner.invoke(cli, [*base, "users", "disable", "nobody"])
    assert unknown.exit_code == 1 and "no user named 'nobody'" in unknown.output

    changes = served.audit_events("user", wait_for=5, target="carol")
    assert [e.action for e in changes] == ["create", "roles", "passwd", "disable", "enable"]
    assert all(e.username and e.username.startswith("cli:") for e in changes)


def test_audit_command_filters(served: Served) -> None:
    served.login()
    runner = CliRunner()
    base = ["--project", str(served.project.settings.project_dir)]
    result = runner.invoke(cli, [*base, "audit", "--kind", "login", "--since", "1h", "--json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines()]
    assert events and all(e["kind"] == "login" for e in events)
    table = runner.invoke(
        cli, [*base, "audit", "--user", "admin", "--outcome", "ok", "--limit", "5"]
    )
    assert table.exit_code == 0 and "admin" in table.output
    future = runner.invoke(cli, [*base, "audit", "--since", "2999-01-01", "--json"])
    assert future.exit_code == 0 and future.output == ""
    bad = runner.invoke(cli, [*base, "audit", "--since", "yesterday"])
    assert bad.exit_code == 1 and "2h, 7d" in bad.output


def test_audit_keeps_90_days(served: Served) -> None:
    db = served.project.db
    audit.record(db, "user", "create", username="old", target="ancient")
    audit.record(db, "user", "create", username="old", target="recent")
    with db.session() as s:
        s.execute(
            update(AuditEvent)
            .where(AuditEvent.target == "ancient")
            .values(at=utcnow() - dt.timedelta(days=91))
        )
    assert served.project.settings.server.audit_retention_days == 90
    assert audit.purge(db, 90) == 1
    remaining = {e.target for e in audit.events(db, audit.Filters(username="old"))}
    assert remaining == {"recent"}


def test_a_revocation_in_another_process_is_refused_at_once(served: Served) -> None:
    """The server remembers valid tokens for a moment; a revocation by the CLI ends that."""
    import subprocess
    import sys

    token, row = auth.create_personal_token(served.project.db, "analyst", "script", days=1)
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(2):  # the second call is answered from what the server remembers
        assert httpx.get(f"{served.http}/api/v3/catalog", headers=headers).status_code == 200
    project = str(served.project.settings.project_dir)
    command = ["-m", "fleuve", "--project", project, "users", "revoke", "analyst", str(row.id)]
    done = subprocess.run(
        [sys.executable, *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert httpx.get(f"{served.http}/api/v3/catalog", headers=headers).status_code == 401
    with flight.FlightClient(served.flight_url) as client:
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
        with pytest.raises(flight.FlightUnauthenticatedError):
            client.get_flight_info(flight.FlightDescriptor.for_command(b"SELECT 1"), options)
