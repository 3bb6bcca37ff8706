"""The commands a user runs: fleuve ingest source check|discover, ingest sync, ingest jobs
(and their older spellings fleuve source, fleuve sync, fleuve jobs)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from fleuve.cli import cli
from tests.ingest.conftest import Workspace, connection


def _run(folder: Path, *args: str) -> tuple[int, str]:
    runner = CliRunner(env={"COLUMNS": "200"})
    result = runner.invoke(cli, ["-p", str(folder), *args], catch_exceptions=False)
    # The console wraps long lines; compare words.
    return result.exit_code, " ".join(result.output.split())


def test_source_sync_and_jobs_commands(workspace: Workspace, tmp_path: Path) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "a.csv").write_text("id,ville\n1,Orléans\n2,東京\n", encoding="utf-8")
    stream = {
        "name": "towns",
        "path": "*.csv",
        "sync_mode": "incremental",
        "destination_sync_mode": "append",
    }
    workspace.configure([connection({"type": "files", "path": str(drops)}, [stream])])
    folder = workspace.folder

    code, out = _run(folder, "source", "check", "src")
    assert code == 0 and "towns: 1 files" in out

    code, out = _run(folder, "source", "discover", "src", "--json")
    catalog = json.loads(out.replace("\n", " "))
    assert code == 0 and catalog["streams"][0]["columns"][1] == {"name": "ville", "type": "VARCHAR"}

    code, out = _run(folder, "sync", "src")
    assert code == 0 and "succeeded: 2 records committed" in out

    (drops / "b.csv").write_text("id,ville\n3,الرباط\n", encoding="utf-8")
    code, out = _run(folder, "sync", "src", "--stream", "towns")
    assert code == 0 and "succeeded: 1 records committed" in out

    code, out = _run(folder, "sync", "src", "--full-refresh")
    assert code == 0 and "succeeded: 3 records committed" in out
    assert workspace.rows("SELECT count(*) FROM bronze.towns") == [(3,)]

    code, out = _run(folder, "jobs", "--json")
    jobs = json.loads(out)
    assert code == 0 and [j["job"]["status"] for j in jobs] == ["succeeded"] * 3
    code, out = _run(folder, "jobs")
    assert code == 0 and "src" in out and "succeeded" in out

    code, out = _run(folder, "sync", "src", "--stream", "nope")
    assert code == 1 and "no stream named 'nope'" in out and "towns" in out


def test_sync_and_jobs_fit_an_80_column_terminal_with_failures_below(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "a.csv").write_text("id\n" + "".join(f"{i}\n" for i in range(12_345)))
    workspace.configure(
        [
            {
                **connection({"type": "files", "path": str(drops)}, [{"name": "ids", "path": "*"}]),
                "name": "warehouse_drops",
            },
            {
                **connection(
                    {"type": "files", "path": str(tmp_path / "gone")},
                    [{"name": "g", "path": "*.csv"}],
                    max_retries=0,
                ),
                "name": "gone",
            },
        ]
    )
    runner = CliRunner(env={"COLUMNS": "80"})

    def run(*args: str) -> list[str]:
        result = runner.invoke(cli, ["-p", str(workspace.folder), *args], catch_exceptions=False)
        return result.output.splitlines()

    lines = run("sync", "warehouse_drops")
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert any(line.split()[:3] == ["ids", "full", "overwrite"] for line in lines if line.strip())
    assert not any("…" in line for line in lines)
    lines = run("jobs")
    assert max(len(line.rstrip()) for line in lines) <= 80
    # Whole cells: no column cut short to fit.
    assert not any("…" in line for line in lines)
    assert any(
        " warehouse_drops " in line and "succeeded" in line and "12,345" in line for line in lines
    )

    run("sync", "gone")
    lines = run("jobs")
    assert max(len(line.rstrip()) for line in lines) <= 80
    assert not any("…" in line for line in lines)
    assert any(" gone " in line and "failed" in line for line in lines)
    failure = " ".join(" ".join(lines).split("job 2 failed:", 1)[1].split())
    assert "does not exist" in failure and "source.path" in failure


def test_failed_check_names_the_fix(workspace: Workspace, tmp_path: Path) -> None:
    workspace.configure([connection({"type": "files", "path": str(tmp_path / "missing")}, [])])
    code, out = _run(workspace.folder, "source", "check", "src")
    assert code == 1 and "does not exist" in out and "Fix:" in out


def test_ingest_group_and_the_older_spellings_run_the_same_commands(
    workspace: Workspace, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "a.csv").write_text("id,ville\n1,Lyon\n", encoding="utf-8")
    workspace.configure(
        [connection({"type": "files", "path": str(drops)}, [{"name": "t", "path": "*.csv"}])]
    )
    folder = workspace.folder

    code, out = _run(folder, "ingest", "sync", "src")
    assert code == 0 and "succeeded: 1 records committed" in out
    code, out = _run(folder, "sync", "src", "--full-refresh")
    assert code == 0 and "succeeded: 1 records committed" in out
    for args in (("jobs", "--json"), ("source", "check", "src"), ("source", "discover", "src")):
        assert _run(folder, "ingest", *args) == _run(folder, *args), args
    jobs = json.loads(_run(folder, "ingest", "jobs", "--json")[1])
    assert [j["job"]["status"] for j in jobs] == ["succeeded", "succeeded"]

    # The older spellings are not listed, but named in the help with what they stand for.
    top = CliRunner().invoke(cli, ["--help"]).output
    listed = {line.split()[0] for line in top.split("Commands:")[1].splitlines() if line.strip()}
    assert "ingest" in listed and not {"sync", "jobs", "source"} & listed
    assert "`fleuve sync`, `fleuve jobs` and `fleuve source` are short for" in " ".join(top.split())
    usage = CliRunner().invoke(cli, ["sync"])
    assert usage.exit_code == 2 and " sync [OPTIONS] CONNECTION" in usage.output
