"""The SQL engine: catalog, virtual datasets, federation, reflections and grants over the lake.

`Engine(project)` is the one object the serving layer talks to. Every method taking `user`
(a user name) checks that user's grants; `admin` passes every check. Errors are
`fleuve.errors.FleuveError` subclasses from `fleuve.engine.errors` with a user-facing
`message` and `fix` (REST: `errorMessage`, `moreInfo`): `ObjectNotFound` (404; also what a
caller without access gets, so nothing leaks), `AccessDenied` (403), `EngineError`/
`QueryFailed` (400), `QueryCanceled`.

Queries and jobs (REST API v3 job flow, Flight):

- `execute(sql, *, user, default_schema=None, batch_rows=65536, dialect=None, context=None)
  -> QueryResult(job_id, schema, batches)` runs now and streams Arrow record batches;
- `submit(sql, *, user, context=None, dialect=None) -> job_id` runs in the background;
  `job(job_id) -> QueryJob` (`.as_json()` is the REST job object, with
  `acceleration.reflectionRelationships`), `results(job_id, offset, limit) -> pa.Table`,
  `cancel(job_id)`, `jobs(user, limit)` (history; also `SELECT * FROM sys.jobs`);
- `explain(sql, *, user)` -> rows (section, text): datasets, reflections CONSIDERED /
  MATCHED / CHOSEN with reasons, the DuckDB SQL and its plan (filters pushed to sources).

SQL accepted by `execute`/`submit`: DuckDB SQL, or Dremio SQL with `dialect="dremio"` (per
query; `Engine(project, dialect="dremio")` per engine), over Dremio-style paths
(`gold.orders`, `"My Space"."folder"."view"`, `pg_source.public.customers`);
`INFORMATION_SCHEMA."TABLES"|"COLUMNS"|SCHEMATA|VIEWS|CATALOGS`, `sys.jobs`,
`sys.reflections`, `SHOW SCHEMAS`, `SHOW TABLES [IN path]`, `DESCRIBE path|query`,
`EXPLAIN [PLAN FOR] query`; `CREATE [OR REPLACE] VIEW|VDS path AS query`,
`DROP VIEW path`, `CREATE SPACE|FOLDER`, `DROP SPACE|FOLDER`; both reflection DDL spellings
(`CREATE REFLECTION r ON t USING DISPLAY (...)|DIMENSIONS (...) MEASURES (...)`,
`ALTER TABLE t CREATE AGGREGATE|RAW REFLECTION r USING ...`, `ALTER TABLE t DROP REFLECTION r`,
`ALTER REFLECTION r SET REFRESH EVERY 1 HOUR|MANUAL|ON CHANGE`,
`ALTER REFLECTION r SET ENABLED = TRUE|FALSE`, `ALTER REFLECTION r REFRESH`,
`ALTER TABLE t REFRESH REFLECTIONS`, `DROP REFLECTION r`, `SHOW REFLECTIONS [ON t]`);
`ALTER TABLE t SET STALENESS 1 HOUR|NONE`; `ALTER TABLE source.folder REFRESH METADATA`
(promote files) and `FORGET METADATA`; `GRANT|REVOKE SELECT|ALL ON [TABLE|SCHEMA|SPACE]
path[.*] TO|FROM [ROLE|USER] name`, `GRANT|REVOKE ROLE r TO|FROM USER u`, `SHOW GRANTS`;
INSERT/UPDATE/DELETE/CREATE TABLE/DROP TABLE on lake tables for holders of ALL.

Catalog (REST catalog shapes): `catalog_root(user=)`, `catalog_item(id, user=)`,
`catalog_by_path(path, user=)`, `dataset(path, user=) -> Dataset` (`.fields`, `.as_json()`).
Virtual datasets: `save_view(path, sql, user=, context=(), dialect=None, replace=True)`,
`drop_view(path, user=)` -> {dataset, dependents: [{path, status OK|BROKEN, error}]};
`create_space(name, user=)`, `create_folder(path, user=)`, `drop_container(path, user=)`,
`set_staleness(path, seconds|None, user=)`.
Sources: `add_source(name, "postgres"|"mysql", user=, dsn=...)` (read-only, filters pushed
down), `add_source(name, "files", user=, location="/dir"|"s3://bucket/prefix", ...)`,
`promote(path, user=, format=None)`, `forget(path, user=)`, `drop_source`, `sources(user=)`.
Reflections (REST reflection object): `create_reflection(body, user=)`,
`reflection(id, user=)`, `list_reflections(user=, dataset_id=None)`,
`update_reflection(id, body, user=)`, `delete_reflection(id, user=)`,
`refresh_reflection(id, user=, mode="AUTO"|"FULL")`, `refresh_due()` (the scheduler's
`reflections` schedule calls it).
Grants: `grant(privilege, path, user=, grantee=, grantee_type="ROLE"|"USER")`, `revoke(...)`,
`list_grants(user=, path=None, grantee=None)`; a `path` ending in `.*` covers everything
under a container.
"""

from fleuve.engine import paths
from fleuve.engine.catalog import Container, Dataset
from fleuve.engine.core import Engine, QueryResult
from fleuve.engine.errors import (
    AccessDenied,
    EngineError,
    ObjectNotFound,
    QueryCanceled,
    QueryFailed,
)
from fleuve.engine.query_jobs import FINAL_STATES, QueryJob

__all__ = [
    "FINAL_STATES",
    "AccessDenied",
    "Container",
    "Dataset",
    "Engine",
    "EngineError",
    "ObjectNotFound",
    "QueryCanceled",
    "QueryFailed",
    "QueryJob",
    "QueryResult",
    "paths",
]
