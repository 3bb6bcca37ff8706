"""Who may operate the platform: each cell of role, action and interface, allowed or refused.

The expected privileges of each test user are written out here, not derived from the code under
test; each action is done for real through the served app (httpx), real Flight clients and the
CLI, and a refusal must be a 403 (Flight: Unauthorized) naming the missing privilege and how to
get it.
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import adbc_driver_flightsql.dbapi as flight_sql
import httpx
import pyarrow.flight as flight
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from fleuve.cli import cli
from fleuve.engine import privileges
from fleuve.errors import FleuveError
from fleuve.metadata import PipelineRun
from fleuve.security import auth
from tests.serve.conftest import ADMIN_PASSWORD, ANALYST_PASSWORD, Served

PASSWORD = "operator-pass-1234"
ALL = {
    "SYNC",
    "RUN PIPELINES",
    "MANAGE SCHEDULES",
    "ALTER REFLECTION",
    "MANAGE SOURCES",
    "MONITOR",
    "EDIT DASHBOARDS",
    "MANAGE GRANTS",
    "MANAGE USERS",
}
# user -> (roles, the system privileges they must hold); `operator` holds SYNC through a grant
# ON SYSTEM to its custom role, and MONITOR because SYNC includes it.
USERS: dict[str, tuple[list[str], set[str]]] = {
    "admin": (["admin"], ALL),
    "engineer": (
        ["engineer"],
        {
            "SYNC",
            "RUN PIPELINES",
            "MANAGE SCHEDULES",
            "ALTER REFLECTION",
            "MANAGE SOURCES",
            "MONITOR",
            "EDIT DASHBOARDS",
        },
    ),
    "analyst": (["analyst"], {"EDIT DASHBOARDS"}),
    "viewer": (["viewer"], set()),
    "nobody": ([], set()),
    "operator": (["ops"], {"SYNC", "MONITOR"}),
}
CONNECTION = "site_drops"
REFLECTION = "customers_raw"  # made by the admin; others try to change it
_names = itertools.count()


def admin_sql(served: Served, sql: str) -> list[dict]:
    """Run a statement as the admin through the served engine; its rows."""
    return served.server.queries.engine.execute(sql, user="admin").read_all().to_pylist()


def password(user: str) -> str:
    return {"admin": ADMIN_PASSWORD, "analyst": ANALYST_PASSWORD}.get(user, PASSWORD)


@dataclass
class Outcome:
    """What an interface answered: allowed, or refused with a message."""

    allowed: bool
    status: int | str
    message: str = ""


@dataclass
class Platform:
    """The served project, each test user's REST session, and a finished sync job."""

    served: Served
    headers: dict[str, dict[str, str]]
    job_id: int

    def rest(self, user: str, method: str, path: str, **kw: object) -> Outcome:
        resp = httpx.request(
            method, f"{self.served.http}{path}", headers=self.headers[user], timeout=60, **kw
        )
        if resp.status_code == 403:
            body = resp.json()
            return Outcome(False, 403, f"{body['errorMessage']} {body.get('moreInfo', '')}")
        assert resp.is_success, (user, path, resp.status_code, resp.text)
        return Outcome(True, resp.status_code)

    def flight_sql(self, user: str, sql: str) -> Outcome:
        client = flight.FlightClient(self.served.flight_url)
        try:
            pair = client.authenticate_basic_token(user, password(user))
            options = flight.FlightCallOptions(headers=[pair])
            info = client.get_flight_info(flight.FlightDescriptor.for_command(sql), options)
            client.do_get(info.endpoints[0].ticket, options).read_all()
        except flight.FlightUnauthorizedError as exc:
            return Outcome(False, "Unauthorized", str(exc))
        finally:
            client.close()
        return Outcome(True, "ok")

    def adbc_sql(self, user: str, sql: str) -> Outcome:
        """A statement through Flight SQL, as the ADBC driver sends it."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Cannot disable autocommit": no transactions
            conn = flight_sql.connect(
                self.served.flight_url,
                db_kwargs={"username": user, "password": password(user)},
            )
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                cur.fetch_arrow_table()
        except flight_sql.Error as exc:
            return Outcome(False, type(exc).__name__, str(exc))
        finally:
            conn.close()
        return Outcome(True, "ok")

    def v3_sql(self, user: str, sql: str) -> Outcome:
        """A statement through Dremio's SQL jobs API; a refusal is a FAILED job saying why."""
        client = httpx.Client(base_url=self.served.http, headers=self.headers[user])
        job_id = client.post("/api/v3/sql", json={"sql": sql}).json()["id"]
        deadline = time.monotonic() + 60
        while (job := client.get(f"/api/v3/job/{job_id}").json())["jobState"] not in (
            "COMPLETED",
            "FAILED",
            "CANCELED",
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        if job["jobState"] == "FAILED":
            return Outcome(False, "FAILED", job["errorMessage"])
        return Outcome(True, job["jobState"])

    def cli(self, user: str, *args: str) -> Outcome:
        base = ["--project", str(self.served.project.settings.project_dir)]
        result = CliRunner().invoke(cli, [*base, *args, "--user", user])
        if result.exit_code != 0:
            return Outcome(False, result.exit_code, result.output)
        return Outcome(True, 0)

    def wait_for_jobs(self) -> None:
        """Let every sync end before the next cell, so that no two run at once."""
        deadline = time.monotonic() + 120
        while True:
            jobs = httpx.get(
                f"{self.served.http}/api/fleuve/v1/jobs", headers=self.headers["admin"]
            ).json()["data"]
            if all(j["job"]["status"] not in ("pending", "running") for j in jobs):
                return
            assert time.monotonic() < deadline, jobs
            time.sleep(0.1)


@pytest.fixture(scope="module")
def platform(served: Served) -> Iterator[Platform]:
    """The test users, read access to everything for each (so refusals are about operating,
    not about seeing data), the `ops` role's grant ON SYSTEM, a reflection and a sync job."""
    db = served.project.db
    for user, (roles, _) in USERS.items():
        if user not in ("admin", "analyst"):
            auth.create_user(db, user, PASSWORD, roles)
    admin = {"Authorization": f"Bearer {served.login()}"}
    for user in USERS:
        for sql in (
            f"GRANT SELECT ON gold.* TO USER {user}",
            f"GRANT SELECT ON bronze.* TO USER {user}",
        ):
            admin_sql(served, sql)
    admin_sql(
        served,
        f"CREATE REFLECTION {REFLECTION} ON bronze.shop_customers USING DISPLAY (customer_id)",
    )
    headers = {
        user: {"Authorization": f"Bearer {served.login(user, password(user))}"} for user in USERS
    }
    job = httpx.post(
        f"{served.http}/api/v1/connections/sync", headers=admin, json={"connectionId": CONNECTION}
    ).json()
    found = Platform(served, headers, job["job"]["id"])
    # The grant ON SYSTEM is made with SQL over Flight, as a user of Dremio would make it.
    assert found.flight_sql("admin", "GRANT SYNC ON SYSTEM TO ROLE ops").allowed
    found.wait_for_jobs()
    yield found


def _unique(prefix: str) -> str:
    return f"{prefix}_{next(_names)}"


def _sync_airbyte(p: Platform, user: str) -> Outcome:
    out = p.rest(user, "POST", "/api/v1/connections/sync", json={"connectionId": CONNECTION})
    p.wait_for_jobs()
    return out


def _sync_fleuve(p: Platform, user: str) -> Outcome:
    out = p.rest(user, "POST", f"/api/fleuve/v1/connections/{CONNECTION}/sync")
    p.wait_for_jobs()
    return out


def _reflection_id(p: Platform) -> str:
    found = p.served.server.queries.engine.reflection(REFLECTION, user="admin")
    return found["id"]


def _create_reflection_rest(p: Platform, user: str) -> Outcome:
    dataset = httpx.get(
        f"{p.served.http}/api/v3/catalog/by-path/bronze/shop_customers", headers=p.headers["admin"]
    ).json()["id"]
    name = _unique("rest_raw")
    body = {
        "type": "RAW",
        "name": name,
        "datasetId": dataset,
        "enabled": False,
        "displayFields": [{"name": "customer_id"}],
    }
    out = p.rest(user, "POST", "/api/v3/reflection", json=body)
    if out.allowed:
        admin_sql(p.served, f"DROP REFLECTION {name}")
    return out


def _drop_reflection_rest(p: Platform, user: str) -> Outcome:
    name = _unique("doomed")
    engine = p.served.server.queries.engine
    admin_sql(
        p.served,
        f"ALTER TABLE bronze.shop_customers CREATE RAW REFLECTION {name} USING DISPLAY (name)",
    )
    reflection_id = engine.reflection(name, user="admin")["id"]
    out = p.rest(user, "DELETE", f"/api/v3/reflection/{reflection_id}")
    if not out.allowed:
        admin_sql(p.served, f"DROP REFLECTION {name}")
    return out


def _create_reflection_flight(p: Platform, user: str) -> Outcome:
    name = _unique("flight_raw")
    out = p.flight_sql(
        user, f"CREATE REFLECTION {name} ON bronze.shop_customers USING DISPLAY (customer_id)"
    )
    if out.allowed:
        admin_sql(p.served, f"DROP REFLECTION {name}")
    return out


def _cli_sync(p: Platform, user: str) -> Outcome:
    out = p.cli(user, "sync", CONNECTION)
    p.wait_for_jobs()
    return out


def _grant_rest(privilege: str, obj: str) -> Callable[[Platform, str], Outcome]:
    def act(p: Platform, user: str) -> Outcome:
        body = {"privilege": privilege, "object": obj, "grantee": "scratch"}
        return p.rest(user, "POST", "/api/fleuve/v1/grants", json=body)

    return act


def _ui_user(p: Platform, user: str) -> Outcome:
    body = {"userName": _unique("made"), "password": PASSWORD, "roles": ["viewer"]}
    return p.rest(user, "POST", "/api/fleuve/v1/ui/admin/users", json=body)


def _ui_chart(p: Platform, user: str) -> Outcome:
    chart = {
        "name": _unique("chart"),
        "title": "Revenue by store",
        "type": "bar",
        "dataset": "gold.fct_daily_revenue",
        "x": "store_id",
        "measures": [{"agg": "sum", "column": "amount", "label": "revenue"}],
    }
    return p.rest(user, "POST", "/api/fleuve/v1/ui/charts", json={"chart": chart})


def _ui_dashboard(p: Platform, user: str) -> Outcome:
    body = {"slug": _unique("board").replace("_", "-"), "title": "Board"}
    return p.rest(user, "POST", "/api/fleuve/v1/ui/dashboards", json=body)


# (interface, action, the privilege it needs, how to do it as a user)
ACTIONS: list[tuple[str, str, str, Callable[[Platform, str], Outcome]]] = [
    # The Airbyte-shaped ingestion API.
    ("airbyte", "sync a connection", "SYNC", _sync_airbyte),
    (
        "airbyte",
        "read a sync job",
        "MONITOR",
        lambda p, u: p.rest(u, "POST", "/api/v1/jobs/get", json={"id": p.job_id}),
    ),
    # Fleuve's platform API.
    ("fleuve", "sync a connection", "SYNC", _sync_fleuve),
    (
        "fleuve",
        "list connections",
        "MONITOR",
        lambda p, u: p.rest(u, "GET", "/api/fleuve/v1/connections"),
    ),
    (
        "fleuve",
        "read a connection",
        "MONITOR",
        lambda p, u: p.rest(u, "GET", f"/api/fleuve/v1/connections/{CONNECTION}"),
    ),
    ("fleuve", "list jobs", "MONITOR", lambda p, u: p.rest(u, "GET", "/api/fleuve/v1/jobs")),
    (
        "fleuve",
        "read a job",
        "MONITOR",
        lambda p, u: p.rest(u, "GET", f"/api/fleuve/v1/jobs/{p.job_id}"),
    ),
    (
        "fleuve",
        "list pipeline runs",
        "MONITOR",
        lambda p, u: p.rest(u, "GET", "/api/fleuve/v1/pipeline/runs"),
    ),
    (
        "fleuve",
        "list dbt runs",
        "MONITOR",
        lambda p, u: p.rest(u, "GET", "/api/fleuve/v1/transform/runs"),
    ),
    ("fleuve", "list users", "MANAGE USERS", lambda p, u: p.rest(u, "GET", "/api/fleuve/v1/users")),
    (
        "fleuve",
        "grant on a dataset",
        "MANAGE GRANTS",
        _grant_rest("SELECT", "gold.fct_daily_revenue"),
    ),
    ("fleuve", "grant on SYSTEM", "MANAGE GRANTS", _grant_rest("MONITOR", "SYSTEM")),
    # Dremio's REST API v3.
    ("dremio", "create a reflection", "ALTER REFLECTION", _create_reflection_rest),
    (
        "dremio",
        "change a reflection",
        "ALTER REFLECTION",
        lambda p, u: p.rest(
            u, "PUT", f"/api/v3/reflection/{_reflection_id(p)}", json={"enabled": True}
        ),
    ),
    ("dremio", "drop a reflection", "ALTER REFLECTION", _drop_reflection_rest),
    (
        "dremio",
        "GRANT ON SYSTEM in a SQL job",
        "MANAGE GRANTS",
        lambda p, u: p.v3_sql(u, "GRANT MONITOR ON SYSTEM TO ROLE scratch"),
    ),
    # The web UI's own API.
    (
        "ui",
        "read a job's log",
        "MONITOR",
        lambda p, u: p.rest(u, "GET", f"/api/fleuve/v1/ui/logs?jobId={p.job_id}"),
    ),
    ("ui", "save a chart", "EDIT DASHBOARDS", _ui_chart),
    ("ui", "create a dashboard", "EDIT DASHBOARDS", _ui_dashboard),
    ("ui", "create a user", "MANAGE USERS", _ui_user),
    # Arrow Flight: the engine's statements that operate.
    ("flight", "create a reflection", "ALTER REFLECTION", _create_reflection_flight),
    (
        "flight",
        "alter a reflection",
        "ALTER REFLECTION",
        lambda p, u: p.flight_sql(u, f"ALTER REFLECTION {REFLECTION} SET ENABLED = TRUE"),
    ),
    (
        "flight",
        "refresh reflections",
        "ALTER REFLECTION",
        lambda p, u: p.flight_sql(u, "ALTER TABLE bronze.shop_customers REFRESH REFLECTIONS"),
    ),
    (
        "flight",
        "grant on a dataset",
        "MANAGE GRANTS",
        lambda p, u: p.flight_sql(u, "GRANT SELECT ON gold.fct_daily_revenue TO ROLE scratch"),
    ),
    (
        "flight",
        "grant on SYSTEM",
        "MANAGE GRANTS",
        lambda p, u: p.flight_sql(u, "GRANT MANAGE SCHEDULES ON SYSTEM TO ROLE scratch"),
    ),
    (
        "flight",
        "give a role",
        "MANAGE USERS",
        # The viewer already holds the role: allowed or not, nobody's rights change.
        lambda p, u: p.flight_sql(u, "GRANT ROLE viewer TO USER viewer"),
    ),
    # Flight SQL through the ADBC driver.
    (
        "flight-sql",
        "alter a reflection",
        "ALTER REFLECTION",
        lambda p, u: p.adbc_sql(u, f"ALTER REFLECTION {REFLECTION} SET ENABLED = TRUE"),
    ),
    (
        "flight-sql",
        "grant on SYSTEM",
        "MANAGE GRANTS",
        lambda p, u: p.adbc_sql(u, "GRANT RUN PIPELINES ON SYSTEM TO ROLE scratch"),
    ),
    # The CLI with --user.
    ("cli", "sync a connection", "SYNC", _cli_sync),
    (
        "cli",
        "refresh a reflection",
        "ALTER REFLECTION",
        lambda p, u: p.cli(u, "reflections", "refresh", REFLECTION),
    ),
    (
        "cli",
        "grant on SYSTEM",
        "MANAGE GRANTS",
        lambda p, u: p.cli(u, "grants", "add", "MONITOR", "SYSTEM", "--role", "scratch"),
    ),
]


@pytest.mark.parametrize("user", list(USERS))
@pytest.mark.parametrize(
    ("interface", "action", "privilege", "act"),
    ACTIONS,
    ids=[f"{i}:{a}" for i, a, _, _ in ACTIONS],
)
def test_who_may_operate(
    platform: Platform,
    interface: str,
    action: str,
    privilege: str,
    act: Callable[[Platform, str], Outcome],
    user: str,
) -> None:
    outcome = act(platform, user)
    expected = privilege in USERS[user][1]
    assert outcome.allowed is expected, (interface, action, user, outcome)
    if not expected:
        # The refusal names the missing privilege and how to get it (the CLI wraps lines).
        message = " ".join(outcome.message.split())
        assert f"the {privilege} privilege" in message or f"or the {privilege}" in message, message
        assert f"GRANT {privilege} ON SYSTEM TO USER {user}" in message, message


def test_the_web_ui_knows_what_each_user_may_do(platform: Platform) -> None:
    for user, (_, held) in USERS.items():
        me = httpx.get(
            f"{platform.served.http}/api/fleuve/v1/ui/me", headers=platform.headers[user]
        ).json()
        assert me["privileges"] == sorted(held), user


def _pipeline_runs(p: Platform) -> int:
    with p.served.project.db.session() as s:
        return s.scalar(select(func.count()).select_from(PipelineRun))


def test_running_the_pipeline_needs_run_pipelines(platform: Platform) -> None:
    before = _pipeline_runs(platform)
    for user, (_, held) in USERS.items():
        if "RUN PIPELINES" in held:
            continue
        refused = platform.cli(user, "run")
        assert not refused.allowed
        assert "needs the RUN PIPELINES privilege" in " ".join(refused.message.split())
    assert _pipeline_runs(platform) == before  # refused before any step ran
    # An engineer's run starts (this project's dbt models have no demo sources to read, so
    # its outcome is not the point here: that it ran is).
    platform.cli("engineer", "run")
    assert _pipeline_runs(platform) == before + 1


@pytest.mark.parametrize("command", ["run", "test", "build"])
def test_running_dbt_as_a_user_needs_run_pipelines(platform: Platform, command: str) -> None:
    for user, (_, held) in USERS.items():
        # A selection matching no model: an allowed user's dbt starts and finds nothing to do.
        outcome = platform.cli(user, "transform", command, "--select", "no_such_model")
        message = " ".join(str(outcome.message).split())
        if "RUN PIPELINES" in held:
            assert "privilege" not in message, (user, message)
        else:
            assert not outcome.allowed, user
            assert f"running dbt ({command}) needs the RUN PIPELINES privilege" in message


def test_without_user_the_cli_acts_as_the_local_operator(platform: Platform) -> None:
    base = ["--project", str(platform.served.project.settings.project_dir)]
    result = CliRunner().invoke(cli, [*base, "sync", CONNECTION])
    platform.wait_for_jobs()
    assert result.exit_code == 0, result.output
    for user, problem in (("ghost", "unknown or disabled user 'ghost'"),):
        refused = platform.cli(user, "sync", CONNECTION)
        assert not refused.allowed and problem in refused.message


def test_a_disabled_user_cannot_act_through_the_cli(platform: Platform) -> None:
    db = platform.served.project.db
    auth.create_user(db, "gone", PASSWORD, ["engineer"])
    assert platform.cli("gone", "sync", CONNECTION).allowed
    platform.wait_for_jobs()
    auth.set_disabled(db, "gone")
    refused = platform.cli("gone", "sync", CONNECTION)
    assert not refused.allowed and "unknown or disabled user 'gone'" in refused.message


def test_a_grant_on_system_takes_effect_and_its_revocation_too(platform: Platform) -> None:
    jobs = "/api/fleuve/v1/jobs"
    assert not platform.rest("nobody", "GET", jobs).allowed
    assert platform.flight_sql("admin", "GRANT MONITOR ON SYSTEM TO USER nobody").allowed
    assert platform.rest("nobody", "GET", jobs).allowed
    shown = admin_sql(platform.served, "SHOW GRANTS FOR USER nobody")
    assert {"grantee_type": "USER", "grantee": "nobody", "privilege": "MONITOR"} | {
        "object": "SYSTEM"
    } in shown
    # The grantee sees their own grants, the system ones included.
    listed = httpx.get(
        f"{platform.served.http}/api/fleuve/v1/grants", headers=platform.headers["nobody"]
    ).json()["data"]
    assert {"granteeType": "USER", "grantee": "nobody", "privilege": "MONITOR"} | {
        "object": "SYSTEM"
    } in listed
    assert platform.flight_sql("admin", "REVOKE MONITOR ON SYSTEM FROM USER nobody").allowed
    assert not platform.rest("nobody", "GET", jobs).allowed


def test_grant_all_on_system_gives_every_privilege(platform: Platform) -> None:
    auth.create_user(platform.served.project.db, "deputy", PASSWORD, ["deputies"])
    deputy = {"Authorization": f"Bearer {platform.served.login('deputy', PASSWORD)}"}
    me = f"{platform.served.http}/api/fleuve/v1/ui/me"
    admin_sql(platform.served, "GRANT ALL ON SYSTEM TO ROLE deputies")
    assert httpx.get(me, headers=deputy).json()["privileges"] == sorted(ALL)
    admin_sql(platform.served, "REVOKE ALL ON SYSTEM FROM ROLE deputies")
    assert httpx.get(me, headers=deputy).json()["privileges"] == []


@pytest.mark.parametrize(
    ("sql", "problem", "fix"),
    [
        (
            "GRANT FLY ON SYSTEM TO ROLE x",
            "unknown system privilege 'FLY'",
            "SYNC, RUN PIPELINES, MANAGE SCHEDULES",
        ),
        (
            "GRANT SYNC ON gold.fct_daily_revenue TO ROLE x",
            "unknown privilege 'SYNC' on a dataset or container",
            "ON SYSTEM",
        ),
        (
            "REVOKE SYNC ON gold.fct_daily_revenue FROM ROLE x",
            "unknown privilege 'SYNC' on a dataset or container",
            "ON SYSTEM",
        ),
        ("GRANT SYNC ON SYSTEM TO USER ghost", "unknown user 'ghost'", "create the user first"),
    ],
)
def test_a_wrong_grant_says_what_to_write(
    platform: Platform, sql: str, problem: str, fix: str
) -> None:
    with pytest.raises(FleuveError) as caught:
        admin_sql(platform.served, sql)
    assert problem in caught.value.message and fix in (caught.value.fix or "")


@pytest.mark.parametrize("user", list(USERS))
def test_reading_the_sources_settings_needs_manage_sources(platform: Platform, user: str) -> None:
    """The engine's Python API checks the same privilege as every served interface."""
    engine = platform.served.server.queries.engine
    if "MANAGE SOURCES" in USERS[user][1]:
        assert isinstance(engine.sources(user=user), list)
        return
    with pytest.raises(FleuveError) as caught:
        engine.sources(user=user)
    assert "needs the MANAGE SOURCES privilege" in caught.value.message
    assert f"GRANT MANAGE SOURCES ON SYSTEM TO USER {user}" in caught.value.message


def test_every_privilege_and_built_in_role_is_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    rows = {
        line.split("|")[1].strip().strip("`"): line.split("|")[2]
        for line in doc.splitlines()
        if line.startswith("| `")
    }
    for name in privileges.SYSTEM_PRIVILEGES:
        assert name in rows, f"docs/security.md does not describe the {name} privilege"
    for role, held in privileges.BUILTIN_ROLES.items():
        assert role in rows, f"docs/security.md does not describe the {role} role"
        cell = rows[role].strip()
        listed = {p.strip().strip("`") for p in cell.split(",")} if cell != "none" else set()
        assert listed == held or (cell == "every one" and held == ALL), role


def test_a_refused_operation_is_audited(platform: Platform) -> None:
    refused = platform.rest("viewer", "POST", f"/api/fleuve/v1/connections/{CONNECTION}/sync")
    assert not refused.allowed
    events = platform.served.audit_events("privilege", username="viewer", target="SYNC")
    assert events and events[-1].outcome == "denied" and events[-1].action == "denied"
    base = ["--project", str(platform.served.project.settings.project_dir)]
    shown = CliRunner().invoke(cli, [*base, "audit", "--kind", "privilege", "--user", "viewer"])
    assert shown.exit_code == 0 and "SYNC" in shown.output, shown.output
