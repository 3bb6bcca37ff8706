"""The engine's own statements (DDL, grants, introspection) and writes to lake tables.

`Statements` is a part of `Engine`: each `_do_<Statement>` method answers one statement that
`ddl.parse` recognized, as a small Arrow table (`ok`, `summary`) or a result table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa
from sqlglot import exp

from fleuve.engine import ddl, paths
from fleuve.engine import privileges as system
from fleuve.engine.dialect import to_duckdb
from fleuve.engine.entities import CatalogEntities
from fleuve.engine.errors import EngineError, ObjectNotFound, QueryFailed, safe_error
from fleuve.engine.grants import Grant, Principal, not_found
from fleuve.engine.plan import QUERY_TYPES, Planner, Prepared, parse_query
from fleuve.engine.reflections.service import RefreshResult
from fleuve.engine.system import SystemTables, describe_table
from fleuve.lake import CATALOG, quote_ident

DML = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
STATUS = pa.schema([("ok", pa.bool_()), ("summary", pa.string())])


class Statements(CatalogEntities):
    """Answers the engine's own statements; a part of `Engine`, over its catalog entities."""

    # Set by `Engine.__init__`.
    planner: Planner
    system: SystemTables

    def _statement(self, stmt: Any, who: Principal, ctx: tuple[str, ...], dialect: str) -> Prepared:
        handler = getattr(self, "_do_" + type(stmt).__name__)
        result = handler(stmt, who, ctx, dialect)
        return result if isinstance(result, Prepared) else Prepared(table=result)

    def _do_Explain(
        self, stmt: ddl.Explain, who: Principal, ctx: tuple[str, ...], dialect: str
    ) -> pa.Table:
        ast = parse_query(stmt.sql, dialect)
        if not isinstance(ast, QUERY_TYPES):
            raise EngineError("EXPLAIN takes a query", "write EXPLAIN SELECT ...")
        prepared = self._plan_query(ast, who, ctx, explain=True)
        plan = prepared.plan
        assert plan is not None
        rows = [("datasets", ", ".join(paths.render(d.path) for d in plan.datasets) or "(none)")]
        for o in plan.reflections.values():
            line = f"{o.relationship} {o.name} (id {o.reflection_id})"
            rows.append(("reflection", line + (f": {o.reason}" if o.reason else "")))
        if not plan.reflections:
            rows.append(("reflection", "no reflection defined on the datasets read"))
        hidden = not who.admin and any(
            not self.grants.allows(who, "SELECT", d.path) for d in plan.read
        )
        if hidden:
            rows.append(
                ("sql", "(hidden: the query reads datasets you may read only through a view)")
            )
        else:
            rows.append(("sql", prepared.sql or ""))
            try:
                with self._borrowed(prepared) as cur:
                    text = "\n".join(
                        r[1] for r in cur.execute(f"EXPLAIN {prepared.sql}").fetchall()
                    )
            except duckdb.Error as exc:
                raise QueryFailed(safe_error(exc, admin=who.admin), None) from None
            rows.append(("plan", text))
        return pa.table({"section": [r[0] for r in rows], "text": [r[1] for r in rows]})

    def _do_ShowSchemas(self, stmt: ddl.ShowSchemas, who: Principal, *_: Any) -> pa.Table:
        return self.system.show_schemas(who, stmt.like)

    def _do_ShowTables(
        self, stmt: ddl.ShowTables, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        return self.system.show_tables(who, stmt.path or (ctx or None))

    def _do_Describe(
        self, stmt: ddl.Describe, who: Principal, ctx: tuple[str, ...], dialect: str
    ) -> pa.Table:
        if stmt.sql is not None:
            prepared = self._plan_query(parse_query(stmt.sql, dialect), who, ctx)
            return describe_table(self._fields_of(prepared))
        dataset = self._readable(stmt.path or (), who, ctx)
        return describe_table(dataset.fields)

    def _do_ShowReflections(
        self, stmt: ddl.ShowReflections, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        table = self.system.table("sys.reflections", who)
        if stmt.dataset is None:
            return table
        dataset = self._readable(stmt.dataset, who, ctx)
        keep = [n == paths.render(dataset.path) for n in table.column("dataset_name").to_pylist()]
        return table.filter(pa.array(keep, pa.bool_()))

    def _do_Use(self, stmt: ddl.Use, *_: Any) -> pa.Table:
        raise EngineError(
            "USE does not persist between queries here",
            'pass the context with the query (REST: "context"; Flight: the schema header)',
        )

    def _do_CreateContainer(self, stmt: ddl.CreateContainer, who: Principal, *_: Any) -> pa.Table:
        if stmt.kind == "SPACE":
            created = self.create_space(
                stmt.path[0] if len(stmt.path) == 1 else paths.render(stmt.path),
                user=who.name,
                exist_ok=stmt.if_not_exists,
            )
        else:
            created = self.create_folder(stmt.path, user=who.name, exist_ok=stmt.if_not_exists)
        verb = "created" if created else "already exists"
        return _status(f"{stmt.kind.lower()} {paths.render(stmt.path)} {verb}")

    def _do_DropContainer(self, stmt: ddl.DropContainer, who: Principal, *_: Any) -> pa.Table:
        if self.catalog.container(stmt.path) is None and stmt.if_exists:
            return _status(f"{stmt.kind.lower()} {paths.render(stmt.path)} does not exist")
        self.drop_container(stmt.path, user=who.name)
        return _status(f"{stmt.kind.lower()} {paths.render(stmt.path)} dropped")

    def _do_CreateView(
        self, stmt: ddl.CreateView, who: Principal, ctx: tuple[str, ...], dialect: str
    ) -> pa.Table:
        report = self.save_view(
            stmt.path,
            stmt.sql,
            user=who.name,
            context=ctx,
            dialect=dialect,
            replace=stmt.or_replace,
        )
        return _report_table(report)

    def _do_DropView(
        self, stmt: ddl.DropView, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        found = self.catalog.resolve(stmt.path, ())
        if found is None and stmt.if_exists:
            return _status(f"view {paths.render(stmt.path)} does not exist")
        return _report_table(self.drop_view(stmt.path, user=who.name))

    def _do_CreateReflection(
        self, stmt: ddl.CreateReflection, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        r, result = self._create_reflection(
            stmt.name, stmt.dataset, stmt.spec, who, ctx, enabled=True, build=True
        )
        built = f", built from snapshot {result.snapshot} ({result.rows:,} rows)" if result else ""
        return _status(f"reflection {r.name} created on {paths.render(r.dataset_path)}{built}")

    def _do_DropReflection(
        self, stmt: ddl.DropReflection, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        r = self._managed_reflection(stmt.name, who)
        if stmt.dataset is not None:
            ds = self._readable(stmt.dataset, who, ctx)
            if ds.key != r.dataset_key:
                raise ObjectNotFound(
                    f"reflection {stmt.name} is not defined on {paths.render(ds.path)}",
                    "check the names",
                )
        self._drop_reflection(r, who)
        return _status(f"reflection {r.name} dropped")

    def _do_AlterReflection(self, stmt: ddl.AlterReflection, who: Principal, *_: Any) -> pa.Table:
        r = self._managed_reflection(stmt.name, who)
        if stmt.refresh_now:
            res = self._refresh_reflection(r, who)
            return _status(_refresh_summary(res))
        changes: dict[str, Any] = {}
        if stmt.enabled is not None:
            changes["enabled"] = stmt.enabled
        if stmt.refresh_policy is not None:
            changes["refresh_policy"] = stmt.refresh_policy
            changes["refresh_seconds"] = stmt.refresh_seconds
        r = self.reflections.alter(r, **changes)
        self._audit(who, "reflection", "alter", r.name, id=r.id, changed=sorted(changes))
        what = ", ".join(f"{k.replace('_', ' ')} = {v}" for k, v in changes.items())
        return _status(f"reflection {r.name}: {what}")

    def _do_RefreshReflections(
        self, stmt: ddl.RefreshReflections, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        ds = self._readable(stmt.dataset, who, ctx)
        self.grants.require_reflections(who, ds.path, "refreshing reflections")
        results = [self._refresh_reflection(r, who) for r in self.reflections.on(ds) if r.enabled]
        if not results:
            return _status(f"no enabled reflection on {paths.render(ds.path)}")
        return pa.table(
            {"ok": [True] * len(results), "summary": [_refresh_summary(r) for r in results]},
            schema=STATUS,
        )

    def _do_GrantStatement(
        self, stmt: ddl.GrantStatement, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        lines = []
        kind = stmt.grantee_kind.lower()
        for privilege in stmt.privileges:
            if stmt.revoke:
                removed = self.grants.revoke(
                    who,
                    privilege,
                    stmt.path,
                    stmt.grantee_kind,
                    stmt.grantee,
                    recursive=stmt.recursive,
                )
                revoked = Grant(
                    stmt.grantee_kind, stmt.grantee, privilege, stmt.path, stmt.recursive
                )
                self._audit_grant(who, "revoke", revoked.as_json(), removed=removed)
                lines.append(f"revoked {privilege} from {kind} {stmt.grantee} ({removed} grant(s))")
            else:
                done = self.grants.grant(
                    who,
                    privilege,
                    stmt.path,
                    stmt.grantee_kind,
                    stmt.grantee,
                    recursive=stmt.recursive,
                )
                self._audit_grant(who, "grant", done.as_json())
                lines.append(
                    f"granted {done.privilege} on {done.as_json()['object']} to {kind} {done.grantee}"
                )
        return pa.table({"ok": [True] * len(lines), "summary": lines}, schema=STATUS)

    def _do_RoleStatement(self, stmt: ddl.RoleStatement, who: Principal, *_: Any) -> pa.Table:
        self.grants.set_role(who, stmt.role, stmt.user, add=stmt.add)
        verb = "granted to" if stmt.add else "revoked from"
        return _status(f"role {stmt.role} {verb} user {stmt.user}")

    def _do_CreateRole(self, stmt: ddl.CreateRole, who: Principal, *_: Any) -> pa.Table:
        self.grants.require_system(who, system.MANAGE_USERS, "creating a role")
        return _status(f"role {stmt.name} is ready: GRANT ROLE {stmt.name} TO USER <name>")

    def _do_ShowGrants(
        self, stmt: ddl.ShowGrants, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        grants = self.list_grants(
            user=who.name, path=stmt.path, recursive=stmt.recursive, grantee=stmt.grantee
        )
        return pa.table(
            {
                "grantee_type": [g.grantee_kind for g in grants],
                "grantee": [g.grantee for g in grants],
                "privilege": [g.privilege for g in grants],
                "object": [g.as_json()["object"] for g in grants],
            },
            schema=pa.schema(
                [(n, pa.string()) for n in ("grantee_type", "grantee", "privilege", "object")]
            ),
        )

    def _do_SetStaleness(
        self, stmt: ddl.SetStaleness, who: Principal, ctx: tuple[str, ...], _: str
    ) -> pa.Table:
        ds = self.set_staleness(stmt.dataset, stmt.seconds, user=who.name, context=ctx)
        window = "none" if stmt.seconds is None else f"{stmt.seconds}s"
        return _status(f"{paths.render(ds.path)}: reflections may be stale by {window}")

    def _do_Promote(self, stmt: ddl.Promote, who: Principal, *_: Any) -> pa.Table:
        ds = self.promote(stmt.path, user=who.name, format=stmt.format)
        return _status(f"{paths.render(ds.path)} promoted: {len(ds.fields)} columns")

    def _do_Forget(self, stmt: ddl.Forget, who: Principal, *_: Any) -> pa.Table:
        self.forget(stmt.path, user=who.name)
        return _status(f"{paths.render(stmt.path)} is no longer a dataset")

    def _dml(self, ast: exp.Expr, who: Principal, ctx: Sequence[str]) -> Prepared:
        """INSERT/UPDATE/DELETE/MERGE, CREATE TABLE and DROP TABLE on lake tables, with ALL."""
        target = ast.this
        if isinstance(ast, exp.Drop):
            tables = ast.args.get("tables") or [ast.this]
            if len(tables) != 1:
                raise EngineError("DROP TABLE takes one table", "drop tables one at a time")
            target = tables[0]
        while isinstance(target, exp.Schema):
            target = target.this
        if not isinstance(target, exp.Table):
            raise EngineError("cannot find the statement's target table", "name a lake table")
        parts = tuple(p.name for p in target.parts)
        if isinstance(ast, exp.Create):
            path = (*ctx[:1], *parts) if len(parts) == 1 and ctx else parts
            schemas = {s.lower() for s in self.catalog.lake_tables().schemas}
            if len(path) != 2 or path[0].lower() not in schemas:
                raise EngineError(
                    f"{paths.render(parts)} is not a lake table name",
                    "create tables as <layer>.<name>, e.g. bronze.events",
                )
            self.grants.require(who, "ALL", path, "creating a table")
            if ast.expression is not None:
                ast.set(
                    "expression", self.planner.plan(ast.expression, who, ctx, accelerate=False).ast
                )
            target.replace(_lake_table(path))
            return Prepared(sql=to_duckdb(ast), writes=True)
        ds = self.catalog.resolve(parts, ctx)
        if ds is None or not self.grants.allows(who, "SELECT", ds.path):
            if isinstance(ast, exp.Drop) and ast.args.get("exists"):
                return Prepared(table=_status(f"{paths.render(parts)} does not exist"))
            raise not_found(parts)
        if ds.lake_table is None:
            raise EngineError(
                f"{paths.render(ds.path)} is not a lake table", "write to lake tables only"
            )
        self.grants.require(who, "ALL", ds.path, f"{type(ast).__name__.upper()}")
        if isinstance(ast, exp.Drop):
            target.replace(_lake_table(ds.path))
            return Prepared(sql=to_duckdb(ast), writes=True)
        # INSERT/UPDATE/DELETE/MERGE may read other datasets and the target itself.
        named = exp.to_table(paths.render(ds.path), dialect="duckdb")
        if target.args.get("alias"):
            named.set("alias", target.args["alias"].copy())
        target.replace(named)
        plan = self.planner.plan(ast, who, ctx, accelerate=False)
        if isinstance(plan.ast, exp.Insert):
            written = plan.ast.this.this if isinstance(plan.ast.this, exp.Schema) else plan.ast.this
            written.set("alias", None)
        return Prepared(sql=plan.sql, plan=plan, writes=True)


def _lake_table(path: Sequence[str]) -> exp.Table:
    return exp.to_table(
        f"{CATALOG}.{quote_ident(path[0])}.{quote_ident(path[1])}", dialect="duckdb"
    )


def _status(summary: str) -> pa.Table:
    return pa.table({"ok": [True], "summary": [summary]}, schema=STATUS)


def _report_table(report: dict[str, Any]) -> pa.Table:
    ds = report["dataset"]
    verb = (
        "dropped" if report.get("dropped") else "created" if report.get("created") else "replaced"
    )
    lines = [(True, f"view {paths.render(ds['path'])} {verb}")]
    for dep in report["dependents"]:
        where = paths.render(dep["path"])
        if dep["status"] == "OK":
            lines.append((True, f"dependent view {where} still works"))
        else:
            lines.append((False, f"dependent view {where} is broken: {dep.get('error')}"))
    return pa.table({"ok": [x[0] for x in lines], "summary": [x[1] for x in lines]}, schema=STATUS)


def _refresh_summary(r: RefreshResult) -> str:
    if r.mode == "SKIPPED":
        return f"reflection {r.reflection}: skipped ({r.reason})"
    why = (
        f"; full because {r.reason}"
        if r.mode == "FULL" and r.reason and r.reason != "never built"
        else ""
    )
    return f"reflection {r.reflection}: {r.mode.lower()} refresh, {r.rows:,} rows at snapshot {r.snapshot}{why}"
