"""Dashboards and charts as code: YAML models, their SQL, and their place in the metadata.

A project's `dashboards/*.yml` files each declare one dashboard (see `DashboardSpec`); they
are loaded when Fleuve starts serving. Charts read through the engine as the viewing user, so
grants and reflections apply to them as to any query.
"""

from fleuve.dashboards.models import ChartSpec, DashboardSpec, FilterSpec, Metric
from fleuve.dashboards.query import ChartError, DateRange, chart_query, filter_conditions
from fleuve.dashboards.store import LoadReport, load_dashboards, read_dashboard_file

__all__ = [
    "ChartError",
    "ChartSpec",
    "DashboardSpec",
    "DateRange",
    "FilterSpec",
    "LoadReport",
    "Metric",
    "chart_query",
    "filter_conditions",
    "load_dashboards",
    "read_dashboard_file",
]
