"""Schedules: when connections sync and batch work runs, and which process runs each due run.

`triggers` parses the spellings (cron, names such as `daily`, `manual`) and computes next times;
`clock` is the injectable time source; `store` keeps state, runs and leases in the metadata
database; `scheduler` is the loop that `fleuve worker` and `fleuve serve` run.

This package's `__init__` imports nothing, so that `fleuve.config` can validate spellings with
`fleuve.triggers` (a leaf module) without loading the scheduler.
"""
