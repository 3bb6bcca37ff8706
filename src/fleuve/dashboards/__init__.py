"""Dashboards and charts as code: YAML specs, their SQL, and their place in the metadata.

A project's `dashboards/*.yml` files each declare one dashboard (see `DashboardSpec`); they
are loaded when Fleuve starts serving. Charts read through the engine as the viewing user, so
grants and reflections apply to them as to any query.
"""

from __future__ import annotations

import importlib
from typing import Any

# Where each public name lives. They load on first use, so that commands which never touch a
# dashboard (`fleuve transform`, `fleuve sync`) do not pay for SQL parsing and migrations.
_EXPORTS = {
    "ChartSpec": "spec",
    "DashboardSpec": "spec",
    "FilterSpec": "spec",
    "Measure": "spec",
    "ChartError": "query",
    "DateRange": "query",
    "chart_query": "query",
    "filter_conditions": "query",
    "LoadReport": "store",
    "load_dashboards": "store",
    "read_dashboard_file": "store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fleuve.dashboards' has no attribute {name!r}")
    return getattr(importlib.import_module(f"fleuve.dashboards.{module}"), name)
