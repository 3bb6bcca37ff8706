"""Observability: structured logs, metrics, search and alerts across every layer."""
