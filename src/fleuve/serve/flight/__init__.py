"""Arrow Flight (Dremio-style SQL commands) and Flight SQL on one port."""

from fleuve.serve.flight.service import FlightService

__all__ = ["FlightService"]
