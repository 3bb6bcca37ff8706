"""The demo's product catalog service: a paginated JSON REST API on loopback, behind an API key."""

from __future__ import annotations

import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class ProductService:
    """Serves `/v1/products?page=N&per_page=M&updated_since=ISO` from the generated catalog."""

    def __init__(self, catalog: Path, api_key: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.products = json.loads(catalog.read_text(encoding="utf-8"))
        self.api_key = api_key
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL clients use."""
        # The bound socket's address (the port chosen when 0 was asked for).
        host, port = self._server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> ProductService:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep the demo's console clean
                return

            def _send(self, status: int, body: object) -> None:
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/health":
                    return self._send(200, {"status": "ok"})
                if not secrets.compare_digest(self.headers.get("X-API-Key", ""), api.api_key):
                    return self._send(401, {"error": "missing or wrong X-API-Key"})
                if url.path != "/v1/products":
                    return self._send(404, {"error": f"no such endpoint {url.path}"})
                query = parse_qs(url.query)
                try:
                    page = max(1, int(query.get("page", ["1"])[0]))
                    per_page = min(1000, max(1, int(query.get("per_page", ["100"])[0])))
                except ValueError:
                    return self._send(400, {"error": "page and per_page must be integers"})
                since = query.get("updated_since", [""])[0]
                rows = (
                    [p for p in api.products if p["updated_at"] > since] if since else api.products
                )
                chunk = rows[(page - 1) * per_page : page * per_page]
                has_next = page * per_page < len(rows)
                return self._send(
                    200,
                    {
                        "data": chunk,
                        "page": page,
                        "per_page": per_page,
                        "total": len(rows),
                        "next_page": page + 1 if has_next else None,
                    },
                )

        return Handler
