"""Reflections: materialized answers that queries are rewritten to read, never changing them."""

from fleuve.engine.reflections.model import Reflection
from fleuve.engine.reflections.service import Reflections, RefreshResult

__all__ = ["Reflection", "Reflections", "RefreshResult"]
