"""Flight authentication: a basic-auth handshake returns a bearer token every call then carries."""

from __future__ import annotations

import base64
import binascii
import time

import pyarrow.flight as flight

from fleuve.metadata import Database
from fleuve.security import auth
from fleuve.serve.flight.call_counts import count_call

UNAUTHENTICATED = (
    "authentication required: call authenticate_basic_token(user, password) and pass the "
    "returned header in FlightCallOptions(headers=[...])"
)


def _header(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name) or headers.get(name.title())
    return values[0] if values else None


class Session(flight.ServerMiddleware):
    """The authenticated caller of one Flight call, and the token a handshake hands back."""

    def __init__(self, username: str, default_schema: str | None, token: str | None = None) -> None:
        self.username = username
        self.default_schema = default_schema
        self._token = token

    def sending_headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self._token}"} if self._token else {}


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):
    """Checks credentials before any Flight method runs; only the handshake takes a password."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def start_call(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> Session:
        try:
            return self._session(info, headers)
        except flight.FlightUnauthenticatedError as exc:
            # Arrow ends a refused call without completing the middlewares started before.
            count_call(info, exc)
            raise

    def _session(self, info: flight.CallInfo, headers: dict[str, list[str]]) -> Session:
        header = _header(headers, "authorization") or ""
        schema = _header(headers, "schema")
        if info.method == flight.FlightMethod.HANDSHAKE:
            if not header.lower().startswith("basic "):
                raise flight.FlightUnauthenticatedError(UNAUTHENTICATED)
            username, password = _basic(header[6:])
            delay = auth.login_delay(self.db, username)
            if delay:
                time.sleep(delay)
            user = auth.authenticate(self.db, username, password, via="flight")
            if user is None:
                raise flight.FlightUnauthenticatedError("invalid user name or password")
            token, _ = auth.issue_token(self.db, user)
            return Session(user.username, schema, token)
        if header.lower().startswith("bearer "):
            user = auth.user_for_token(self.db, header[7:].strip())
            if user is not None:
                return Session(user.username, schema)
        raise flight.FlightUnauthenticatedError(UNAUTHENTICATED)


def _basic(encoded: str) -> tuple[str, str]:
    encoded = encoded.strip()
    try:
        # Some clients (Go's) send unpadded base64.
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
        username, _, password = raw.decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise flight.FlightUnauthenticatedError("malformed basic authorization header") from None
    return username, password


class HandshakeHandler(flight.ServerAuthHandler):
    """Lets the handshake through: the middleware above has already checked the password."""

    def authenticate(
        self, outgoing: flight.ServerAuthSender, incoming: flight.ServerAuthReader
    ) -> None:
        """Nothing to exchange: the token travels in the response headers."""

    def is_valid(self, token: bytes) -> str:
        """Every call is checked by the middleware; the legacy token is not used."""
        return ""
