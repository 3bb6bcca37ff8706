"""Users with argon2 password hashes, and login or personal access tokens stored as digests."""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select, update

from fleuve.errors import FleuveError, NotFound
from fleuve.metadata import Database, Token, User
from fleuve.metadata.database import rows_changed
from fleuve.metadata.models import utcnow
from fleuve.private import write_private
from fleuve.security import audit

LOGIN_TTL = timedelta(hours=30)  # Dremio's default session length
# Failed logins of one user within this window slow every further attempt down.
FAILURE_WINDOW = timedelta(minutes=15)
FREE_FAILURES = 3
MAX_DELAY_SECONDS = 8.0
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")
# A valid token is remembered this long, so that a busy server does not read the metadata
# database on every call; a change to users or tokens forgets them at once in this process and
# within STAMP_READ_SECONDS in the project's other processes (see _changed).
TOKEN_CACHE_SECONDS = 2.0
_hasher = PasswordHasher()
# Verifying against this keeps unknown user names as slow as wrong passwords.
_DUMMY_HASH = _hasher.hash("fleuve-timing-equalizer")


class AuthError(FleuveError):
    """A user or token does not exist, or the change asked for is not allowed."""


class TokenNotFound(AuthError, NotFound):
    """The user has no token with that id."""


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def digest(token: str) -> str:
    """The SHA-256 digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise AuthError("the password is shorter than 8 characters", "choose a longer password")


def create_user(
    db: Database,
    username: str,
    password: str,
    roles: list[str] | None = None,
    *,
    actor: str | None = None,
) -> User:
    """Add a user; an AuthError if the name is taken or invalid."""
    if not _USERNAME.match(username):
        raise AuthError(
            f"invalid user name {username!r}",
            "use 1-128 letters, digits, '_', '.', '@' or '-'",
        )
    _check_password(password)
    with db.session() as s:
        if s.scalar(select(User).where(User.username == username)):
            raise AuthError(
                f"user '{username}' already exists",
                "pick another name or use `fleuve users passwd`",
            )
        user = User(username=username, password_hash=hash_password(password), roles=roles or [])
        s.add(user)
    audit.record(db, "user", "create", username=actor, target=username, roles=user.roles)
    return user


def get_user(db: Database, username: str) -> User:
    """The user called `username`; an AuthError naming the fix if there is none."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise AuthError(f"no user named '{username}'", "list users with `fleuve users list`")
    return user


def list_users(db: Database) -> list[User]:
    """Every user, by name."""
    with db.session() as s:
        return list(s.scalars(select(User).order_by(User.username)))


def set_password(db: Database, username: str, password: str, *, actor: str | None = None) -> None:
    """Change a password and end the user's login sessions (personal tokens stay valid)."""
    _check_password(password)
    user = get_user(db, username)
    with db.session() as s:
        s.execute(
            update(User).where(User.id == user.id).values(password_hash=hash_password(password))
        )
        s.execute(
            update(Token)
            .where(Token.user_id == user.id, Token.kind == "login")
            .values(revoked=True)
        )
    _changed(db)
    audit.record(db, "user", "passwd", username=actor, target=username)


def set_roles(db: Database, username: str, roles: list[str], *, actor: str | None = None) -> User:
    """Replace the user's roles."""
    user = get_user(db, username)
    roles = sorted(dict.fromkeys(r.strip() for r in roles if r.strip()))
    with db.session() as s:
        s.execute(update(User).where(User.id == user.id).values(roles=roles))
    _changed(db)
    audit.record(db, "user", "roles", username=actor, target=username, roles=roles)
    user.roles = roles
    return user


def set_disabled(
    db: Database, username: str, disabled: bool = True, *, actor: str | None = None
) -> None:
    """Disable (or re-enable) a user; a disabled user's tokens stop working at once."""
    user = get_user(db, username)
    with db.session() as s:
        s.execute(update(User).where(User.id == user.id).values(disabled=disabled))
    _changed(db)
    audit.record(db, "user", "disable" if disabled else "enable", username=actor, target=username)


def login_delay(db: Database, username: str) -> float:
    """Seconds to wait before answering a login for `username`: grows with recent failures."""
    failures = audit.recent_failures(db, username, FAILURE_WINDOW)
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_SECONDS, 0.5 * 2 ** (failures - FREE_FAILURES))


def authenticate(
    db: Database, username: str, password: str, *, client: str | None = None, via: str = "rest"
) -> User | None:
    """The enabled user whose password matches, else None; the attempt is audited."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        ok = user is not None and not user.disabled
    except VerificationError:
        ok = False
    audit.record(
        db,
        "login",
        via,
        username=username[:128],
        outcome="ok" if ok else "failed",
        client=via,
        address=client,
    )
    return user if ok else None


def issue_token(
    db: Database,
    user: User,
    *,
    kind: str = "login",
    ttl: timedelta | None = LOGIN_TTL,
    name: str | None = None,
) -> tuple[str, Token]:
    """A new random token for `user`; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    with db.session() as s:
        row = Token(
            digest=digest(token),
            user_id=user.id,
            kind=kind,
            name=name,
            expires_at=utcnow() + ttl if ttl else None,
        )
        s.add(row)
    return token, row


