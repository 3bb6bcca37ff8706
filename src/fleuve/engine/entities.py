"""Catalog entities: spaces, folders, sources, virtual datasets, reflections and grants, as managed
through the engine (Dremio's catalog API calls each of them an entity).

`CatalogEntities` is a part of `Engine`: every method takes the acting `user` and checks their
grants; the REST shapes it returns are Dremio's (see `CONTRACTS.md`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import duckdb
from sqlglot import exp

from fleuve.engine import paths
from fleuve.engine import privileges as system
from fleuve.engine.catalog import Catalog, Container, Dataset, file_relation
from fleuve.engine.errors import AccessDenied, EngineError, ObjectNotFound, QueryFailed
from fleuve.engine.grants import ENGINE, Grant, Grants, Principal, not_found
from fleuve.engine.plan import QUERY_TYPES, Prepared, parse_query
from fleuve.engine.reflections.definition import ReflectionSpec
from fleuve.engine.reflections.model import Reflection, spec_from_rest
from fleuve.engine.reflections.service import Reflections, RefreshResult, validate
from fleuve.engine.system import sees_definition
from fleuve.engine.types import Field
from fleuve.errors import FleuveError
from fleuve.lake import quote_literal
from fleuve.project import Project
from fleuve.security import audit

log = logging.getLogger("fleuve.engine")


class CatalogEntities(ABC):
    """The catalog, views, sources, reflections and grants, for the serving layer; a part of `Engine`."""

    # Set by `Engine.__init__`.
    project: Project
    dialect: str
    catalog: Catalog
    grants: Grants
    reflections: Reflections

    @abstractmethod
    def _plan_query(
        self,
        ast: exp.Expr,
        who: Principal,
        ctx: Sequence[str],
        *,
        accelerate: bool | None = None,
        explain: bool = False,
    ) -> Prepared:
        """The plan of a query for `who` (the engine's planner, system tables filled)."""

    @abstractmethod
    def _borrowed(
        self, prepared: Prepared | None = None
    ) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A pooled cursor for the engine's own short queries."""

    def catalog_root(self, *, user: str) -> list[dict[str, Any]]:
        """Top-level containers `user` may see (REST `GET /api/v3/catalog` entries)."""
        who = self.grants.principal(user)
        out = [c.as_json() for c in self.catalog.containers() if self._sees(who, c)]
        home = Container(paths.path_id("home", (who.home,)), (who.home,), "HOME", "home")
        return [home.as_json(), *out]

    def catalog_item(self, object_id: str, *, user: str) -> dict[str, Any]:
        """A dataset or container by id, in the REST catalog shape; ObjectNotFound if not visible."""
        who = self.grants.principal(user)
        found = self.catalog.by_id(object_id)
        if found is None:
            home = who.home
            if object_id == paths.path_id("home", (home,)):
                found = self.catalog.top_level(home)
        return self._catalog_entity(found, who, object_id)

    def catalog_by_path(self, path: Sequence[str], *, user: str) -> dict[str, Any]:
        """A dataset or container by path (`/api/v3/catalog/by-path/a/b`)."""
        who = self.grants.principal(user)
        found: Dataset | Container | None = self.catalog.lookup(path) or self.catalog.container(
            path
        )
        return self._catalog_entity(found, who, paths.render(path))

    def dataset(
        self, path: Sequence[str] | str, *, user: str, context: Sequence[str] = ()
    ) -> Dataset:
        """The dataset at `path` if `user` may read it (fields, type, SQL for views)."""
        who = self.grants.principal(user)
        return self._readable(paths.parse(path) if isinstance(path, str) else path, who, context)

    def _catalog_entity(
        self, found: Dataset | Container | None, who: Principal, label: str
    ) -> dict[str, Any]:
        if isinstance(found, Dataset):
            if not self.grants.allows(who, "SELECT", found.path):
                raise not_found(found.path)
            out = found.as_json()
            if found.virtual and not sees_definition(self.catalog, self.grants, who, found):
                # The definition names the datasets it reads and its filters (as EXPLAIN hides).
                out.pop("sql", None)
                out.pop("sqlContext", None)
            return out
        if isinstance(found, Container) and (
            self._sees(who, found) or found.path[0].lower() == who.home.lower()
        ):
            folders, datasets = self.catalog.children(found.path)
            children = [
                {**c.as_json(), "containerType": "FOLDER" if len(c.path) > 1 else c.kind}
                for c in folders
                if self._sees(who, c)
            ]
            children += [
                {
                    "id": d.id,
                    "path": list(d.path),
                    "tag": d.tag,
                    "type": "DATASET",
                    "datasetType": "VIRTUAL"
                    if d.virtual
                    else "PROMOTED"
                    if d.origin == "files"
                    else "DIRECT",
                }
                for d in datasets
                if self.grants.allows(who, "SELECT", d.path)
            ]
            kind = {"SOURCE": "source", "SPACE": "space", "HOME": "home", "FOLDER": "folder"}[
                found.kind
            ]
            return {
                "entityType": kind,
                "id": found.id,
                "path": list(found.path),
                "name": found.path[-1],
                "tag": "1",
                "children": children,
            }
        raise ObjectNotFound(
            f"{label} not found, or you do not have access to it", "browse GET /api/v3/catalog"
        )

    def _sees(self, who: Principal, c: Container) -> bool:
        return c.path[0].lower() == who.home.lower() or self.grants.sees_container(who, c.path)

    def _readable(self, path: Sequence[str], who: Principal, ctx: Sequence[str] = ()) -> Dataset:
        ds = self.catalog.resolve(path, ctx)
        if ds is None or not self.grants.allows(who, "SELECT", ds.path):
            raise not_found(path)
        return ds

    # -- spaces, folders and virtual datasets ---------------------------------------------

    def create_space(self, name: str, *, user: str, exist_ok: bool = False) -> bool:
        """Create a space; its creator gets ALL on it. False when it existed and `exist_ok`."""
        who = self.grants.principal(user)
        created = self.catalog.create_container((name,), who.name, exist_ok=exist_ok)
        if created and not who.admin:
            self.grants.grant(ENGINE, "ALL", (name,), "USER", who.name, recursive=True)
        return created

    def create_folder(self, path: Sequence[str], *, user: str, exist_ok: bool = False) -> bool:
        """Create a folder in a space or home (ALL on the parent needed)."""
        who = self.grants.principal(user)
        self._require_manage(who, tuple(path[:-1]), "creating a folder")
        return self.catalog.create_container(path, who.name, exist_ok=exist_ok)

    def drop_container(self, path: Sequence[str], *, user: str) -> None:
        """Drop an empty space or folder (ALL on it needed)."""
        who = self.grants.principal(user)
        self._require_manage(who, tuple(path), "dropping it")
        self.catalog.drop_container(path)

    def _require_manage(self, who: Principal, path: tuple[str, ...], doing: str) -> None:
        if path and path[0].lower() == who.home.lower():
            return
        if not path or self.catalog.container(path) is None:
            raise ObjectNotFound(
                f"no space or folder {paths.render(path)}",
                "create the space first with CREATE SPACE",
            )
        if not self.grants.allows(who, "ALL", path):
            if self.grants.sees_container(who, path):
                raise AccessDenied(
                    f"{doing} needs ALL on {paths.render(path)}", "ask an administrator to GRANT it"
                )
            raise ObjectNotFound(
                f"no space or folder {paths.render(path)}", "check the name, or ask for access"
            )

    def save_view(
        self,
        path: Sequence[str],
        sql: str,
        *,
        user: str,
        context: Sequence[str] = (),
        dialect: str | None = None,
        replace: bool = True,
    ) -> dict[str, Any]:
        """Create or replace a virtual dataset; returns it and the state of its dependents."""
        who = self.grants.principal(user)
        path = tuple(path)
        d = (dialect or self.dialect).lower()
        parent = path[:-1]
        if not parent:
            raise EngineError(
                f"a view needs a space: '{path[0]}' has no container",
                'save it in a space or your home, e.g. "My Space".v or "@you".v',
            )
        if parent[0].startswith("@"):
            if parent[0].lower() != who.home.lower() and not who.admin:
                raise ObjectNotFound(
                    f"no space or folder {paths.render(parent)}",
                    "save views in your home or a space",
                )
        else:
            container = self.catalog.container(parent)
            if container is None or container.origin != "space":
                raise ObjectNotFound(
                    f"no space or folder {paths.render(parent)}",
                    "create it with CREATE SPACE / CREATE FOLDER",
                )
            self._require_manage(who, parent, "saving a view")
        existing = self.catalog.lookup(path)
        if existing is not None:
            if not existing.virtual:
                raise EngineError(
                    f"{paths.render(path)} is a physical dataset", "pick another name"
                )
            if not replace:
                raise EngineError(
                    f"view {paths.render(path)} already exists", "use CREATE OR REPLACE VIEW"
                )
        fields, reads, read_all = self._validate_view(sql, who, tuple(context), d)
        if paths.key(path) in read_all:
            raise EngineError(f"view {paths.render(path)} would read itself", "remove the cycle")
        ds = self.catalog.save_dataset(
            path,
            kind="VIRTUAL",
            fields=fields,
            by=who.name,
            sql=sql,
            dialect=d,
            context=context,
            reads=reads,
        )
        return {
            "dataset": ds.as_json(),
            "created": existing is None,
            "dependents": self._revalidate(ds),
        }

    def _validate_view(
        self, sql: str, who: Principal, ctx: tuple[str, ...], dialect: str
    ) -> tuple[list[Field], list[str], set[str]]:
        ast = parse_query(sql, dialect)
        if not isinstance(ast, QUERY_TYPES):
            raise EngineError("a view is defined by a query", "write CREATE VIEW v AS SELECT ...")
        prepared = self._plan_query(ast, who, ctx, accelerate=False)
        if prepared.system:
            raise EngineError(
                "views cannot read system tables", "query INFORMATION_SCHEMA directly"
            )
        assert prepared.plan is not None
        fields = self._fields_of(prepared)
        names = [f.name.lower() for f in fields]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise EngineError(
                f"the view would have duplicate columns: {', '.join(dupes)}", "alias them apart"
            )
        return fields, [d.key for d in prepared.plan.datasets], {d.key for d in prepared.plan.read}

    def _fields_of(self, prepared: Prepared) -> list[Field]:
        try:
            with self._borrowed(prepared) as cur:
                rows = cur.execute(f"DESCRIBE {prepared.sql}").fetchall()
        except duckdb.Error as exc:
            raise QueryFailed(str(exc).splitlines()[0], "check the query") from None
        return [Field(r[0], r[1]) for r in rows]

    def _revalidate(self, changed: Dataset) -> list[dict[str, Any]]:
        """Re-derive the columns of every view reading `changed`; report which still work."""
        report = []
        for dep in self.catalog.dependents(changed.path):
            try:
                fields, _, _ = self._validate_view(dep.sql or "", ENGINE, dep.context, dep.dialect)
                if list(fields) != list(dep.fields):
                    self.catalog.update_fields(dep, fields)
                else:
                    self.catalog.mark_broken(dep, None)
                report.append({"path": list(dep.path), "status": "OK"})
            except FleuveError as exc:
                self.catalog.mark_broken(dep, exc.message)
                report.append({"path": list(dep.path), "status": "BROKEN", "error": exc.message})
        return report

    def drop_view(self, path: Sequence[str], *, user: str) -> dict[str, Any]:
        """Drop a virtual dataset and its reflections; reports the views that break."""
        who = self.grants.principal(user)
        ds = self.catalog.resolve(path, ())
        if ds is None or not ds.virtual or not self.grants.allows(who, "SELECT", ds.path):
            raise not_found(path, what="view")
        self.grants.require(who, "ALL", ds.path, "dropping the view")
        for r in self.reflections.on(ds):
            self.reflections.drop(r)
        self.catalog.drop_dataset(ds)
        report = []
        for dep in self.catalog.dependents(ds.path):
            message = f"reads {paths.render(ds.path)}, which was dropped"
            self.catalog.mark_broken(dep, message)
            report.append({"path": list(dep.path), "status": "BROKEN", "error": message})
        return {"dataset": ds.as_json(), "dropped": True, "dependents": report}

    def set_staleness(
        self, path: Sequence[str], seconds: int | None, *, user: str, context: Sequence[str] = ()
    ) -> Dataset:
        """Let reflections answer for `path` while at most `seconds` old (None: only fresh ones)."""
        who = self.grants.principal(user)
        ds = self._readable(path, who, context)
        self.grants.require(who, "ALL", ds.path, "changing the staleness window")
        self.catalog.set_staleness(ds, seconds)
        return self.catalog.lookup(ds.path) or ds

    # -- sources and files -------------------------------------------------------------

    def add_source(self, name: str, kind: str, *, user: str, **config: Any) -> dict[str, Any]:
        """Attach an external database (postgres, mysql: `dsn=`) or files (`location=`)."""
        who = self.grants.principal(user)
        self.grants.require_system(who, system.MANAGE_SOURCES, "adding a source")
        src = self.catalog.add_source(name, kind, config, who.name)
        self._audit(who, "connection", "add", src.name, type=src.kind, config=src.redacted())
        return {"id": src.id, "name": src.name, "type": src.kind, "config": src.redacted()}

    def drop_source(self, name: str, *, user: str) -> None:
        """Forget a source and the datasets promoted from it."""
        who = self.grants.principal(user)
        self.grants.require_system(who, system.MANAGE_SOURCES, "dropping a source")
        self.catalog.drop_source(name)
        self._audit(who, "connection", "drop", name)

    def sources(self, *, user: str) -> list[dict[str, Any]]:
        """The sources, secrets masked (MANAGE SOURCES)."""
        who = self.grants.principal(user)
        self.grants.require_system(who, system.MANAGE_SOURCES, "reading the sources' settings")
        return [
            {"id": s.id, "name": s.name, "type": s.kind, "config": s.redacted()}
            for s in self.catalog.meta().sources.values()
        ]

    def promote(self, path: Sequence[str], *, user: str, format: str | None = None) -> Dataset:
        """Make a folder or file of a files source a dataset, in place (Hive partitions as columns)."""
        who = self.grants.principal(user)
        path = tuple(path)
        src, location = self.catalog.file_location(path)
        if not self.grants.allows(who, "ALL", (src.name,)):
            raise not_found(path, what="folder")
        with self.project.lake.session() as con:
            self.catalog.prepare_files(con, src)
        fmt = (format or self._detect_format(location)).lower()
        if fmt not in ("parquet", "csv", "json"):
            raise EngineError(f"unknown file format '{fmt}'", "use parquet, csv or json")
        relation = file_relation(location, fmt)
        try:
            fields = self._fields_of(Prepared(sql=f"SELECT * FROM {relation}"))
        except QueryFailed as exc:
            raise EngineError(
                f"cannot read {fmt} files at {paths.render(path)}: {exc.message}",
                "check the folder holds files of that format",
            ) from None
        return self.catalog.save_dataset(
            path,
            kind="FILES",
            fields=fields,
            by=who.name,
            options={"relation": relation, "format": fmt, "location": location},
        )

    def forget(self, path: Sequence[str], *, user: str) -> None:
        """Turn a promoted folder back into plain files."""
        who = self.grants.principal(user)
        ds = self.catalog.lookup(path)
        if ds is None or ds.origin != "files" or not self.grants.allows(who, "ALL", ds.path):
            raise not_found(path)
        for r in self.reflections.on(ds):
            self.reflections.drop(r)
        self.catalog.drop_dataset(ds)

    def _detect_format(self, location: str) -> str:
        for fmt in ("parquet", "csv", "json"):
            if location.lower().endswith(f".{fmt}"):
                return fmt
        with self.project.lake.session() as con:
            for fmt in ("parquet", "csv", "json", "jsonl"):
                found = con.execute(
                    f"SELECT count(*) FROM glob({quote_literal(location.rstrip('/') + f'/**/*.{fmt}')})"
                ).fetchone()
                if found and found[0]:
                    return "json" if fmt == "jsonl" else fmt
        raise EngineError(f"no parquet, csv or json files under {location}", "check the path")

    # -- reflections ---------------------------------------------------------------------

    def create_reflection(
        self, body: dict[str, Any], *, user: str, build: bool = True
    ) -> dict[str, Any]:
        """Create a reflection from the REST object (`datasetId`, `type`, `name`, fields...)."""
        who = self.grants.principal(user)
        dataset = self._dataset_by_id(str(body.get("datasetId", "")), who)
        spec = spec_from_rest(body)
        name = str(body.get("name") or f"{spec.kind.lower()}_{dataset.path[-1]}")
        r, _ = self._create_reflection(
            name, dataset.path, spec, who, (), enabled=bool(body.get("enabled", True)), build=build
        )
        return self._reflection_json(r)

    def reflection(self, reflection_id: str, *, user: str) -> dict[str, Any]:
        """One reflection in the REST shape, with its status."""
        who = self.grants.principal(user)
        return self._reflection_json(self._visible_reflection(reflection_id, who))

    def list_reflections(self, *, user: str, dataset_id: str | None = None) -> list[dict[str, Any]]:
        """Reflections on datasets `user` may read."""
        who = self.grants.principal(user)
        out = []
        for r in self.reflections.all():
            if not self.grants.allows(who, "SELECT", r.dataset_path):
                continue
            j = self._reflection_json(r)
            if dataset_id is None or j["datasetId"] == dataset_id:
                out.append(j)
        return out

    def update_reflection(
        self, reflection_id: str, body: dict[str, Any], *, user: str
    ) -> dict[str, Any]:
        """Change a reflection (REST PUT): enabled, name, fields; a changed definition rebuilds."""
        who = self.grants.principal(user)
        r = self._managed_reflection(reflection_id, who)
        changes: dict[str, Any] = {}
        if "enabled" in body:
            changes["enabled"] = bool(body["enabled"])
        if body.get("name") and body["name"] != r.name:
            changes["name"] = str(body["name"])
        keys = (
            "displayFields",
            "dimensionFields",
            "measureFields",
            "partitionFields",
            "sortFields",
            "type",
        )
        if any(k in body for k in keys):
            merged = {**r.as_json(None, None), **{k: body[k] for k in keys if k in body}}
            spec = spec_from_rest(merged)
            dataset = self.catalog.lookup(r.dataset_path)
            if dataset is None:
                raise ObjectNotFound(
                    "the reflection's dataset no longer exists", "drop the reflection"
                )
            validate(spec, dataset)
            if spec != r.spec:
                changes["spec"] = spec
        policy = body.get("refreshPolicy")
        if isinstance(policy, dict) and policy.get("type"):
            changes["refresh_policy"] = str(policy["type"]).upper()
            changes["refresh_seconds"] = policy.get("everySeconds")
        r = self.reflections.alter(r, **changes)
        self._audit(who, "reflection", "alter", r.name, id=r.id, changed=sorted(changes))
        if "spec" in changes and r.enabled:
            self.reflections.refresh(r, mode="FULL")
            r = self.reflections.get(r.id)
        return self._reflection_json(r)

    def delete_reflection(self, reflection_id: str, *, user: str) -> None:
        """Drop a reflection and its table."""
        who = self.grants.principal(user)
        self._drop_reflection(self._managed_reflection(reflection_id, who), who)

    def refresh_reflection(
        self, reflection_id: str, *, user: str, mode: str = "AUTO"
    ) -> RefreshResult:
        """Refresh now: AUTO (incremental when possible), FULL or INCREMENTAL-if-possible."""
        who = self.grants.principal(user)
        return self._refresh_reflection(
            self._managed_reflection(reflection_id, who), who, mode=mode.upper()
        )

    def refresh_due(self, stop: threading.Event | None = None) -> list[RefreshResult]:
        """Refresh every reflection whose policy says it is due (the pipeline and scheduler call this);
        once `stop` is set, the next ones are left for a later refresh."""
        out = []
        for r in self.reflections.due():
            if stop is not None and stop.is_set():
                break
            try:
                out.append(self.reflections.refresh(r))
            except FleuveError as exc:
                log.warning("reflection %s: %s", r.name, exc.message)
                out.append(
                    RefreshResult(r.name, "FAILED", r.rows, 0.0, r.built_snapshot, exc.message)
                )
        return out

    def _create_reflection(
        self,
        name: str,
        path: Sequence[str],
        spec: ReflectionSpec,
        who: Principal,
        ctx: Sequence[str],
        *,
        enabled: bool,
        build: bool,
    ) -> tuple[Reflection, RefreshResult | None]:
        dataset = self._readable(path, who, ctx)
        self.grants.require_reflections(who, dataset.path, "creating a reflection")
        r = self.reflections.create(name, dataset, spec, who.name, enabled=enabled)
        self._audit(
            who, "reflection", "create", r.name, id=r.id, dataset=paths.render(dataset.path)
        )
        result = None
        if build and enabled:
            result = self.reflections.refresh(r, mode="FULL")
            r = self.reflections.get(r.id)
        return r, result

    def _drop_reflection(self, r: Reflection, who: Principal) -> None:
        self.reflections.drop(r)
        self._audit(who, "reflection", "drop", r.name, id=r.id)

    def _refresh_reflection(
        self, r: Reflection, who: Principal, *, mode: str = "AUTO"
    ) -> RefreshResult:
        result = self.reflections.refresh(r, mode=mode)
        self._audit(
            who, "reflection", "refresh", r.name, id=r.id, mode=result.mode, rows=result.rows
        )
        return result

    def _dataset_by_id(self, dataset_id: str, who: Principal) -> Dataset:
        found = self.catalog.by_id(dataset_id)
        if not isinstance(found, Dataset) or not self.grants.allows(who, "SELECT", found.path):
            raise ObjectNotFound(
                f"dataset {dataset_id} not found, or you do not have access to it",
                "check datasetId",
            )
        return found

    def _visible_reflection(self, name_or_id: str, who: Principal) -> Reflection:
        r = self.reflections.get(name_or_id)
        if not self.grants.allows(who, "SELECT", r.dataset_path):
            raise ObjectNotFound(
                f"reflection {name_or_id} not found", "list reflections with SHOW REFLECTIONS"
            )
        return r

    def _managed_reflection(self, name_or_id: str, who: Principal) -> Reflection:
        r = self._visible_reflection(name_or_id, who)
        self.grants.require_reflections(who, r.dataset_path, "managing reflections")
        return r

    def _reflection_json(self, r: Reflection) -> dict[str, Any]:
        dataset = self.catalog.lookup(r.dataset_path)
        fresh = self.reflections.fresh(r) if r.table_name else None
        out = r.as_json(dataset.id if dataset else None, fresh)
        counts = self.reflections.counts(r.id)
        out["metrics"].update(zip(("considered", "matched", "chosen"), counts, strict=True))
        return out

    # -- grants -------------------------------------------------------------------------

    def grant(
        self,
        privilege: str,
        path: Sequence[str] | str,
        *,
        user: str,
        grantee: str,
        grantee_type: str = "ROLE",
        recursive: bool | None = None,
    ) -> Grant:
        """GRANT SELECT|ALL on a dataset (or everything under a container: `path` ending in `.*`)."""
        who = self.grants.principal(user)
        p, rec = _grant_target(path, recursive)
        made = self.grants.grant(who, privilege, p, grantee_type, grantee, recursive=rec)
        self._audit_grant(who, "grant", made.as_json())
        return made

    def revoke(
        self,
        privilege: str,
        path: Sequence[str] | str,
        *,
        user: str,
        grantee: str,
        grantee_type: str = "ROLE",
        recursive: bool | None = None,
    ) -> int:
        """REVOKE a privilege; returns how many grants were removed."""
        who = self.grants.principal(user)
        p, rec = _grant_target(path, recursive)
        removed = self.grants.revoke(who, privilege, p, grantee_type, grantee, recursive=rec)
        self._audit_grant(
            who,
            "revoke",
            Grant(grantee_type.upper(), grantee, privilege.upper(), p, rec).as_json(),
            removed=removed,
        )
        return removed

    def _audit_grant(
        self, who: Principal, action: str, grant: dict[str, Any], **detail: Any
    ) -> None:
        self._audit(who, "grant", action, grant["object"], **grant, **detail)

    def _audit(self, who: Principal, kind: str, action: str, target: str, **detail: Any) -> None:
        """Record a change `who` made (the context tells from which interface and statement)."""
        audit.record(self.project.db, kind, action, username=who.name, target=target, **detail)

    def list_grants(
        self,
        *,
        user: str,
        path: Sequence[str] | str | None = None,
        recursive: bool = False,
        grantee: str | None = None,
    ) -> list[Grant]:
        """Grants visible to `user`: all with MANAGE GRANTS, else their own and their roles'."""
        who = self.grants.principal(user)
        target = None
        if path is not None:
            p, rec = _grant_target(path, recursive or None)
            found = self.catalog.container(p) if rec else self.catalog.lookup(p)
            target = found.path if found is not None else p
        out = self.grants.find(target, grantee)
        if not self.grants.holds(who, system.MANAGE_GRANTS):
            out = [
                g
                for g in out
                if (g.grantee_kind == "USER" and g.grantee == who.name)
                or (g.grantee_kind == "ROLE" and g.grantee in who.roles)
            ]
        return out


def _grant_target(
    path: Sequence[str] | str, recursive: bool | None
) -> tuple[tuple[str, ...], bool]:
    if isinstance(path, str):
        text = path.strip()
        if text.upper() == "SYSTEM":
            return (), False  # a system privilege (GRANT SYNC ON SYSTEM ...)
        star = text.endswith(".*")
        parts = paths.parse(text[:-2] if star else text)
        return parts, bool(recursive) or star
    return tuple(path), bool(recursive)
