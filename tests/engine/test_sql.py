"""The SQL surface: Dremio dialect, introspection as sqlalchemy-dremio sends it, virtual
datasets with dependency reports, the catalog's REST shapes and name resolution."""

from __future__ import annotations

import pytest

from fleuve.engine import Engine, EngineError, ObjectNotFound
from fleuve.project import Project


def rows(engine: Engine, sql: str, user: str = "admin", **kw) -> list[dict]:  # type: ignore[no-untyped-def]
    return engine.execute(sql, user=user, **kw).read_all().to_pylist()


def test_dremio_dialect_per_query_and_per_engine(engine: Engine, project: Project) -> None:
    sql = (
        'SELECT "status", NVL("country", \'?\') AS c, COUNT(*) AS n FROM "gold"."orders" '
        "WHERE CAST(\"ordered_at\" AS DATE) >= TO_DATE('2024-06-01', 'YYYY-MM-DD') "
        'GROUP BY "status", NVL("country", \'?\')'
    )
    got = rows(engine, sql, dialect="dremio")
    assert got and {"status", "c", "n"} == set(got[0])
    dremio = Engine(project, dialect="dremio")
    try:
        assert sorted(map(repr, rows(dremio, sql))) == sorted(map(repr, got))
    finally:
        dremio.close()
    with pytest.raises(EngineError, match="unknown SQL dialect"):
        rows(engine, "SELECT 1", dialect="oracle")


def test_dremio_queries_use_reflections(engine: Engine) -> None:
    rows(
        engine,
        "CREATE REFLECTION daily ON gold.orders USING DIMENSIONS (status, ordered_at BY DAY) MEASURES (SUM(amount), COUNT(*))",
    )
    result = engine.execute(
        'SELECT DATE_TRUNC(\'MONTH\', "ordered_at") AS m, SUM("amount") AS revenue '
        'FROM "gold"."orders" GROUP BY DATE_TRUNC(\'MONTH\', "ordered_at") ORDER BY 1',
        user="admin",
        dialect="dremio",
    )
    assert result.read_all().num_rows > 0
    assert [r["relationship"] for r in engine.job(result.job_id).reflections] == ["CHOSEN"]


def test_sqlalchemy_dremio_introspection(engine: Engine) -> None:
    rows(engine, "CREATE SPACE Sales")
    rows(engine, "CREATE FOLDER Sales.eu")
    rows(
        engine,
        "CREATE VIEW Sales.eu.fr_orders AS SELECT order_id, amount FROM gold.orders WHERE country = 'FR'",
    )
    schemas = [r["SCHEMA_NAME"] for r in rows(engine, "SHOW SCHEMAS")]
    assert {"gold", "Sales", "Sales.eu", "INFORMATION_SCHEMA", "sys"} <= set(schemas)
    names = [
        r["TABLE_NAME"]
        for r in rows(
            engine,
            "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.\"TABLES\" WHERE TABLE_SCHEMA = 'gold'",
        )
    ]
    assert sorted(names) == ["customers", "orders"]
    described = rows(engine, 'DESCRIBE "gold"."orders"')
    assert [(r["COLUMN_NAME"], r["DATA_TYPE"]) for r in described][:4] == [
        ("order_id", "BIGINT"),
        ("customer_id", "BIGINT"),
        ("status", "CHARACTER VARYING"),
        ("country", "CHARACTER VARYING"),
    ]
    # sqlalchemy-dremio quotes a dotted schema as one identifier.
    assert [r["COLUMN_NAME"] for r in rows(engine, 'DESCRIBE "Sales.eu"."fr_orders"')] == [
        "order_id",
        "amount",
    ]
    count = rows(
        engine,
        "SELECT COUNT(*) AS n FROM INFORMATION_SCHEMA.\"TABLES\" WHERE TABLE_NAME='fr_orders' AND TABLE_SCHEMA='Sales.eu'",
    )
    assert count == [{"n": 1}]
    cols = rows(
        engine,
        "SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE FROM INFORMATION_SCHEMA.\"COLUMNS\" WHERE TABLE_NAME = 'fr_orders'",
    )
    assert cols[1] == {
        "COLUMN_NAME": "amount",
        "DATA_TYPE": "DECIMAL",
        "NUMERIC_PRECISION": 12,
        "NUMERIC_SCALE": 2,
    }
    views = rows(engine, "SELECT VIEW_DEFINITION FROM INFORMATION_SCHEMA.VIEWS")
    assert "country = 'FR'" in views[0]["VIEW_DEFINITION"]
    assert rows(
        engine, "SELECT SCHEMA_NAME FROM INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME = 'Sales.eu'"
    ) == [{"SCHEMA_NAME": "Sales.eu"}]
    assert [r["TABLE_NAME"] for r in rows(engine, "SHOW TABLES IN Sales.eu")] == ["fr_orders"]


