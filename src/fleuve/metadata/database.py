"""Sessions on the metadata database and its Alembic migrations."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, Executable, create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from fleuve.config import Settings, redact_dsn
from fleuve.errors import MetadataError
from fleuve.private import private_database

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The head revisions of the migrations above, so that a current database is recognized by one
# query, without loading Alembic and every migration script (a test keeps the two in step).
HEADS = frozenset({"0003_engine", "0004_transform", "0005_serve", "0006_ui", "0009_alerts"})


class Database:
    """The metadata database of one project."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.metadata_url
        if self.url.startswith("sqlite:///"):
            path = Path(self.url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created by Fleuve with mode 0600 before SQLite opens it (SQLite would make it 0644):
            # it holds password hashes and token digests.
            private_database(path)
            # A server's threads (HTTP, Flight, job and audit writers) share the pool: keep
            # enough connections open that a busy moment does not open and close new ones.
            self.engine: Engine = create_engine(
                self.url, connect_args={"timeout": 30}, pool_size=16, max_overflow=32
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(
                self.url, pool_pre_ping=True, connect_args={"connect_timeout": 5}
            )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Database({redact_dsn(self.url)!r})"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error."""
        with self._sessions() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def _alembic(self) -> Config:
        # Alembic loads only to migrate, or to explain a database that is not current.
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return cfg

    def revisions(self) -> tuple[set[str], set[str]]:
        """(current revisions of the database, head revisions of this Fleuve)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        heads = set(ScriptDirectory.from_config(self._alembic()).get_heads())
        try:
            with self.engine.connect() as conn:
                current = set(MigrationContext.configure(conn).get_current_heads())
        except OperationalError as exc:
            raise MetadataError(
                f"cannot open the metadata database {redact_dsn(self.url)}: {exc.orig}",
                "check metadata.url in fleuve.yml and that its server is running",
            ) from None
        return current, heads

    def upgrade(self) -> list[str]:
        """Apply every pending migration, keeping existing data; returns the new heads."""
        from alembic import command

        with self.engine.begin() as conn:
            cfg = self._alembic()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
        return sorted(self.revisions()[0])

    def check(self) -> None:
        """Raise a MetadataError naming the fix when the database is not at the latest revision."""
        try:
            with self.engine.connect() as conn:
                found = {
                    row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))
                }
        except SQLAlchemyError:
            found = set()  # no version table yet, or no database: Alembic says which below
        if found == HEADS:
            return
        current, heads = self.revisions()
        if current != heads:
            state = "empty" if not current else f"at {', '.join(sorted(current))}"
            raise MetadataError(
                f"the metadata database {redact_dsn(self.url)} is {state}; this Fleuve expects "
                f"{', '.join(sorted(heads))}",
                "run `fleuve db upgrade` (it keeps existing data)",
            )

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()


def rows_changed(session: Session, statement: Executable) -> int:
    """Run an INSERT, UPDATE or DELETE in `session`; how many rows it changed."""
    # Session.execute is typed for queries; a statement that writes gets a CursorResult.
    result = cast("CursorResult[Any]", session.execute(statement))
    return result.rowcount or 0


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
    """WAL lets readers proceed while a writer commits; the busy timeout waits out writers."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
