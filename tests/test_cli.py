"""The `fleuve` command: help everywhere, an idempotent init, clear errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fleuve.cli import cli


def _commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    """Every command under `group` as (path, command), as `--help` lists them."""
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        out.append(((*prefix, name), cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, (*prefix, name)))
    return out


def test_every_subcommand_has_help() -> None:
    runner = CliRunner()
    commands = _commands(cli)
    paths = {path for path, _ in commands}
    assert {("init",), ("demo",), ("run",), ("serve",), ("db", "upgrade")} <= paths
    assert {("ingest", "sync"), ("ingest", "jobs"), ("ingest", "source", "check")} <= paths
    for path, cmd in commands:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert cmd.help and cmd.help.strip(), f"'fleuve {' '.join(path)}' has no description"


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "logs" not in p.parts
    }


def test_init_twice_changes_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "shop"
    first = runner.invoke(cli, ["init", str(folder)])
    assert first.exit_code == 0, first.output
    assert "Admin user: admin" in first.output and "fleuve.yml" in first.output
    assert (folder / "transform" / "dbt_project.yml").exists() and (folder / "lake").is_dir()
    before = _tree(folder)
    second = runner.invoke(cli, ["init", str(folder)])
    assert second.exit_code == 0 and "nothing changed" in second.output
    assert "password" not in second.output
    assert _tree(folder) == before


def test_init_honours_the_project_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "elsewhere"
    result = CliRunner().invoke(cli, ["-p", str(folder), "init"])
    assert result.exit_code == 0, result.output
    assert (folder / "fleuve.yml").exists() and not (tmp_path / "fleuve.yml").exists()
    both = CliRunner().invoke(cli, ["-p", str(folder), "init", str(tmp_path / "other")])
    assert both.exit_code == 1 and "two folders given" in both.output
    assert not (tmp_path / "other").exists()


def test_commands_outside_a_project_explain_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "lake", "tables"])
    assert result.exit_code == 1
    assert "no Fleuve project" in result.output and "fleuve init" in result.output
    assert "Traceback" not in result.output


def test_invalid_configuration_is_reported_not_raised(tmp_path: Path) -> None:
    (tmp_path / "fleuve.yml").write_text("server:\n  http_port: lots\n")
    result = CliRunner().invoke(cli, ["--project", str(tmp_path), "config", "show"])
    assert result.exit_code == 1
    assert (
        "server.http_port" in result.output
        and "'lots'" in result.output
        and "Fix:" in result.output
    )


def test_flags_override_settings(tmp_path: Path) -> None:
    CliRunner().invoke(cli, ["init", str(tmp_path)])
    result = CliRunner().invoke(
        cli, ["--project", str(tmp_path), "--set", "server.http_port=9999", "config", "show"]
    )
    assert result.exit_code == 0 and '"http_port": 9999' in result.output


def test_sync_jobs_and_query_jobs_are_two_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    where = ["-p", str(tmp_path)]
    assert runner.invoke(cli, [*where, "init"]).exit_code == 0
    added = runner.invoke(
        cli, [*where, "users", "add", "bea", "--password-stdin"], input="bea-pass-1234\n"
    )
    assert added.exit_code == 0, added.output
    for user, sql in (("admin", "SELECT 42 AS answer"), ("bea", "SELECT 'b' AS mine")):
        done = runner.invoke(cli, [*where, "sql", sql, "--user", user])
        assert done.exit_code == 0, done.output

    listed = runner.invoke(cli, [*where, "queries", "--json"])
    assert listed.exit_code == 0, listed.output
    jobs = json.loads(listed.output)
    assert [(j["user"], j["jobState"]) for j in jobs] == [
        ("bea", "COMPLETED"),
        ("admin", "COMPLETED"),
    ]
    own = json.loads(runner.invoke(cli, [*where, "queries", "--user", "bea", "--json"]).output)
    assert [j["user"] for j in own] == ["bea"]
    table = " ".join(runner.invoke(cli, [*where, "queries"], env={"COLUMNS": "200"}).output.split())
    assert "SELECT 42 AS answer" in table and "COMPLETED" in table

    # Sync jobs stay apart, and each command's help names the other.
    assert json.loads(runner.invoke(cli, [*where, "ingest", "jobs", "--json"]).output) == []
    sync_help = " ".join(runner.invoke(cli, ["ingest", "jobs", "--help"]).output.split())
    query_help = " ".join(runner.invoke(cli, ["queries", "--help"]).output.split())
    assert "sync jobs" in sync_help and "`fleuve queries`" in sync_help
    assert "query jobs" in query_help and "`fleuve ingest jobs`" in query_help


def test_core_commands_do_not_load_the_demo(tmp_path: Path) -> None:
    """Only `fleuve demo` and projects with a `demo:` section bring the demo in."""
    (tmp_path / "drops").mkdir()
    (tmp_path / "drops" / "a.csv").write_text("id\n1\n")
    script = textwrap.dedent(
        f"""
        import sys
        from fleuve.cli import cli

        def run(*args):
            try:
                cli.main(["-p", {str(tmp_path)!r}, *args], prog_name="fleuve")
            except SystemExit as exc:
                assert not exc.code, (args, exc.code)

        run("init")
        with open({str(tmp_path / "fleuve.yml")!r}, "a") as f:
            f.write(
                "connections:\\n  - name: drops\\n    source: {{type: files, path: drops}}\\n"
                "    streams: [{{name: ids, path: '*.csv'}}]\\n"
            )
        for args in (("lake", "tables"), ("source", "check", "drops"), ("ingest", "sync", "drops"),
                     ("ingest", "jobs"), ("sql", "SELECT 1"), ("queries",)):
            run(*args)
        print(sorted(m for m in sys.modules if m.startswith("fleuve.demo")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
