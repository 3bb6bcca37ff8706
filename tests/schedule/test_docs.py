"""docs/operations.md stays true: every schedule setting, command and endpoint is described."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleuve.cli.scheduling import schedules
from fleuve.config import ScheduledWork, ScheduleSettings
from fleuve.serve.rest.schedules import router
from fleuve.triggers import NAMES

DOC = (Path(__file__).parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("model", [ScheduleSettings, ScheduledWork])
def test_every_setting_is_documented(model: type) -> None:
    missing = [name for name in model.model_fields if f"| `{name}` |" not in DOC]
    assert not missing, f"undocumented {model.__name__} settings: {missing}"


def test_every_command_endpoint_and_name_is_documented() -> None:
    assert all(f"fleuve schedules {c}" in DOC for c in schedules.commands)
    assert "fleuve worker" in DOC
    for route in router.routes:
        for method in route.methods:  # type: ignore[attr-defined]
            assert f"`{method} {route.path}" in DOC, (method, route.path)  # type: ignore[attr-defined]
    assert all(f"`{name}`" in DOC for name in NAMES)
