"""Transformations: the dbt project wired to the lake, its runs, their history and lineage.

Fleuve runs real dbt (dbt-core + dbt-duckdb) in-process on the project's dbt folder
(`transform/` by default). `fleuve init` scaffolds it with example models over the demo shop:
staging and intermediate in the lake's `silver` schema, marts in `gold` (zstd, partitioned by
period), the large facts incremental (merged on their key). Its generated `profiles.yml`
attaches the lake, so plain `dbt run|test|build|docs generate --profiles-dir .` work there too.

The Python API the pipeline, the CLI and the serving layers use:

    run_transform(settings, args, *, db=None, on_event=None, metadata=None) -> DbtRun
        Run a dbt command (e.g. ["build", "--select", "staging"]). Nodes that lost a commit race
        with another lake writer are resumed after a bounded backoff; failed tests are run again
        with --store-failures, their rows kept in `test_failures.<test>`; with `db`, the run goes to
        dbt_run_history and each node's timing to dbt_run_nodes. `on_event(NodeEvent)` is called
        as each node starts and finishes (kind, index, total, name, resource_type, status,
        seconds, failures).
    DbtRun: run_id, command, success, seconds, started_at, completed_at, project_name, error,
        nodes: list[NodeResult], failed, failed_tests, counts(), summary()
    NodeResult: unique_id, name, resource_type, status, seconds, started_at, completed_at,
        relation ('silver.stg_orders'), failures, models and column (for tests), message,
        describe() ('test on model.column: N failing rows (stored in test_failures.test)')

    run_history(db, limit=20) -> list[RunRecord]           newest first
    get_run(db, run_id) -> RunRecord                       a unique prefix of the id is enough
    node_timings(db, name, limit=20) -> list[NodeTiming]   one node's timings, newest first
    RunRecord: the dbt_run_history columns (run_id, project_name, started_at,
        completed_at, status, models_run, tests_run, metadata) and nodes: list[NodeTiming];
        to_dict() for JSON
    NodeTiming: unique_id, name, resource_type, status, seconds, started_at, completed_at,
        relation, failures, message

    lineage(settings, *, lake=None, columns=True) -> Lineage
    Lineage: nodes (id → LineageNode), edges [(upstream id, downstream id)], node(ref),
        parents(ref), children(ref), upstream(ref), downstream(ref) (nearest first),
        column_sources(ref, column) and column_dependents(ref, column) (list[ColumnRef]),
        layers() (bronze → staging → intermediate → marts → the rest), to_dict() for JSON,
        add(node, upstream=[refs]) and link(parent, child) for providers
    LineageNode: id ('bronze.raw_orders', 'gold.fct_orders', 'dashboard:customer_analytics'),
        kind ('source', 'model', 'dashboard', ...), name, layer, relation, materialized,
        description, columns, tests, dbt_unique_id, url
    register_lineage_provider(provider) / unregister_lineage_provider(provider)
        `provider(graph: Lineage, context: LineageContext)` adds what another layer owns, e.g.
        `graph.add(LineageNode(id="reflection:r", kind="reflection", name="r",
        layer="reflections"), upstream=["gold.orders"])`; refs are ids, model names or dbt ids.
"""

from fleuve.transform.dbt import DbtRun, NodeEvent, NodeResult, run_dbt
from fleuve.transform.dbt_project import scaffold, write_profile
from fleuve.transform.history import NodeTiming, RunRecord, get_run, node_timings, run_history
from fleuve.transform.lineage import (
    ColumnRef,
    Lineage,
    LineageContext,
    LineageNode,
    lineage,
    register_lineage_provider,
    unregister_lineage_provider,
)
from fleuve.transform.run import run_transform

__all__ = [
    "ColumnRef",
    "DbtRun",
    "Lineage",
    "LineageContext",
    "LineageNode",
    "NodeEvent",
    "NodeResult",
    "NodeTiming",
    "RunRecord",
    "get_run",
    "lineage",
    "node_timings",
    "register_lineage_provider",
    "run_dbt",
    "run_history",
    "run_transform",
    "scaffold",
    "unregister_lineage_provider",
    "write_profile",
]
