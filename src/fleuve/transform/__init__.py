"""Transformations: the dbt project wired to the lake, its runs and their history."""

from fleuve.transform.dbt import DbtRun, run_dbt
from fleuve.transform.project import scaffold, write_profile

__all__ = ["DbtRun", "run_dbt", "scaffold", "write_profile"]
