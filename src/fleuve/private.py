"""Files only their owner may read: the project's `.fleuve/` folder and the secrets in it.

The metadata database holds password hashes and token digests, the lake catalog holds the
lake's layout and settings; both, the initial admin password and the change stamps are created
with mode 0600 from the start (never written first and tightened after), inside a folder
created with mode 0700. A project made by an older Fleuve is tightened when it is opened.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
# SQLite's companions of a database file: they hold the same rows.
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create `path` and its missing parents (mode 0700); an existing one is tightened."""
    if not path.parent.exists():
        private_dir(path.parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        _tighten(path)
    return path


def private_file(path: Path) -> Path:
    """Create `path` empty with mode 0600 unless it exists; an existing one is tightened."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    except FileExistsError:
        _tighten(path)
    return path


def private_database(path: Path) -> Path:
    """A SQLite database file (and its companions) readable by its owner only."""
    private_file(path)
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            _tighten(companion)
    return path


def write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` at once (a reader sees the old or the new), mode 0600."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def tighten_tree(root: Path) -> None:
    """Take group and other access away from `root` and everything under it."""
    if not root.is_dir():
        return
    _tighten(root)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            _tighten(Path(folder) / name)


def _tighten(path: Path) -> None:
    """Remove group and other permissions (only when some are set: no write otherwise)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:  # removed meanwhile by another process
        return
    if stat.S_ISLNK(mode) or not mode & 0o077:
        return
    # Gone meanwhile, or another user's file: nothing this process may change.
    with contextlib.suppress(FileNotFoundError, PermissionError):
        os.chmod(path, stat.S_IMODE(mode) & ~0o077)
