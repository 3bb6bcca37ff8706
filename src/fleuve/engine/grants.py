"""Grants: who may read (SELECT) or manage (ALL) which dataset, schema, source or space.

A grant names a dataset, or a container with `.*` (everything under it), and goes to a user
or a role. Users hold roles (the `users.roles` list); `admin` passes every check, and each
user owns their home `@name`. Checks run after name resolution, on the dataset each query
names; reading through a virtual dataset needs SELECT on that dataset only (Dremio's rule).
Privileges to operate the platform are granted ON SYSTEM (see `fleuve.engine.privileges`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select

from fleuve.engine import paths
from fleuve.engine import privileges as system
from fleuve.engine.catalog import RECHECK_SECONDS, Catalog
from fleuve.engine.errors import AccessDenied, EngineError, ObjectNotFound
from fleuve.metadata.database import rows_changed
from fleuve.metadata.engine import EngineGrant
from fleuve.metadata.models import User
from fleuve.security import auth

PRIVILEGES = ("SELECT", "ALL")


@dataclass(frozen=True)
class Principal:
    """A user and the roles they hold."""

    name: str
    roles: frozenset[str] = frozenset()

    @property
    def admin(self) -> bool:
        """True for administrators, who pass every check."""
        return "admin" in self.roles

    @property
    def home(self) -> str:
        """The name of the user's home space."""
        return f"@{self.name}"


# The engine itself, for work done on a user's behalf after their rights were checked.
ENGINE = Principal("fleuve", frozenset({"admin"}))


@dataclass(frozen=True)
class Grant:
    """One privilege on one object for one grantee."""

    grantee_kind: str
    grantee: str
    privilege: str
    path: tuple[str, ...]
    recursive: bool

    def as_json(self) -> dict:
        """The grant as a JSON object."""
        return {
            "granteeType": self.grantee_kind,
            "grantee": self.grantee,
            "privilege": self.privilege,
            # A grant with no object is a system privilege, granted ON SYSTEM.
            "object": paths.render(self.path) + (".*" if self.recursive else "")
            if self.path
            else "SYSTEM",
        }


