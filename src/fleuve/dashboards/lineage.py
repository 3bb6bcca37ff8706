"""Dashboards in the lineage graph, downstream of the datasets their charts read."""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

from fleuve.dashboards import store
from fleuve.dashboards.models import DashboardSpec
from fleuve.errors import FleuveError
from fleuve.metadata import Database
from fleuve.transform.lineage import Lineage, LineageContext, LineageNode, register_lineage_provider


@register_lineage_provider
def dashboards(graph: Lineage, context: LineageContext) -> None:
    """Add each saved dashboard below the lake relations its charts read."""
    db = Database(context.settings)
    try:
        rows = store.list_dashboards(db)
    except SQLAlchemyError:  # a metadata database not yet migrated has no dashboards
        return
    finally:
        db.dispose()
    for row in rows:
        spec = DashboardSpec.model_validate(row.spec)
        upstream = []
        for dataset in sorted({c.dataset.replace('"', "") for c in spec.charts if c.dataset}):
            try:
                upstream.append(graph.node(dataset).id)
            except FleuveError:  # a dataset dbt does not build (a source or a view) stays out
                continue
        graph.add(
            LineageNode(
                id=f"dashboard:{row.slug}",
                kind="dashboard",
                name=row.title,
                layer="dashboards",
                description=spec.description or "",
                url=f"/ui/dashboards/{row.slug}",
            ),
            upstream=upstream,
        )
