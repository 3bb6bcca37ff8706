"""The SQL engine: catalog, virtual datasets, reflections and grants over the lake.

`Engine` is the one object the serving layer talks to:

- `execute(sql, user=...)` runs a query now and streams Arrow record batches;
- `submit(sql, user=...)` starts an asynchronous job; `job()`, `results()` and `cancel()`
  follow it (the REST API v3 job flow).
"""

from fleuve.engine.core import Engine, QueryJob, QueryResult

__all__ = ["Engine", "QueryJob", "QueryResult"]
