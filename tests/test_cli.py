"""The `fleuve` command: help everywhere, an idempotent init, clear errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fleuve.cli import cli


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, (*prefix, name)))
    return out


def test_every_subcommand_has_help() -> None:
    runner = CliRunner()
    commands = _commands(cli)
    assert {("init",), ("demo",), ("run",), ("serve",), ("db", "upgrade")} <= set(commands)
    for path in commands:
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        cmd = cli
        for part in path:
            cmd = cmd.commands[part]  # type: ignore[attr-defined]
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