def create_personal_token(
    db: Database, username: str, name: str, days: int | None = 90, *, actor: str | None = None
) -> tuple[str, Token]:
    """A personal access token for scripts and tools; shown once, stored as a digest."""
    user = get_user(db, username)
    token, row = issue_token(
        db, user, kind="pat", ttl=timedelta(days=days) if days else None, name=name
    )
    audit.record(db, "token", "create", username=actor or username, target=username, name=name)
    return token, row


def list_tokens(db: Database, username: str) -> list[Token]:
    """The user's unrevoked, unexpired tokens (their digests, never the tokens)."""
    user = get_user(db, username)
    now = utcnow()
    with db.session() as s:
        rows = s.scalars(
            select(Token)
            .where(Token.user_id == user.id, Token.revoked.is_(False))
            .order_by(Token.id)
        )
        return [t for t in rows if t.expires_at is None or t.expires_at > now]


def revoke_token(db: Database, token: str) -> bool:
    """Revoke the token given in clear (a logout); False if it was unknown."""
    with db.session() as s:
        count = rows_changed(
            s, update(Token).where(Token.digest == digest(token)).values(revoked=True)
        )
    _changed(db)
    return bool(count)


def revoke_token_id(
    db: Database, username: str, token_id: int, *, actor: str | None = None
) -> None:
    """Revoke one of the user's tokens by its id; a TokenNotFound if it is not theirs."""
    user = get_user(db, username)
    with db.session() as s:
        count = rows_changed(
            s,
            update(Token)
            .where(Token.id == token_id, Token.user_id == user.id)
            .values(revoked=True),
        )
    _changed(db)
    if not count:
        raise TokenNotFound(
            f"user '{username}' has no token {token_id}",
            f"list them with `fleuve users tokens {username}`",
        )
    audit.record(db, "token", "revoke", username=actor or username, target=username, id=token_id)


def user_for_token(db: Database, token: str) -> User | None:
    """The user a valid (known, unexpired, unrevoked) token belongs to."""
    key = (db.url, digest(token))
    stamp = _stamp(db)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        cached, expires_at, checked, seen = hit
        if now - checked < TOKEN_CACHE_SECONDS and seen == stamp:
            return cached if expires_at is None or expires_at > utcnow() else None
    with db.session() as s:
        row = s.scalar(select(Token).where(Token.digest == key[1]))
        if row is None or row.revoked or (row.expires_at and row.expires_at <= utcnow()):
            return None
        user = s.get(User, row.user_id)
        if user is None or user.disabled:
            return None
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (user, row.expires_at, now, stamp)
    return user


# (metadata URL, token digest) -> (user, token expiry, when checked, change stamp then)
_cache: dict[tuple[str, str], tuple[User, datetime | None, float, str]] = {}
_cache_lock = threading.Lock()
# A change made by another process is seen within this time (reading the file on every call
# would cost a busy server a system call per request).
STAMP_READ_SECONDS = 0.1
_stamps: dict[Path, tuple[str, float]] = {}


def _stamp_file(db: Database) -> Path | None:
    """Beside a SQLite metadata file: rewritten by every change, so other processes see it."""
    if db.url.startswith("sqlite:///"):
        return Path(db.url.removeprefix("sqlite:///") + ".auth-changed")
    return None  # a metadata server: other processes forget within TOKEN_CACHE_SECONDS


def _stamp(db: Database) -> str:
    """The latest change stamp, read from its file at most every STAMP_READ_SECONDS."""
    path = _stamp_file(db)
    if path is None:
        return ""
    now = time.monotonic()
    with _cache_lock:
        known = _stamps.get(path)
    if known is not None and now - known[1] < STAMP_READ_SECONDS:
        return known[0]
    try:
        stamp = path.read_text()
    except FileNotFoundError:
        stamp = ""
    with _cache_lock:
        _stamps[path] = (stamp, now)
    return stamp


def _changed(db: Database) -> None:
    """Forget remembered tokens here, and tell the project's other processes to forget theirs."""
    path = _stamp_file(db)
    if path is not None:
        write_private(path, uuid.uuid4().hex)  # atomic: a reader sees the old stamp or the new one
    with _cache_lock:
        _cache.clear()
        _stamps.clear()


def ensure_admin(db: Database, password: str | None = None) -> str | None:
    """Create the first admin if there is no user yet; returns the new password, else None."""
    with db.session() as s:
        if s.scalar(select(User.id).limit(1)) is not None:
            return None
    password = password or secrets.token_urlsafe(12)
    create_user(db, "admin", password, roles=["admin"], actor="fleuve init")
    return password
