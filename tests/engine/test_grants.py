"""Grants matrix: users, objects and paths (direct, view, reflection, INFORMATION_SCHEMA, errors).

Without a grant no path gives the data, nor even says the object exists; a SELECT grant on a
virtual dataset lets its grantee read through it without a grant on its inputs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fleuve.engine import AccessDenied, Engine, ObjectNotFound, QueryFailed, paths
from fleuve.errors import FleuveError
from tests.engine.conftest import add_users, make_project

SETUP = [
    "CREATE SPACE Sales",
    # The view hides customers' names and keeps the VIP ones only.
    "CREATE VIEW Sales.vip_orders AS SELECT o.order_id, o.amount, o.status, c.segment "
    "FROM gold.orders o JOIN gold.customers c ON o.customer_id = c.customer_id "
    "WHERE c.segment = 'vip'",
    "CREATE REFLECTION customers_by_segment ON gold.customers USING DIMENSIONS (segment, city) "
    "MEASURES (COUNT(*))",
    "CREATE REFLECTION vip_by_status ON Sales.vip_orders USING DIMENSIONS (status) "
    "MEASURES (SUM(amount), COUNT(*))",
    "GRANT SELECT ON gold.orders TO ROLE analyst",
    "GRANT SELECT ON Sales.vip_orders TO USER nobody",
    "GRANT ALL ON gold.* TO ROLE data_engineer",
]

# Who may read what: the matrix every path must agree with.
READS = {
    "admin": {"gold.orders", "gold.customers", "Sales.vip_orders"},
    "ana": {"gold.orders"},
    "dan": {"gold.orders", "gold.customers"},
    "nobody": {"Sales.vip_orders"},
}
OBJECTS = ["gold.orders", "gold.customers", "Sales.vip_orders"]
MISSING = "gold.does_not_exist"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """One shop for the whole matrix; tests that change grants put them back."""
    project = make_project(tmp_path_factory.mktemp("grants") / "proj")
    add_users(project)
    engine = Engine(project)
    for sql in SETUP:
        engine.execute(sql, user="admin").read_all()
    try:
        yield engine
    finally:
        engine.close()
        project.close()


def _run(engine: Engine, sql: str, user: str):  # type: ignore[no-untyped-def]
    return engine.execute(sql, user=user).read_all()


def _error(engine: Engine, sql: str, user: str) -> FleuveError:
    with pytest.raises(FleuveError) as info:
        _run(engine, sql, user)
    return info.value


@pytest.mark.parametrize("user", list(READS))
@pytest.mark.parametrize("obj", OBJECTS)
def test_direct_query(secured: Engine, user: str, obj: str) -> None:
    sql = f"SELECT count(*) AS n FROM {obj}"
    if obj in READS[user]:
        assert _run(secured, sql, user).column("n")[0].as_py() > 0
    else:
        err = _error(secured, sql, user)
        assert isinstance(err, ObjectNotFound)
        # The same words as for a dataset that does not exist: nothing leaks its existence.
        missing = _error(secured, f"SELECT count(*) FROM {MISSING}", user)
        shown = paths.render(obj.split("."))
        assert err.message.replace(shown, "X") == missing.message.replace(MISSING, "X")


@pytest.mark.parametrize("user", list(READS))
def test_view_reads_through_without_grants_on_inputs(secured: Engine, user: str) -> None:
    sql = "SELECT status, SUM(amount) AS s FROM Sales.vip_orders GROUP BY status"
    if "Sales.vip_orders" in READS[user]:
        rows = _run(secured, sql, user)
        assert rows.num_rows > 0
    else:
        assert isinstance(_error(secured, sql, user), ObjectNotFound)


@pytest.mark.parametrize("user", list(READS))
def test_reflection_path(secured: Engine, user: str) -> None:
    """A query the reflection on gold.customers would answer gives nothing without the grant."""
    sql = "SELECT segment, COUNT(*) AS n FROM gold.customers GROUP BY segment"
    if "gold.customers" in READS[user]:
        result = secured.execute(sql, user=user)
        result.read_all()
        chosen = [
            r["reflectionName"]
            for r in secured.job(result.job_id).reflections
            if r["relationship"] == "CHOSEN"
        ]
        assert chosen == ["customers_by_segment"]
    else:
        assert isinstance(_error(secured, sql, user), ObjectNotFound)
        listed = {r["name"] for r in secured.list_reflections(user=user)}
        assert "customers_by_segment" not in listed
        rows = _run(secured, "SELECT reflection_name FROM sys.reflections", user)
        assert "customers_by_segment" not in rows.column(0).to_pylist()


def test_view_reflection_serves_its_grantee(secured: Engine) -> None:
    result = secured.execute(
        "SELECT status, SUM(amount) FROM Sales.vip_orders GROUP BY status", user="nobody"
    )
    result.read_all()
    chosen = [r for r in secured.job(result.job_id).reflections if r["relationship"] == "CHOSEN"]
    assert [r["reflectionName"] for r in chosen] == ["vip_by_status"]


@pytest.mark.parametrize("user", list(READS))
def test_information_schema(secured: Engine, user: str) -> None:
    tables = _run(secured, 'SELECT TABLE_SCHEMA, TABLE_NAME FROM INFORMATION_SCHEMA."TABLES"', user)
    seen = {
        f"{s}.{t}"
        for s, t in zip(tables.column(0).to_pylist(), tables.column(1).to_pylist(), strict=True)
        if s not in ("INFORMATION_SCHEMA", "sys")
    }
    assert seen == READS[user]
    columns = _run(
        secured,
        "SELECT DISTINCT TABLE_SCHEMA || '.' || TABLE_NAME FROM INFORMATION_SCHEMA.\"COLUMNS\"",
        user,
    )
    assert set(columns.column(0).to_pylist()) == READS[user]
    schemas = set(_run(secured, "SHOW SCHEMAS", user).column(0).to_pylist())
    assert ("Sales" in schemas) == ("Sales.vip_orders" in READS[user])
    counted = _run(
        secured,
        "SELECT COUNT(*) FROM INFORMATION_SCHEMA.\"TABLES\" WHERE TABLE_NAME = 'customers' AND TABLE_SCHEMA = 'gold'",
        user,
    )
    assert counted.column(0)[0].as_py() == (1 if "gold.customers" in READS[user] else 0)


@pytest.mark.parametrize("user", list(READS))
@pytest.mark.parametrize("obj", OBJECTS)
def test_describe_and_catalog(secured: Engine, user: str, obj: str) -> None:
    path = obj.split(".")
    if obj in READS[user]:
        assert _run(secured, f'DESCRIBE "{path[0]}"."{path[1]}"', user).num_rows > 0
        assert secured.catalog_by_path(path, user=user)["path"] == path
    else:
        assert isinstance(_error(secured, f"DESCRIBE {obj}", user), ObjectNotFound)
        with pytest.raises(ObjectNotFound):
            secured.catalog_by_path(path, user=user)


def test_errors_do_not_leak_values_through_a_view(secured: Engine) -> None:
    # The cast fails on some row; for the view's grantee the message must not show its value.
    sql = "SELECT CAST(status || segment AS INTEGER) FROM Sales.vip_orders"
    err = _error(secured, sql, "nobody")
    assert isinstance(err, QueryFailed)
    for word in ("paid", "vip", "shipped", "new", "cancelled", "lake", "customers"):
        assert word not in err.message
    admin = _error(secured, sql, "admin")
    assert "vip" in admin.message


def test_explain_hides_inputs_of_a_view(secured: Engine) -> None:
    rows = {
        r["section"]: r["text"]
        for r in secured.explain("SELECT * FROM Sales.vip_orders", user="nobody").to_pylist()
    }
    assert "customers" not in rows["sql"] and "hidden" in rows["sql"]
    assert "plan" not in rows
    full = {
        r["section"]: r["text"]
        for r in secured.explain("SELECT * FROM Sales.vip_orders", user="admin").to_pylist()
    }
    assert "customers" in full["sql"]


def test_grant_and_revoke_take_effect(secured: Engine) -> None:
    with pytest.raises(ObjectNotFound):
        _run(secured, "SELECT count(*) FROM gold.customers", "ana")
    _run(secured, "GRANT SELECT ON gold.customers TO USER ana", "admin")
    assert _run(secured, "SELECT count(*) FROM gold.customers", "ana").num_rows == 1
    _run(secured, "REVOKE SELECT ON gold.customers FROM USER ana", "admin")
    with pytest.raises(ObjectNotFound):
        _run(secured, "SELECT count(*) FROM gold.customers", "ana")


def test_schema_grants_and_roles(secured: Engine) -> None:
    # ALL on gold.* lets a data engineer write and manage reflections there.
    _run(secured, "CREATE TABLE gold.scratch AS SELECT 1 AS x", "dan")
    _run(secured, "INSERT INTO gold.scratch VALUES (2)", "dan")
    assert _run(secured, "SELECT sum(x) FROM gold.scratch", "dan").column(0)[0].as_py() == 3
    _run(secured, "CREATE REFLECTION scratch_raw ON gold.scratch USING DISPLAY (x)", "dan")
    # SELECT alone allows neither.
    with pytest.raises(AccessDenied):
        _run(secured, "INSERT INTO gold.orders (order_id) VALUES (-1)", "ana")
    with pytest.raises(AccessDenied):
        _run(secured, "CREATE REFLECTION r2 ON gold.orders USING DISPLAY (order_id)", "ana")
    with pytest.raises(ObjectNotFound):
        _run(secured, "DROP TABLE gold.scratch", "nobody")
    # A role granted to a user brings its grants.
    _run(secured, "GRANT ROLE data_engineer TO USER nobody", "admin")
    assert _run(secured, "SELECT count(*) FROM gold.customers", "nobody").num_rows == 1
    _run(secured, "REVOKE ROLE data_engineer FROM USER nobody", "admin")
    with pytest.raises(ObjectNotFound):
        _run(secured, "SELECT count(*) FROM gold.customers", "nobody")
    _run(secured, "DROP TABLE gold.scratch", "dan")
    _run(secured, "DROP REFLECTION scratch_raw", "dan")


def test_only_managers_grant(secured: Engine) -> None:
    with pytest.raises(AccessDenied):
        _run(secured, "GRANT SELECT ON gold.orders TO USER nobody", "ana")
    with pytest.raises(ObjectNotFound):
        _run(secured, "GRANT SELECT ON gold.customers TO USER nobody", "ana")
    _run(secured, "GRANT SELECT ON gold.customers TO USER nobody", "dan")
    grants = secured.list_grants(user="nobody")
    assert {(g.privilege, g.as_json()["object"]) for g in grants} == {
        ("SELECT", "gold.customers"),
        ("SELECT", '"Sales".vip_orders'),
    }
    _run(secured, "REVOKE SELECT ON gold.customers FROM USER nobody", "dan")


def test_creating_a_view_needs_read_access_to_its_inputs(secured: Engine) -> None:
    _run(secured, 'CREATE VIEW "@ana".mine AS SELECT status FROM gold.orders', "ana")
    with pytest.raises(ObjectNotFound):
        _run(secured, 'CREATE VIEW "@ana".theirs AS SELECT * FROM gold.customers', "ana")
    with pytest.raises(ObjectNotFound):
        _run(secured, "CREATE VIEW Sales.sneaky AS SELECT * FROM gold.orders", "ana")
    # Another user's home is invisible.
    with pytest.raises(ObjectNotFound):
        _run(secured, 'SELECT * FROM "@ana".mine', "dan")


def test_files_and_state_are_out_of_reach(secured: Engine) -> None:
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM __ducklake_metadata_lake.ducklake_snapshot",
        "SELECT * FROM lake.gold.customers",
        "SELECT * FROM __reflections.anything",
        "SELECT current_setting('threads')",
        "ATTACH ':memory:' AS x",
        "COPY gold.orders TO '/tmp/x.csv'",
    ):
        with pytest.raises(FleuveError):
            _run(secured, sql, "ana")