def test_views_track_dependencies(engine: Engine) -> None:
    rows(engine, "CREATE SPACE Shop")
    rows(engine, "CREATE VIEW Shop.base AS SELECT order_id, amount, status FROM gold.orders")
    rows(
        engine,
        "CREATE VIEW Shop.paid AS SELECT order_id, amount FROM Shop.base WHERE status = 'paid'",
    )
    rows(engine, "CREATE VIEW Shop.total AS SELECT SUM(amount) AS total FROM Shop.paid")
    assert rows(engine, "SELECT total > 0 AS ok FROM Shop.total") == [{"ok": True}]
    # Replacing the base keeps the columns the others read: they still work.
    report = engine.save_view(
        ["Shop", "base"],
        "SELECT order_id, amount * 2 AS amount, status, country FROM gold.orders",
        user="admin",
    )
    assert [(d["path"], d["status"]) for d in report["dependents"]] == [
        (["Shop", "paid"], "OK"),
        (["Shop", "total"], "OK"),
    ]
    # Dropping a column the others read breaks them, and says so.
    out = rows(
        engine, "CREATE OR REPLACE VIEW Shop.base AS SELECT order_id, status FROM gold.orders"
    )
    assert [r["ok"] for r in out] == [True, False, False]
    assert "Shop" in out[1]["summary"] and "broken" in out[1]["summary"]
    assert engine.dataset("Shop.paid", user="admin").error
    with pytest.raises(EngineError):
        rows(engine, "SELECT * FROM Shop.paid")
    # Fixing the base fixes them.
    report = engine.save_view(
        ["Shop", "base"], "SELECT order_id, amount, status FROM gold.orders", user="admin"
    )
    assert {d["status"] for d in report["dependents"]} == {"OK"}
    assert engine.dataset("Shop.paid", user="admin").error is None
    dropped = engine.drop_view(["Shop", "paid"], user="admin")
    assert [(d["path"], d["status"]) for d in dropped["dependents"]] == [
        (["Shop", "total"], "BROKEN")
    ]
    with pytest.raises(EngineError, match="no longer exists"):
        rows(engine, "SELECT * FROM Shop.total")


def test_views_refuse_cycles_and_bad_sql(engine: Engine) -> None:
    rows(engine, "CREATE SPACE S")
    rows(engine, "CREATE VIEW S.a AS SELECT 1 AS x")
    rows(engine, "CREATE VIEW S.b AS SELECT x FROM S.a")
    with pytest.raises(EngineError, match="read itself"):
        rows(engine, "CREATE OR REPLACE VIEW S.a AS SELECT x FROM S.b")
    with pytest.raises(EngineError, match="cannot parse"):
        rows(engine, "CREATE VIEW S.c AS SELEC 1")
    with pytest.raises(EngineError, match="already exists"):
        rows(engine, "CREATE VIEW S.a AS SELECT 2 AS x")
    with pytest.raises(ObjectNotFound):
        rows(engine, "CREATE VIEW Nowhere.v AS SELECT 1")
    with pytest.raises(EngineError, match="duplicate"):
        rows(engine, "CREATE VIEW S.d AS SELECT 1 AS x, 2 AS x")


def test_catalog_shapes(engine: Engine) -> None:
    rows(engine, "CREATE SPACE Sales")
    rows(engine, "CREATE VIEW Sales.v AS SELECT status FROM gold.orders")
    root = engine.catalog_root(user="admin")
    kinds = {tuple(c["path"]): c["containerType"] for c in root}
    assert kinds[("@admin",)] == "HOME"
    assert kinds[("gold",)] == "SOURCE" and kinds[("Sales",)] == "SPACE"
    assert all(c["type"] == "CONTAINER" and c["id"] for c in root)
    gold = engine.catalog_item(next(c["id"] for c in root if c["path"] == ["gold"]), user="admin")
    assert gold["entityType"] == "source"
    assert {tuple(c["path"]) for c in gold["children"]} == {
        ("gold", "orders"),
        ("gold", "customers"),
    }
    orders = engine.catalog_by_path(["gold", "orders"], user="admin")
    assert orders["entityType"] == "dataset" and orders["type"] == "PHYSICAL_DATASET"
    assert orders["fields"][0] == {"name": "order_id", "type": {"name": "BIGINT"}}
    assert engine.catalog_item(orders["id"], user="admin")["path"] == ["gold", "orders"]
    view = engine.catalog_by_path(["Sales", "v"], user="admin")
    assert view["type"] == "VIRTUAL_DATASET" and view["sql"].startswith("SELECT status")
    assert view["fields"] == [{"name": "status", "type": {"name": "VARCHAR"}}]
    with pytest.raises(ObjectNotFound):
        engine.catalog_item("no-such-id", user="admin")


def test_context_and_default_schema(engine: Engine) -> None:
    assert rows(engine, "SELECT COUNT(*) AS n FROM orders", default_schema="gold")[0]["n"] == 3000
    assert rows(engine, "SELECT COUNT(*) AS n FROM orders", context=["gold"])[0]["n"] == 3000
    job = engine.submit("SELECT COUNT(*) AS n FROM customers", user="admin", context=["gold"])
    _wait(engine, job)
    assert engine.results(job).to_pylist() == [{"n": 45}]
    with pytest.raises(ObjectNotFound):
        rows(engine, "SELECT * FROM orders")


def test_time_travel_on_lake_tables(engine: Engine) -> None:
    snapshot = engine.clock.state().snapshot
    rows(engine, "DELETE FROM gold.orders WHERE order_id < 100")
    now = rows(engine, "SELECT COUNT(*) AS n FROM gold.orders")[0]["n"]
    then = rows(engine, f"SELECT COUNT(*) AS n FROM gold.orders AT (VERSION => {snapshot})")[0]["n"]
    assert (now, then) == (2900, 3000)


def _wait(engine: Engine, job_id: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while engine.job(job_id).state not in ("COMPLETED", "FAILED", "CANCELED"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
