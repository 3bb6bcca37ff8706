"""Typed errors that carry a message a user can act on."""

from __future__ import annotations

from fleuve.masking import mask


class FleuveError(Exception):
    """An error Fleuve explains to its user: what went wrong and how to fix it."""

    # The HTTP status it is answered with: the caller's mistake unless a subclass says otherwise.
    status = 400

    def __init__(self, message: str, fix: str | None = None) -> None:
        # Messages quote SQL and settings back to the user, and reach logs and the audit trail.
        message = mask(message)
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message}\nFix: {self.fix}" if self.fix else self.message


class Unauthenticated(FleuveError):
    """The caller is not who they claim to be: no valid credentials or token."""

    status = 401


class Forbidden(FleuveError):
    """The caller lacks the role, privilege or grant the request needs."""

    status = 403


class NotFound(FleuveError):
    """No such object (or one the caller may not see: the same answer for both)."""

    status = 404


class Conflict(FleuveError):
    """The request conflicts with what exists, e.g. an object of that name."""

    status = 409


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
