"""Typed errors that carry a message a user can act on."""

from __future__ import annotations

from fleuve.security.masking import mask


class FleuveError(Exception):
    """An error Fleuve explains to its user: what went wrong and how to fix it."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        # Messages quote SQL and settings back to the user, and reach logs and the audit trail.
        message = mask(message)
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\nFix: {self.fix}" if self.fix else self.message


class ConfigError(FleuveError):
    """The configuration is invalid: a key, its value, and the fix."""


class LakeUnavailable(FleuveError):
    """The lake's catalog database or data path cannot be reached."""


class MetadataError(FleuveError):
    """The platform metadata database is missing, unreachable or out of date."""


class PipelineError(FleuveError):
    """A step of the batch pipeline failed."""

    def __init__(self, step: str, message: str, fix: str | None = None) -> None:
        super().__init__(f"step '{step}' failed: {message}", fix)
        self.step = step
