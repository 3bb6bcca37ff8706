"""The platform's metadata database: models, sessions and migrations."""

from fleuve.metadata.database import Database
from fleuve.metadata.models import Attempt, Base, Job, PipelineRun, PipelineStep, Token, User
from fleuve.metadata.serve import AuditEvent

__all__ = [
    "Attempt",
    "AuditEvent",
    "Base",
    "Database",
    "Job",
    "PipelineRun",
    "PipelineStep",
    "Token",
    "User",
]