class Grants:
    """Answers privilege questions and records grants."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.db = catalog.db
        self._principals: dict[str, tuple[float, Principal | None]] = {}

    def principal(self, username: str) -> Principal:
        """The user with their roles; a ObjectNotFound for unknown or disabled users."""
        now = time.monotonic()
        cached = self._principals.get(username)
        if cached is not None and now - cached[0] < RECHECK_SECONDS:
            found = cached[1]
        else:
            found = self._load_principal(username)
            self._principals[username] = (now, found)
        if found is None:
            raise ObjectNotFound(
                f"unknown or disabled user '{username}'", "log in as an existing, enabled user"
            )
        return found

    def _load_principal(self, username: str) -> Principal | None:
        with self.db.session() as s:
            row = s.execute(
                select(User.roles, User.disabled).where(User.username == username)
            ).first()
        if row is None or row.disabled:
            return None
        return Principal(username, frozenset(row.roles or ()))

    def _grants(self) -> list[EngineGrant]:
        return self.catalog.meta().grants

    def allows(self, who: Principal, privilege: str, path: Sequence[str]) -> bool:
        """True when `who` holds `privilege` (ALL includes SELECT) on `path`."""
        if who.admin or (path and path[0].lower() == who.home.lower()):
            return True
        keys = {paths.key(path[:n]): n == len(path) for n in range(1, len(path) + 1)}
        for g in self._grants():
            if not _holds(g, who):
                continue
            exact = keys.get(g.object_key)
            if exact is None or (not exact and not g.recursive):
                continue
            if g.privilege == "ALL" or privilege == "SELECT":
                return True
        return False

    def sees_container(self, who: Principal, path: Sequence[str]) -> bool:
        """True when `who` may list the container: a grant on or under it, or above it."""
        if self.allows(who, "SELECT", path):
            return True
        prefix = paths.key(path)[:-1]
        return any(
            _holds(g, who)
            and (g.object_key == paths.key(path) or g.object_key.startswith(prefix + ","))
            for g in self._grants()
        )

    def holds(self, who: Principal, privilege: str) -> bool:
        """True when `who` holds the system privilege (through a role or a grant ON SYSTEM)."""
        return privilege in system.effective(who.name, who.roles, self._grants())

    def require_system(self, who: Principal, privilege: str, doing: str) -> None:
        """Raise AccessDenied, naming the privilege and how to get it, unless `who` holds it."""
        if not self.holds(who, privilege):
            raise system.denied(who.name, privilege, doing)

    def require_reflections(self, who: Principal, path: Sequence[str], doing: str) -> None:
        """Managing reflections needs ALTER REFLECTION ON SYSTEM, or ALL on the dataset."""
        if self.allows(who, "ALL", path):
            return
        readable = self.allows(who, "SELECT", path)
        if readable and self.holds(who, system.ALTER_REFLECTION):
            return
        if not readable and not self.sees_container(who, path):
            raise not_found(path)
        raise system.denied(who.name, system.ALTER_REFLECTION, f"{doing} on {paths.render(path)}")

    def require(self, who: Principal, privilege: str, path: Sequence[str], doing: str) -> None:
        """Raise unless `who` may do `doing` on `path`; hidden objects read as not found."""
        if self.allows(who, privilege, path):
            return
        if not self.allows(who, "SELECT", path) and not self.sees_container(who, path):
            raise not_found(path)
        raise AccessDenied(
            f"{doing} needs {privilege} on {paths.render(path)}, which user '{who.name}' lacks",
            "ask an administrator to GRANT it",
        )

    def find(self, path: Sequence[str] | None = None, grantee: str | None = None) -> list[Grant]:
        """Grants, optionally on one object or to one grantee."""
        out = []
        for g in self._grants():
            if path is not None and g.object_key != paths.key(path):
                continue
            if grantee is not None and g.grantee.lower() != grantee.lower():
                continue
            name = system.privilege_of(g.object_key)
            out.append(
                Grant(g.grantee_kind, g.grantee, name, (), False)
                if name is not None
                else Grant(
                    g.grantee_kind, g.grantee, g.privilege, tuple(g.object_path), g.recursive
                )
            )
        return sorted(out, key=lambda g: (g.path, g.grantee_kind, g.grantee, g.privilege))

    def grant(
        self,
        by: Principal,
        privilege: str,
        path: Sequence[str],
        grantee_kind: str,
        grantee: str,
        *,
        recursive: bool,
    ) -> Grant:
        """Give `privilege` on `path` (and under it when `recursive`) to a user or role.

        An empty `path` is SYSTEM: the privilege is one of `fleuve.engine.privileges`'."""
        privilege, grantee_kind = privilege.upper(), grantee_kind.upper()
        if not path:
            return self._grant_system(by, privilege, grantee_kind, grantee)
        _check_object_privilege(privilege)
        path = self._check_object(by, path, recursive)
        if grantee_kind == "USER":
            self._check_user(grantee)
        with self.db.session() as s:
            exists = s.scalar(
                select(EngineGrant).where(
                    EngineGrant.grantee_kind == grantee_kind,
                    EngineGrant.grantee == grantee,
                    EngineGrant.privilege == privilege,
                    EngineGrant.object_key == paths.key(path),
                    EngineGrant.recursive == recursive,
                )
            )
            if exists is None:
                s.add(
                    EngineGrant(
                        grantee_kind=grantee_kind,
                        grantee=grantee,
                        privilege=privilege,
                        object_key=paths.key(path),
                        object_path=list(path),
                        recursive=recursive,
                        granted_by=by.name,
                    )
                )
                self.catalog.bump(s)
        return Grant(grantee_kind, grantee, privilege, tuple(path), recursive)

    def revoke(
        self,
        by: Principal,
        privilege: str,
        path: Sequence[str],
        grantee_kind: str,
        grantee: str,
        *,
        recursive: bool,
    ) -> int:
        """Take a privilege back; REVOKE ALL removes SELECT too. Returns how many grants went."""
        privilege, grantee_kind = privilege.upper(), grantee_kind.upper()
        if not path:
            return self._revoke_system(by, privilege, grantee_kind, grantee)
        _check_object_privilege(privilege)
        path = self._check_object(by, path, recursive)
        removed = ("SELECT", "ALL") if privilege == "ALL" else ("SELECT",)
        with self.db.session() as s:
            count = rows_changed(
                s,
                delete(EngineGrant).where(
                    EngineGrant.grantee_kind == grantee_kind,
                    EngineGrant.grantee == grantee,
                    EngineGrant.privilege.in_(removed),
                    EngineGrant.object_key == paths.key(path),
                    EngineGrant.recursive == recursive,
                ),
            )
            if count:
                self.catalog.bump(s)
        return count

    def set_role(self, by: Principal, role: str, username: str, *, add: bool) -> None:
        """Give a user a role, or take it away (MANAGE USERS)."""
        self.require_system(by, system.MANAGE_USERS, "giving or taking roles")
        with self.db.session() as s:
            user = s.scalar(select(User).where(User.username == username))
            if user is None:
                raise ObjectNotFound(f"unknown user '{username}'", "create the user first")
            roles = [r for r in (user.roles or []) if r != role]
        # Through the security layer: it audits the change and ends cached logins' old roles.
        auth.set_roles(self.db, username, [*roles, role] if add else roles, actor=by.name)
        self._principals.pop(username, None)

    def _check_user(self, username: str) -> None:
        with self.db.session() as s:
            if s.scalar(select(User.id).where(User.username == username)) is None:
                raise ObjectNotFound(f"unknown user '{username}'", "create the user first")

    def _check_object(self, by: Principal, path: Sequence[str], recursive: bool) -> tuple[str, ...]:
        """The object's canonical path; only admins and holders of ALL on it may grant."""
        if recursive:
            found = self.catalog.container(path)
            if found is None:
                raise not_found(path, what="container")
            real = found.path
        else:
            dataset = self.catalog.lookup(path)
            if dataset is None:
                raise not_found(path)
            real = dataset.path
        if not self.allows(by, "ALL", real) and not self.holds(by, system.MANAGE_GRANTS):
            if self.allows(by, "SELECT", real) or self.sees_container(by, real):
                raise AccessDenied(
                    f"granting on {paths.render(real)} needs ALL on it or the MANAGE GRANTS "
                    "privilege; an administrator can grant it: "
                    f"GRANT MANAGE GRANTS ON SYSTEM TO USER {by.name}",
                    "or GRANT ALL on the object",
                )
            raise not_found(path, what="container" if recursive else "dataset")
        return tuple(real)

    def _grant_system(self, by: Principal, privilege: str, kind: str, grantee: str) -> Grant:
        """GRANT a system privilege, or ALL of them, ON SYSTEM."""
        names = self._system_names(by, privilege)
        if kind == "USER":
            self._check_user(grantee)
        with self.db.session() as s:
            for name in names:
                key = system.object_key(name)
                exists = s.scalar(
                    select(EngineGrant.id).where(
                        EngineGrant.grantee_kind == kind,
                        EngineGrant.grantee == grantee,
                        EngineGrant.privilege == system.STORED_PRIVILEGE,
                        EngineGrant.object_key == key,
                    )
                )
                if exists is None:
                    s.add(
                        EngineGrant(
                            grantee_kind=kind,
                            grantee=grantee,
                            privilege=system.STORED_PRIVILEGE,
                            object_key=key,
                            object_path=[],
                            recursive=False,
                            granted_by=by.name,
                        )
                    )
            self.catalog.bump(s)
        return Grant(kind, grantee, "ALL" if len(names) > 1 else names[0], (), False)

    def _revoke_system(self, by: Principal, privilege: str, kind: str, grantee: str) -> int:
        names = self._system_names(by, privilege)
        with self.db.session() as s:
            count = rows_changed(
                s,
                delete(EngineGrant).where(
                    EngineGrant.grantee_kind == kind,
                    EngineGrant.grantee == grantee,
                    EngineGrant.privilege == system.STORED_PRIVILEGE,
                    EngineGrant.object_key.in_([system.object_key(n) for n in names]),
                ),
            )
            if count:
                self.catalog.bump(s)
        return count

    def _system_names(self, by: Principal, privilege: str) -> list[str]:
        """The system privileges `privilege` names (ALL: every one); only MANAGE GRANTS may."""
        self.require_system(by, system.MANAGE_GRANTS, "granting privileges on SYSTEM")
        if privilege == "ALL":
            return list(system.SYSTEM_PRIVILEGES)
        if not system.known(privilege):
            raise EngineError(
                f"unknown system privilege '{privilege}'",
                "grant one of: " + ", ".join(system.SYSTEM_PRIVILEGES) + " (or ALL) ON SYSTEM",
            )
        return [system.normalize(privilege)]


def _check_object_privilege(privilege: str) -> None:
    if privilege not in PRIVILEGES:
        raise EngineError(
            f"unknown privilege '{privilege}' on a dataset or container",
            "grant SELECT or ALL on objects; grant "
            + ", ".join(system.SYSTEM_PRIVILEGES)
            + " ON SYSTEM",
        )


def _holds(g: EngineGrant, who: Principal) -> bool:
    if g.grantee_kind == "USER":
        return g.grantee == who.name
    return g.grantee in who.roles


def not_found(path: Sequence[str], what: str = "dataset") -> ObjectNotFound:
    """The one message for objects that do not exist and objects the caller may not see."""
    return ObjectNotFound(
        f"{what} {paths.render(path)} not found, or you do not have access to it",
        'list what you can read with SELECT * FROM INFORMATION_SCHEMA."TABLES", '
        "or ask an administrator for access",
    )
