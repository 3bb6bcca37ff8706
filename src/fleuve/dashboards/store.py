"""Saved charts and dashboards in the metadata database, and the project's YAML dashboards."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError
from sqlalchemy import select

from fleuve.dashboards.spec import ChartSpec, DashboardSpec
from fleuve.errors import FleuveError, NotFound
from fleuve.metadata import Database
from fleuve.metadata.ui import SavedChart, SavedDashboard

log = logging.getLogger("fleuve.dashboards")
FOLDER = "dashboards"


class DashboardNotFound(NotFound):
    """No chart or dashboard by that name."""


@dataclass
class LoadReport:
    """What loading the project's dashboard files did."""

    loaded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'top level'}: {e['msg']}" for e in exc.errors()
    )


def read_dashboard_file(path: Path) -> DashboardSpec:
    """Parse and validate one YAML dashboard; a FleuveError naming the file and the problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = DashboardSpec.model_validate(data)
    except yaml.YAMLError as exc:
        raise FleuveError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise FleuveError(f"{path}: {_problems(exc)}", "see docs/ui.md for the format") from None
    old = [c.get("name") for c in data.get("charts") or [] if "metrics" in c]
    if old:
        log.warning("%s: charts %s say 'metrics:', the old name of 'measures:'", path, old)
    return spec


def load_dashboards(db: Database, project_dir: Path) -> LoadReport:
    """Upsert the dashboards declared in `project_dir/dashboards/*.yml`; drop vanished ones."""
    report = LoadReport()
    folder = project_dir / FOLDER
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]) if folder.is_dir() else []
    seen: set[str] = set()
    for path in files:
        try:
            spec = read_dashboard_file(path)
        except FleuveError as exc:
            report.errors.append(exc.message)
            log.warning("dashboard file skipped: %s", exc.message)
            continue
        with db.session() as s:
            row = s.scalar(select(SavedDashboard).where(SavedDashboard.slug == spec.slug))
            if row is not None and row.origin != "file":
                report.errors.append(
                    f"{path}: a dashboard '{spec.slug}' made in the UI already exists"
                )
                continue
            if row is None:
                row = SavedDashboard(slug=spec.slug, origin="file")
                s.add(row)
            row.title, row.spec, row.source_file = spec.title, spec.model_dump(), str(path)
        seen.add(spec.slug)
        report.loaded.append(spec.slug)
    with db.session() as s:
        for row in s.scalars(select(SavedDashboard).where(SavedDashboard.origin == "file")):
            if row.slug not in seen:
                report.removed.append(row.slug)
                s.delete(row)
    return report


def list_dashboards(db: Database) -> list[SavedDashboard]:
    """Every dashboard, by title."""
    with db.session() as s:
        return list(s.scalars(select(SavedDashboard).order_by(SavedDashboard.title)))


def dashboard_exists(db: Database, slug: str) -> bool:
    """True when a dashboard has this slug."""
    with db.session() as s:
        return s.scalar(select(SavedDashboard.id).where(SavedDashboard.slug == slug)) is not None


def get_dashboard(db: Database, slug: str) -> tuple[SavedDashboard, DashboardSpec]:
    """The dashboard row and its validated spec."""
    with db.session() as s:
        row = s.scalar(select(SavedDashboard).where(SavedDashboard.slug == slug))
    if row is None:
        raise DashboardNotFound(f"no dashboard '{slug}'", "list dashboards at /dashboards")
    return row, DashboardSpec.model_validate(row.spec)


def save_dashboard(db: Database, spec: DashboardSpec, owner: str) -> SavedDashboard:
    """Create or replace a dashboard made in the UI (dashboards from files stay read-only)."""
    with db.session() as s:
        row = s.scalar(select(SavedDashboard).where(SavedDashboard.slug == spec.slug))
        if row is not None and row.origin == "file":
            raise FleuveError(
                f"dashboard '{spec.slug}' comes from {row.source_file}",
                "edit that file; it is reloaded when Fleuve starts",
            )
        if row is None:
            row = SavedDashboard(slug=spec.slug, origin="ui", owner=owner)
            s.add(row)
        row.title, row.spec = spec.title, spec.model_dump()
    return row


def delete_dashboard(db: Database, slug: str) -> None:
    """Delete a dashboard made in the UI."""
    row, _ = get_dashboard(db, slug)
    if row.origin == "file":
        raise FleuveError(
            f"dashboard '{slug}' comes from {row.source_file}", "delete or rename that file"
        )
    with db.session() as s:
        s.delete(s.get(SavedDashboard, row.id))


def list_charts(db: Database) -> list[SavedChart]:
    """Every saved chart, by title."""
    with db.session() as s:
        return list(s.scalars(select(SavedChart).order_by(SavedChart.title)))


def get_chart(db: Database, slug: str) -> ChartSpec:
    """A saved chart's spec."""
    with db.session() as s:
        row = s.scalar(select(SavedChart).where(SavedChart.slug == slug))
    if row is None:
        raise DashboardNotFound(f"no chart '{slug}'", "list charts at /charts")
    return ChartSpec.model_validate(row.spec)


def save_chart(db: Database, spec: ChartSpec, owner: str) -> SavedChart:
    """Create or replace a saved chart (its name is its slug)."""
    with db.session() as s:
        row = s.scalar(select(SavedChart).where(SavedChart.slug == spec.name))
        if row is None:
            row = SavedChart(slug=spec.name, owner=owner)
            s.add(row)
        row.title, row.spec = spec.title, spec.model_dump()
    return row


def delete_chart(db: Database, slug: str) -> None:
    """Delete a saved chart (dashboards keep their own copy)."""
    with db.session() as s:
        row = s.scalar(select(SavedChart).where(SavedChart.slug == slug))
        if row is None:
            raise DashboardNotFound(f"no chart '{slug}'")
        s.delete(row)
