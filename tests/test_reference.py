"""The settings and command references in docs/ are the ones the code generates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fleuve import config, reference

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "generate"),
    [
        (reference.SETTINGS_FILE, reference.settings_markdown),
        (reference.CLI_FILE, reference.cli_markdown),
    ],
)
def test_committed_reference_is_current(name: str, generate) -> None:
    path = ROOT / name
    assert path.exists(), f"{name} is missing: run `{reference.REGENERATE}` and commit it"
    committed = path.read_text(encoding="utf-8")
    assert committed == generate(), (
        f"{name} is out of date with the code: run `{reference.REGENERATE}` "
        "(python -m fleuve.reference) and commit the result"
    )


def test_every_setting_is_in_the_settings_reference() -> None:
    text = reference.settings_markdown()
    for title, model, _prefix in reference._sections(config.Settings, ""):
        for name, field in reference._fields(model):
            key = field.alias or name  # as written in fleuve.yml: `for`, `from`
            assert f"| `{key}` |" in text, f"{title}.{key} is not in the settings reference"
    assert "project_dir" not in text.split("## `transform`")[0]  # set by Fleuve, not written
    for kind in config._SOURCE_KEYS:
        assert f"| `{kind}` |" in text
    for spelling in ("hourly", "every_N_minutes", "manual"):
        assert f"`{spelling}`" in text


def test_an_undocumented_source_key_stops_the_generation(monkeypatch) -> None:
    monkeypatch.setitem(config._SOURCE_KEYS, "rest", (*config._SOURCE_KEYS["rest"], "proxy"))
    with pytest.raises(ValueError, match="proxy"):
        reference.settings_markdown()


def test_every_visible_command_is_in_the_cli_reference() -> None:
    text = reference.cli_markdown()
    root = reference._root_group()
    for name, command in root.commands.items():
        if not command.hidden:
            assert f"## `fleuve {name}`" in text
    assert "Usage: fleuve lake at [OPTIONS] TABLE VERSION" in text


def test_the_references_do_not_depend_on_the_machine(monkeypatch, tmp_path: Path) -> None:
    expected = reference.settings_markdown(), reference.cli_markdown()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "40")
    assert (reference.settings_markdown(), reference.cli_markdown()) == expected


def test_write_regenerates_only_what_changed(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    assert reference.main([str(tmp_path)]) == 0
    assert (tmp_path / reference.SETTINGS_FILE).read_text() == reference.settings_markdown()
    assert reference.write(tmp_path) == []


def _headings(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file (code blocks left out)."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in text.splitlines():
        if m := re.match(r"^#+\s+(.*)", line):
            anchor = reference._anchor(m.group(1).strip())
            n = seen.get(anchor, 0)
            seen[anchor] = n + 1
            found.add(anchor if n == 0 else f"{anchor}-{n}")  # GitHub numbers repeated headings
    return found


def test_links_between_the_docs_resolve() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            dest = page.parent / path if path else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _headings(dest):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "links to nowhere:\n" + "\n".join(broken)
