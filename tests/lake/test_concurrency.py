"""Several processes committing into one lake on a SQLite catalog: nothing is lost."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleuve.project import Project, init_project

WRITER = """
import sys
from fleuve.project import Project
project = Project.open(sys.argv[1])
worker = int(sys.argv[2])
for i in range(50):
    project.lake.commit(
        lambda c: c.execute("INSERT INTO bronze.commits VALUES (?, ?)", [worker, i]),
        what=f"writer {worker} commit {i}")
project.close()
"""

READER = """
import json, sys, time
from fleuve.project import Project
project = Project.open(sys.argv[1])
seen = []
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    con = project.lake.connect()
    con.execute("BEGIN")  # snapshot and rows from the same consistent view
    snap = con.execute("FROM lake.current_snapshot()").fetchall()[0][0]
    rows = con.execute("SELECT count(*) FROM bronze.commits").fetchall()[0][0]
    con.execute("COMMIT")
    con.close()
    if not seen or seen[-1] != [snap, rows]:
        seen.append([snap, rows])
    if rows >= 100:
        break
    time.sleep(0.01)
print(json.dumps(seen))
project.close()
"""


@pytest.mark.slow
def test_two_writers_fifty_commits_each_and_a_reader(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    init_project(folder, "concurrency")
    project = Project.open(folder)
    project.lake.commit(
        lambda c: c.execute("CREATE TABLE bronze.commits (worker INTEGER, i INTEGER)")
    )
    start = project.lake.current_snapshot()
    project.close()

    (tmp_path / "writer.py").write_text(WRITER)
    (tmp_path / "reader.py").write_text(READER)
    reader = subprocess.Popen(
        [sys.executable, str(tmp_path / "reader.py"), str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, str(tmp_path / "writer.py"), str(folder), str(w)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in (1, 2)
    ]
    for w in writers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    out, _ = reader.communicate(timeout=300)
    seen = json.loads(out)

    project = Project.open(folder)
    try:
        rows = project.lake.query(
            "SELECT worker, i FROM bronze.commits ORDER BY worker, i"
        ).to_pylist()
        assert rows == [{"worker": w, "i": i} for w in (1, 2) for i in range(50)]
        snaps = [s.snapshot_id for s in project.lake.snapshots() if s.snapshot_id > start]
        assert len(snaps) == 100  # one snapshot per commit, none lost or merged
        # Every snapshot holds exactly one more row than the one before it.
        con = project.lake.connect()
        counts = [
            con.execute(f"SELECT count(*) FROM bronze.commits AT (VERSION => {s})").fetchall()[0][0]
            for s in snaps
        ]
        assert counts == list(range(1, 101))
        # The reader, in its own process, watched snapshots and rows only move forward, to the end.
        assert seen[-1][1] == 100 and len(seen) > 2
        assert all(a[0] < b[0] and a[1] < b[1] for a, b in itertools.pairwise(seen))
    finally:
        project.close()
