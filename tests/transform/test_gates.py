"""Quality gates: in `fleuve run`, a failing test stops the layers downstream of it."""

from __future__ import annotations

from fleuve.pipeline import STEPS, run_pipeline
from fleuve.project import Project
from fleuve.transform import run_history

DBT_STEPS = [s for s in STEPS if s.name.endswith(("staging", "intermediate", "marts"))]


def test_a_bad_amount_fails_assert_positive_amounts_and_stops_the_marts(shop: Project) -> None:
    shop.lake.commit(
        lambda c: c.execute("UPDATE bronze.raw_orders SET amount = -5 WHERE order_id = 42"),
        what="plant a bad amount",
    )
    report = run_pipeline(shop, steps=DBT_STEPS)

    assert report.status == "failed"
    assert report.error is not None and report.error.step == "test_staging"
    message = str(report.error)
    # The report names the test, the model and the count, and where the rows are.
    assert (
        "assert_positive_amounts on stg_orders: 1 failing row "
        "(stored in test_failures.assert_positive_amounts)" in message
    )
    assert "query test_failures.assert_positive_amounts in the lake" in message
    assert [s.status for s in report.steps] == [
        "succeeded",
        "failed",
        "skipped",
        "skipped",
        "skipped",
        "skipped",
    ]
    # Nothing past staging was built.
    assert shop.lake.tables("gold") == []
    assert "int_customer_orders" not in {t for _, t in shop.lake.tables("silver")}
    stored = shop.lake.query("SELECT order_id, amount FROM test_failures.assert_positive_amounts")
    assert stored.to_pylist() == [{"order_id": 42, "amount": -5}]

    failed = run_history(shop.db)[0]
    assert failed.status == "failed" and failed.tests_run == 22
    assert failed.metadata["pipeline_step"] == "test staging"
    assert failed.metadata["failures"] == [
        "assert_positive_amounts on stg_orders: 1 failing row "
        "(stored in test_failures.assert_positive_amounts)"
    ]
    [node] = [n for n in failed.nodes if n.status == "fail"]
    assert (node.name, node.failures) == ("assert_positive_amounts", 1)

    # Once the fixed order lands again, the same pipeline goes through.
    shop.lake.commit(
        lambda c: c.execute(
            "UPDATE bronze.raw_orders SET amount = 5, updated_at = updated_at + INTERVAL 1 DAY, "
            "_fleuve_extracted_at = now() WHERE order_id = 42"
        ),
        what="land the fixed order",
    )
    again = run_pipeline(shop, steps=DBT_STEPS)
    assert again.status == "succeeded", again.error
    assert {t for _, t in shop.lake.tables("gold")} >= {"fct_customer_lifetime_value"}
