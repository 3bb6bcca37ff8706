"""docs/ingestion.md stays true: every connection and stream setting is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleuve.config import ConnectionSettings, StreamSettings
from fleuve.ingest.connectors import CONNECTORS
from fleuve.ingest.connectors.rest import PAGINATIONS

DOC = (Path(__file__).parents[2] / "docs" / "ingestion.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("model", [ConnectionSettings, StreamSettings])
def test_every_setting_is_documented(model: type) -> None:
    missing = [name for name in model.model_fields if f"`{name}`" not in DOC]
    assert not missing, f"undocumented {model.__name__} settings: {missing}"


def test_every_source_type_and_pagination_is_documented() -> None:
    assert all(f"`{kind}`" in DOC for kind in CONNECTORS)
    assert all(f"type: {kind}" in DOC for kind in PAGINATIONS)
