"""docs/operations.md stays true about alerts: its example is valid, every kind and command is
described."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from fleuve.cli.observing import alerts, observe
from fleuve.config import AlertRule, validate
from fleuve.observe.alerts import CHECKS

DOC = (Path(__file__).parents[2] / "docs" / "operations.md").read_text(encoding="utf-8")
SECTION = DOC[DOC.index("## Alerts") :]


def test_the_example_is_a_valid_configuration() -> None:
    example = re.search(r"```yaml\n(alerts:.*?)```", SECTION, re.S)
    assert example is not None
    environ = {
        "SLACK_WEBHOOK_URL": "https://x",
        "TEAMS_WEBHOOK_URL": "https://y",
        "SMTP_PASSWORD": "p",
    }
    raw = yaml.safe_load(re.sub(r"\$\{(\w+)\}", lambda m: environ[m.group(1)], example.group(1)))
    settings = validate(raw)
    assert {r.kind for r in settings.alerts.rules} == set(CHECKS)


def test_every_kind_key_and_command_is_described() -> None:
    assert all(f"| `{kind}` |" in SECTION for kind in CHECKS)
    keys = {f.alias or name for name, f in AlertRule.model_fields.items()}
    assert all(f"`{key}`" in SECTION for key in keys), keys
    assert all(f"fleuve alerts {c}" in SECTION for c in alerts.commands)
    assert all(f"fleuve observe {c}" in SECTION for c in observe.commands)
