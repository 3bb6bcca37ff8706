"""Users with argon2 password hashes, and login or personal access tokens stored as digests."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import select

from fleuve.errors import FleuveError
from fleuve.metadata import Database, Token, User
from fleuve.metadata.models import utcnow

LOGIN_TTL = timedelta(hours=30)  # Dremio's default session length
_hasher = PasswordHasher()
# Verifying against this keeps unknown user names as slow as wrong passwords.
_DUMMY_HASH = _hasher.hash("fleuve-timing-equalizer")


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher.hash(password)


def digest(token: str) -> str:
    """The SHA-256 digest under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(db: Database, username: str, password: str, roles: list[str] | None = None) -> User:
    """Add a user; a FleuveError if the name is taken."""
    with db.session() as s:
        if s.scalar(select(User).where(User.username == username)):
            raise FleuveError(
                f"user '{username}' already exists",
                "pick another name or use `fleuve users passwd`",
            )
        user = User(username=username, password_hash=hash_password(password), roles=roles or [])
        s.add(user)
    return user


def authenticate(db: Database, username: str, password: str) -> User | None:
    """The enabled user whose password matches, else None."""
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == username))
        try:
            _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
        except VerificationError:
            return None
        if user is None or user.disabled:
            return None
        return user


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


def user_for_token(db: Database, token: str) -> User | None:
    """The user a valid (known, unexpired, unrevoked) token belongs to."""
    with db.session() as s:
        row = s.scalar(select(Token).where(Token.digest == digest(token)))
        if row is None or row.revoked or (row.expires_at and row.expires_at <= utcnow()):
            return None
        user = s.get(User, row.user_id)
        return None if user is None or user.disabled else user


def ensure_admin(db: Database, password: str | None = None) -> str | None:
    """Create the first admin if there is no user yet; returns the new password, else None."""
    with db.session() as s:
        if s.scalar(select(User.id).limit(1)) is not None:
            return None
    password = password or secrets.token_urlsafe(12)
    create_user(db, "admin", password, roles=["admin"])
    return password
