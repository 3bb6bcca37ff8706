"""The browser app's pages and assets: served before authentication, since they hold no data.

The pages are one HTML shell, the app's own CSS and its ES modules (one per page, charts
included): nothing is loaded from elsewhere and nothing is built. Every piece of data the app
shows comes from the authenticated JSON API.

Every asset URL carries its content hash (`?v=`), so a browser may keep it for good: the shell
names the stylesheet and the entry module by such URLs, and an import map sends each module's
`import` to its pinned URL, so a changed module is fetched anew while the others stay cached.
"""

from __future__ import annotations

import base64
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from fleuve import __version__

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui/static/"
MODULES = "js"  # the folder of the ES modules, under static/
ENTRY = "js/main.js"
STYLESHEET = "app.css"
# Browsers run a module only when served as JavaScript: its type must not depend on the
# machine's MIME table (some map .js to text/plain).
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
CSP = (
    "default-src 'self'; script-src 'self' {import_map}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


@dataclass(frozen=True)
class Asset:
    """A file's bytes, type and content hash (for cache busting)."""

    body: bytes
    media_type: str
    etag: str


def _asset(body: bytes, media_type: str) -> Asset:
    return Asset(body, media_type, hashlib.sha256(body).hexdigest()[:16])


class Assets:
    """The app's files under `root`, read once, each reachable by a URL pinned to its content."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: dict[str, Asset] = {}

    def file(self, name: str) -> Asset | None:
        """The file `name` (a path under the root), or None when there is no such file."""
        if name not in self._files:
            path = (self.root / name).resolve()
            if self.root.resolve() not in path.parents or not path.is_file():
                return None  # not remembered: any path may be asked for, a cache would grow
            media = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            self._files[name] = _asset(path.read_bytes(), media or "application/octet-stream")
        return self._files[name]

    def url(self, name: str) -> str:
        """The URL of the file `name` pinned to its content: a new content gets a new URL."""
        asset = self.file(name)
        if asset is None:
            raise FileNotFoundError(f"the web UI's file {self.root / name} is missing")
        return f"{PREFIX}{name}?v={asset.etag}"

    @cached_property
    def modules(self) -> dict[str, str]:
        """Every ES module's plain URL, mapped to its pinned URL."""
        names = sorted(
            p.relative_to(self.root).as_posix() for p in self.root.glob(f"{MODULES}/**/*.js")
        )
        return {f"{PREFIX}{name}": self.url(name) for name in names}

    @cached_property
    def import_map(self) -> str:
        """The import map sending each module's `import` to its pinned URL."""
        return json.dumps({"imports": self.modules}, indent=2)

    @cached_property
    def csp(self) -> str:
        """The pages' Content-Security-Policy: scripts from Fleuve only, and the import map by its hash."""
        digest = base64.b64encode(hashlib.sha256(self.import_map.encode()).digest()).decode()
        return CSP.format(import_map=f"'sha256-{digest}'")

    @cached_property
    def shell(self) -> Asset:
        """The HTML page every UI route answers with, every asset URL pinned to its content."""
        preloads = "\n  ".join(
            f'<link rel="modulepreload" href="{url}">' for url in self.modules.values()
        )
        html = (self.root / "index.html").read_text(encoding="utf-8")
        for placeholder, value in (
            ("{stylesheet}", self.url(STYLESHEET)),
            ("{importmap}", self.import_map),
            ("{modulepreload}", preloads),
            ("{entry}", self.url(ENTRY)),
            ("{version}", __version__),
        ):
            html = html.replace(placeholder, value)
        return _asset(html.encode(), "text/html; charset=utf-8")

    def resolve(self, path: str, query: str = "") -> tuple[Asset | None, bool]:
        """The asset answering `path`, and whether it may be cached for good.

        Only a URL pinned to the current content may: a plain URL, or one pinned to an older
        content, is answered with the current file and must be checked again next time.
        """
        if path.startswith(PREFIX):
            asset = self.file(path.removeprefix(PREFIX))
            pinned = asset is not None and parse_qs(query).get("v") == [asset.etag]
            return asset, pinned
        if (
            path == "/"
            or path == "/ui"
            or (path.startswith("/ui/") and "." not in path.rsplit("/", 1)[-1])
        ):
            return self.shell, False
        return None, False


class PublicPages:
    """ASGI middleware answering the UI's pages and assets; everything else goes on."""

    def __init__(self, app: ASGIApp, assets: Assets | None = None) -> None:
        self.app = app
        self.assets = assets or Assets(STATIC)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        asset, pinned = self.assets.resolve(scope["path"], query)
        if asset is None:
            await self.app(scope, receive, send)
            return
        headers = {
            "content-type": asset.media_type,
            "etag": f'"{asset.etag}"',
            "x-content-type-options": "nosniff",
            "cache-control": "public, max-age=31536000, immutable" if pinned else "no-cache",
        }
        if asset.media_type.startswith("text/html"):
            headers["content-security-policy"] = self.assets.csp
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
