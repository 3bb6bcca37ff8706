"""Arrow Flight (Dremio-style SQL commands) and Flight SQL on one port."""

from fleuve.serve.flight.server import FlightService

__all__ = ["FlightService"]
