"""Errors of change data capture, each naming what to do."""

from __future__ import annotations

from fleuve.ingest.errors import IngestError


class CaptureError(IngestError):
    """Change capture cannot run against this source as it is set up."""


class PositionLost(CaptureError):
    """The source no longer has the changes after the lake's position: they cannot be read."""
