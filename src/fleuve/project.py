"""A Fleuve project on disk: its settings, its lake and its metadata database."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from fleuve.config import CONFIG_FILE, STATE_DIR, Settings, load_settings
from fleuve.lake import Lake
from fleuve.logs import local, to_lake
from fleuve.metadata import Database
from fleuve.private import private_dir, tighten_tree, write_private

TEMPLATE = Path(__file__).parent / "templates" / CONFIG_FILE
ADMIN_PASSWORD_FILE = "initial-admin-password"


@dataclass
class InitReport:
    """What `fleuve init` created (nothing, the second time)."""

    project_dir: Path
    created: list[Path] = field(default_factory=list)
    admin_password: str | None = None


class Project:
    """Settings plus lazily opened lake and metadata database."""

    def __init__(self, settings: Settings, overrides: dict[str, Any] | None = None) -> None:
        self.settings = settings
        # Password hashes, token digests and the lake catalog live here: the owner's only.
        private_dir(settings.state_dir)
        tighten_tree(settings.state_dir)
        # The --set overrides it was opened with, handed on to the processes it starts.
        self.overrides = dict(overrides or {})
        local.setup(settings.state_dir / "logs")
        self._lake_log: to_lake.LakeLogHandler | None = None

    @classmethod
    def open(
        cls, project_dir: Path | str | None = None, overrides: dict[str, Any] | None = None
    ) -> Project:
        """Load and validate the project's settings."""
        return cls(load_settings(project_dir, overrides), overrides)

    @cached_property
    def lake(self) -> Lake:
        """The project's lake (attached on first use)."""
        return Lake(self.settings, create=False)

    @cached_property
    def db(self) -> Database:
        """The project's metadata database."""
        return Database(self.settings)

    def check(self) -> None:
        """Fail with a clear message unless the metadata database is current."""
        self.db.check()

    def log_to_lake(self) -> None:
        """Also write this process's log records into the lake's `logs` layer (served and
        scheduled processes call it; `observe.logs.lake: false` turns it off)."""
        if self._lake_log is None:
            self._lake_log = to_lake.attach(lambda: self.lake, self.settings.observe.logs)

    def stop_logging_to_lake(self) -> None:
        """Write the log records still buffered for the lake, and send no more there."""
        to_lake.detach(self._lake_log)
        self._lake_log = None

    def close(self) -> None:
        """Release the lake and database connections."""
        # Buffered log records are written while the lake is still open.
        self.stop_logging_to_lake()
        if "lake" in self.__dict__:
            self.lake.close()
        if "db" in self.__dict__:
            self.db.dispose()


def init_project(
    project_dir: Path, name: str | None = None, overrides: dict[str, Any] | None = None
) -> InitReport:
    """Create (or complete) a project: fleuve.yml, folders, dbt project, lake, metadata, admin."""
    from fleuve.security.auth import ensure_admin
    from fleuve.transform import scaffold

    project_dir = project_dir.expanduser().resolve()
    report = InitReport(project_dir)
    project_dir.mkdir(parents=True, exist_ok=True)
    config = project_dir / CONFIG_FILE
    if not config.exists():
        text = TEMPLATE.read_text(encoding="utf-8").replace("{name}", name or project_dir.name)
        config.write_text(text, encoding="utf-8")
        report.created.append(config)
    settings = load_settings(project_dir, overrides)
    for folder in (settings.state_dir, settings.state_dir / "logs"):
        if not folder.exists():
            private_dir(folder)
            report.created.append(folder)
    if not settings.lake.on_s3:
        data = Path(settings.lake_data_path)
        if not data.exists():
            data.mkdir(parents=True)
            report.created.append(data)
    gitignore = settings.state_dir / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n", encoding="utf-8")
    report.created.extend(scaffold(settings))
    project = Project(settings)
    try:
        db = project.db
        db.upgrade()
        lake = Lake(settings, create=True)
        with lake:
            lake.bootstrap()
        password = ensure_admin(db, os.environ.get("FLEUVE_ADMIN_PASSWORD"))
        if password:
            report.admin_password = password
            write_private(settings.state_dir / ADMIN_PASSWORD_FILE, password + "\n")
    finally:
        project.close()
    return report


__all__ = ["ADMIN_PASSWORD_FILE", "STATE_DIR", "InitReport", "Project", "init_project"]
