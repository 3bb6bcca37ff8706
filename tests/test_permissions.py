"""The project's `.fleuve/` folder and the secrets in it are the owner's only: 0700 and 0600,
created that way, and tightened when an older project is opened."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleuve.engine import Engine
from fleuve.private import SQLITE_COMPANIONS
from fleuve.project import ADMIN_PASSWORD_FILE, Project, init_project
from fleuve.security import auth


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask of most shells (files 0644 unless Fleuve says otherwise)."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_to_others(root: Path) -> list[str]:
    """Paths under `root` (itself included) that group or others may use."""
    found = [root, *root.rglob("*")]
    return [f"{oct(_mode(p))} {p}" for p in found if _mode(p) & 0o077]


def _secrets(state: Path) -> list[Path]:
    return [state / "metadata.sqlite", state / "lake.sqlite", state / ADMIN_PASSWORD_FILE]


def test_a_new_project_is_private_from_the_start(
    tmp_path: Path, usual_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    tightened: list[str] = []
    real_chmod = os.chmod

    def chmod(path: object, mode: int, *args: object, **kwargs: object) -> None:
        tightened.append(str(path))
        real_chmod(path, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "chmod", chmod)
    monkeypatch.delenv("FLEUVE_ADMIN_PASSWORD", raising=False)
    init_project(tmp_path / "p", "perms")
    state = tmp_path / "p" / ".fleuve"
    assert _mode(state) == 0o700
    for secret in _secrets(state):
        assert _mode(secret) == 0o600, secret
        # Created with its mode, not loosened first and tightened after.
        assert str(secret) not in tightened
    assert _open_to_others(state) == []


def test_secrets_written_later_stay_private(tmp_path: Path, usual_umask: None) -> None:
    init_project(tmp_path / "p", "perms")
    project = Project.open(tmp_path / "p")
    state = project.settings.state_dir
    try:
        auth.create_user(project.db, "carol", "carol-pass-123")
        auth.set_password(project.db, "carol", "carol-pass-456")  # writes the change stamp
        stamp = state / "metadata.sqlite.auth-changed"
        assert _mode(stamp) == 0o600
        # While the database is open, SQLite's write-ahead log holds its rows too.
        companions = [
            state / f"metadata.sqlite{s}"
            for s in SQLITE_COMPANIONS
            if (state / f"metadata.sqlite{s}").exists()
        ]
        assert companions and all(_mode(c) == 0o600 for c in companions)
        engine = Engine(project)
        try:
            job_id = engine.submit("SELECT 42 AS answer", user="admin")
            deadline = time.monotonic() + 30
            while not engine.job(job_id).final and time.monotonic() < deadline:
                time.sleep(0.05)
            kept = Path(engine.job(job_id).result_path or "")
            assert kept.is_file() and _mode(kept) == 0o600
        finally:
            engine.close()
        assert _open_to_others(state) == []
    finally:
        project.close()


def test_an_older_project_is_tightened_when_opened(tmp_path: Path, usual_umask: None) -> None:
    init_project(tmp_path / "p", "perms")
    state = tmp_path / "p" / ".fleuve"
    # As an older Fleuve left it: world-readable.
    for path in [state, *state.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert _open_to_others(state)
    Project.open(tmp_path / "p").close()
    assert _mode(state) == 0o700
    assert all(_mode(s) == 0o600 for s in _secrets(state))
    assert _open_to_others(state) == []
