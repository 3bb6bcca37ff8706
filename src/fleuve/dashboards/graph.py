"""Dashboards and their charts in the lineage graph, downstream of the datasets the charts read."""

from __future__ import annotations

import sqlglot
from sqlalchemy.exc import SQLAlchemyError
from sqlglot import exp

from fleuve.dashboards import store
from fleuve.dashboards.spec import ChartSpec, DashboardSpec
from fleuve.errors import FleuveError
from fleuve.metadata import Database
from fleuve.transform.lineage import Lineage, LineageContext, LineageNode, register_lineage_provider


@register_lineage_provider
def dashboards(graph: Lineage, context: LineageContext) -> None:
    """Add each dashboard below its charts, each chart below the lake relations it reads."""
    specs, saved_charts = _saved(context)
    for slug in sorted(specs):
        spec = specs[slug]
        url = f"/ui/dashboards/{slug}"
        charts = [_add_chart(graph, f"chart:{slug}/{c.name}", c, url) for c in spec.charts]
        graph.add(
            LineageNode(
                id=f"dashboard:{slug}",
                kind="dashboard",
                name=spec.title,
                layer="dashboards",
                description=spec.description or "",
                url=url,
            ),
            upstream=charts,
        )
    for chart in saved_charts:
        _add_chart(graph, f"chart:{chart.name}", chart, None)


def _saved(context: LineageContext) -> tuple[dict[str, DashboardSpec], list[ChartSpec]]:
    """The dashboards (saved ones, then the project's files) and the saved charts."""
    specs: dict[str, DashboardSpec] = {}
    charts: list[ChartSpec] = []
    made_in_ui: set[str] = set()
    db = Database(context.settings)
    try:
        for row in store.list_dashboards(db):
            specs[row.slug] = DashboardSpec.model_validate(row.spec)
            if row.origin != "file":
                made_in_ui.add(row.slug)
        charts = [ChartSpec.model_validate(row.spec) for row in store.list_charts(db)]
    except SQLAlchemyError:  # a metadata database not yet migrated has none
        pass
    finally:
        db.dispose()
    # The files are read too, so that a command sees them before `fleuve serve` loads them;
    # as when they are loaded, a dashboard made in the UI keeps its slug.
    folder = context.settings.project_dir / store.FOLDER
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
    for path in files:
        try:
            spec = store.read_dashboard_file(path)
        except FleuveError:  # `fleuve dashboards check` names what is wrong with it
            continue
        if spec.slug not in made_in_ui:
            specs[spec.slug] = spec
    return specs, charts


def _add_chart(graph: Lineage, node_id: str, chart: ChartSpec, url: str | None) -> str:
    """Add a chart below the lake relations it reads; returns its id."""
    upstream = []
    for relation in sorted(_relations(chart)):
        try:
            upstream.append(graph.node(relation).id)
        except FleuveError:  # a dataset dbt does not build (a source or a view) stays out
            continue
    graph.add(
        LineageNode(
            id=node_id,
            kind="chart",
            name=chart.title,
            layer="dashboards",
            description=chart.description or "",
            url=url,
        ),
        upstream=upstream,
    )
    return node_id


def _relations(chart: ChartSpec) -> set[str]:
    """The relations a chart reads: its dataset, or the tables of its SQL."""
    if chart.dataset:
        return {chart.dataset.replace('"', "")}
    if not chart.sql:
        return set()
    try:
        tree = sqlglot.parse_one(chart.sql, read="duckdb")
    except sqlglot.errors.ParseError:  # the chart itself reports its SQL's error
        return set()
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    return {
        ".".join(p for p in (t.db, t.name) if p)
        for t in tree.find_all(exp.Table)
        if t.name not in ctes
    }
