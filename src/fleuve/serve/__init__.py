"""Serving: the REST API, Arrow Flight and the web UI over the engine."""
