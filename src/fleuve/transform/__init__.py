"""Transformations: the dbt project wired to the lake, its runs and their history."""

from fleuve.transform.dbt import DbtRun, NodeEvent, NodeResult, run_dbt
from fleuve.transform.history import NodeTiming, RunRecord, get_run, node_timings, run_history
from fleuve.transform.project import scaffold, write_profile
from fleuve.transform.run import run_transform

__all__ = [
    "DbtRun",
    "NodeEvent",
    "NodeResult",
    "NodeTiming",
    "RunRecord",
    "get_run",
    "node_timings",
    "run_dbt",
    "run_history",
    "run_transform",
    "scaffold",
    "write_profile",
]
