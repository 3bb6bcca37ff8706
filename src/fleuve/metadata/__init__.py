"""The platform's metadata database: models, sessions and migrations."""

from fleuve.metadata import engine as _engine  # noqa: F401  (registers the engine tables)
from fleuve.metadata import observe as _observe  # noqa: F401  (registers the alert tables)
from fleuve.metadata import schedule as _schedule  # noqa: F401  (registers the scheduler tables)
from fleuve.metadata import ui as _ui  # noqa: F401  (registers the UI tables)
from fleuve.metadata.database import Database
from fleuve.metadata.models import Attempt, Base, Job, PipelineRun, PipelineStep, Token, User
from fleuve.metadata.serve import AuditEvent
from fleuve.metadata.transform import DbtRunHistory, DbtRunNode

__all__ = [
    "Attempt",
    "AuditEvent",
    "Base",
    "Database",
    "DbtRunHistory",
    "DbtRunNode",
    "Job",
    "PipelineRun",
    "PipelineStep",
    "Token",
    "User",
]
