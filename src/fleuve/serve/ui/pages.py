"""The browser app's pages and assets: served before authentication, since they hold no data.

The pages are one HTML shell and the app's own JavaScript and CSS, charts included: nothing is
loaded from elsewhere. Every piece of data the app shows comes from the authenticated JSON API.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from fleuve import __version__

STATIC = Path(__file__).parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


@dataclass(frozen=True)
class Asset:
    """A file's bytes, type and content hash (for cache busting)."""

    body: bytes
    media_type: str
    etag: str


def _asset(path: Path) -> Asset:
    body = path.read_bytes()
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if media.startswith("text/") or media.endswith("javascript"):
        media += "; charset=utf-8"
    return Asset(body, media, hashlib.sha256(body).hexdigest()[:16])


@cache
def static_asset(name: str) -> Asset | None:
    """One of the app's own files under static/."""
    path = (STATIC / name).resolve()
    if STATIC.resolve() not in path.parents or not path.is_file():
        return None
    return _asset(path)


@cache
def shell() -> Asset:
    """The HTML page every UI route answers with, asset URLs pinned to their content hashes."""
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    for name in ("app.css", "app.js"):
        html = html.replace(f"{{{name}}}", f"/ui/static/{name}?v={static_asset(name).etag}")
    body = html.replace("{version}", __version__).encode()
    return Asset(body, "text/html; charset=utf-8", hashlib.sha256(body).hexdigest()[:16])


def resolve(path: str) -> tuple[Asset | None, bool]:
    """The asset answering `path`, and whether it may be cached for good (a pinned URL)."""
    if path.startswith("/ui/static/"):
        return static_asset(path.removeprefix("/ui/static/")), True
    if (
        path == "/"
        or path == "/ui"
        or (path.startswith("/ui/") and "." not in path.rsplit("/", 1)[-1])
    ):
        return shell(), False
    return None, False


class PublicPages:
    """ASGI middleware answering the UI's pages and assets; everything else goes on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        asset, pinned = resolve(scope["path"])
        if asset is None:
            await self.app(scope, receive, send)
            return
        headers = {
            "content-type": asset.media_type,
            "etag": f'"{asset.etag}"',
            "x-content-type-options": "nosniff",
            "cache-control": "public, max-age=31536000, immutable" if pinned else "no-cache",
        }
        if not pinned:
            headers["content-security-policy"] = CSP
            headers["referrer-policy"] = "same-origin"
        request_headers = dict(scope.get("headers") or [])
        not_modified = request_headers.get(b"if-none-match", b"").decode() == f'"{asset.etag}"'
        body = b"" if not_modified or scope["method"] == "HEAD" else asset.body
        headers["content-length"] = str(0 if not_modified else len(asset.body))
        await send(
            {
                "type": "http.response.start",
                "status": 304 if not_modified else 200,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})
