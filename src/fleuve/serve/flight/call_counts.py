"""Counts every Arrow Flight call, refused ones included, by method and outcome."""

from __future__ import annotations

import pyarrow.flight as flight

from fleuve.observe.metrics import INSTRUMENTS


def count_call(info: flight.CallInfo, exception: BaseException | None) -> None:
    """Count one answered call: `ok`, or the name of the error it ended with."""
    status = "ok" if exception is None else type(exception).__name__
    INSTRUMENTS.flight_requests.labels(info.method.name.lower(), status).inc()


class _Call(flight.ServerMiddleware):
    """One call, counted when it completes."""

    def __init__(self, info: flight.CallInfo) -> None:
        self.info = info

    def call_completed(self, exception: BaseException | None) -> None:
        count_call(self.info, exception)


class MetricsMiddlewareFactory(flight.ServerMiddlewareFactory):
    """Counts every authenticated Flight call; `count_call` counts the refused ones."""

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> _Call:
        return _Call(info)
