"""Leases in the metadata database: one holder at a time, taken over once it expires.

A lease is a row keyed by what it guards (`schedule:<name>`, `connection:<name>`). It is
claimed by one atomic statement: an UPDATE that matches only a free or expired row, or, for a
key never seen, an INSERT that the primary key lets only one process make. On SQLite and on
PostgreSQL alike, exactly one of several processes racing for a key gets it. The claim is made
in the transaction that records the run it guards, so a run is started with one commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fleuve.metadata import Database
from fleuve.metadata.database import rows_changed
from fleuve.metadata.schedule import ScheduleLease


def claim_in(
    session: Session, keys: Iterable[str], owner: str, now: datetime, seconds: float
) -> bool:
    """Take every key in the caller's transaction, or none (False) when one is held."""
    expires = now + timedelta(seconds=seconds)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    taken_here: list[str] = []
    for key in sorted(set(keys)):  # one order for all processes: no two wait on each other
        taken = rows_changed(
            session,
            update(ScheduleLease)
            # Not re-entrant: a holder asking again (another run of its own) is refused.
            .where(
                ScheduleLease.key == key,
                or_(ScheduleLease.owner.is_(None), ScheduleLease.expires_at < now),
            )
            .values(owner=owner, acquired_at=now, expires_at=expires),
        )
        if taken:
            taken_here.append(key)
            continue
        # A key never seen: the primary key lets one process insert it; the others insert
        # nothing (and wait for that transaction on PostgreSQL).
        inserted = rows_changed(
            session,
            dialect.insert(ScheduleLease)
            .values(key=key, owner=owner, acquired_at=now, expires_at=expires)
            .on_conflict_do_nothing(),
        )
        if not inserted:
            # The keys taken above were free or expired: free is what they go back to.
            release_in(session, taken_here, owner)
            return False
        taken_here.append(key)
    return True


def claim_all(db: Database, keys: Iterable[str], owner: str, now: datetime, seconds: float) -> bool:
    """Take every key or none, in one transaction."""
    with db.session() as s:
        return claim_in(s, keys, owner, now, seconds)


def renew(db: Database, keys: Iterable[str], owner: str, now: datetime, seconds: float) -> bool:
    """Extend the leases `owner` holds on `keys`; False when one was lost to another process."""
    keys = list(set(keys))
    with db.session() as s:
        kept = rows_changed(
            s,
            update(ScheduleLease)
            .where(ScheduleLease.key.in_(keys), ScheduleLease.owner == owner)
            .values(expires_at=now + timedelta(seconds=seconds)),
        )
    return kept == len(keys)


def release(db: Database, keys: Iterable[str], owner: str) -> None:
    """Give back the leases `owner` holds on `keys`."""
    keys = list(keys)
    if not keys:
        return
    with db.session() as s:
        release_in(s, keys, owner)


def release_in(session: Session, keys: Iterable[str], owner: str) -> None:
    """Give back leases inside a caller's transaction (with the run's final state)."""
    session.execute(
        update(ScheduleLease)
        .where(ScheduleLease.key.in_(list(keys)), ScheduleLease.owner == owner)
        .values(owner=None, expires_at=None)
    )


def live(session: Session, key: str, owner: str, now: datetime) -> bool:
    """True while `owner` holds `key` and the lease has not expired."""
    row = session.get(ScheduleLease, key)
    return bool(row and row.owner == owner and row.expires_at and row.expires_at >= now)
