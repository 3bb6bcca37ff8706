"""Arrow Flight (Dremio-style SQL commands) and Flight SQL on one port."""

from fleuve.serve.flight.endpoint import FlightService

__all__ = ["FlightService"]
