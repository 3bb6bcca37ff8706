"""The web UI's shell and assets: every module pinned to its content through the import map."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.responses import PlainTextResponse

from fleuve.serve.ui.pages import STATIC, Assets, PublicPages

# The modules a module asks for: `import ... from "x"`, `import "x"`, `export ... from "x"`,
# `import("x")`.
IMPORT = re.compile(
    r"""^\s*import\s*(?:[^;'"]*?\bfrom\s*)?["']([^"']+)["']"""
    r"""|^\s*export\s[^;'"=(]*?\bfrom\s*["']([^"']+)["']"""
    r"""|\bimport\(\s*["']([^"']+)["']""",
    re.M,
)
# A module served as another type does not run.
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.S)
FILES = sorted(
    p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*") if p.suffix in (".css", ".js")
)


def version(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


class Client:
    """The pages middleware over `root`, in process, before an app answering 404 to the rest."""

    def __init__(self, root: Path) -> None:
        self.app = PublicPages(PlainTextResponse("not a page", status_code=404), Assets(root))

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def request() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ui") as http:
                return await http.get(path, headers=headers)

        # In a thread of its own: Playwright's tests may hold this thread's event loop.
        with ThreadPoolExecutor(1) as thread:
            return thread.submit(asyncio.run, request()).result()


def import_map(html: str) -> dict[str, str]:
    found = IMPORT_MAP.search(html)
    assert found, "the shell has no import map"
    return json.loads(found.group(1))["imports"]


def test_every_import_goes_through_the_import_map_to_a_pinned_url() -> None:
    page = Client(STATIC).get("/ui/dashboards/sales")
    mapped = import_map(page.text)
    modules = sorted(STATIC.glob("js/**/*.js"))
    assert len(modules) > 5 and len(mapped) == len(modules)
    for module in modules:
        url = f"/ui/static/{module.relative_to(STATIC).as_posix()}"
        assert mapped[url] == f"{url}?v={version(module)}"
        assert f'<link rel="modulepreload" href="{mapped[url]}">' in page.text
        for found in IMPORT.findall(module.read_text(encoding="utf-8")):
            spec = "".join(found)
            # A relative import resolves to a plain URL, which the map sends to the pinned one.
            assert spec.startswith(("./", "../")), f"{module.name} imports {spec}"
            target = (module.parent / spec).resolve().relative_to(STATIC.resolve()).as_posix()
            assert f"/ui/static/{target}" in mapped, f"{module.name} imports {spec}"
    entry = re.search(r'<script type="module" src="([^"]+)"></script>', page.text)
    assert entry and entry.group(1) == mapped["/ui/static/js/main.js"]
    # An inline import map is a script: the policy allows exactly this one by its hash.
    digest = hashlib.sha256(IMPORT_MAP.search(page.text).group(1).encode()).digest()
    policy = page.headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{base64.b64encode(digest).decode()}';" in policy
    assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";")[0]


def test_a_changed_module_gets_a_new_url_and_the_others_keep_theirs(tmp_path: Path) -> None:
    root = tmp_path / "static"
    shutil.copytree(STATIC, root)
    before = import_map(Client(root).get("/").text)
    changed = root / "js" / "charts.js"
    changed.write_text(changed.read_text(encoding="utf-8") + "// changed\n", encoding="utf-8")
    served = Client(root)
    after = import_map(served.get("/").text)
    plain = "/ui/static/js/charts.js"
    assert after[plain] != before[plain] and after[plain].endswith(f"?v={version(changed)}")
    assert {k: v for k, v in after.items() if k != plain} == {
        k: v for k, v in before.items() if k != plain
    }
    fresh = served.get(after[plain])
    assert fresh.text.endswith("// changed\n") and "immutable" in fresh.headers["cache-control"]
    # A page still holding the old URL gets the current module, not to be kept for good.
    stale = served.get(before[plain])
    assert stale.text == fresh.text and stale.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("name", FILES)
def test_only_a_url_pinned_to_the_content_is_cached_for_good(name: str) -> None:
    served = Client(STATIC)
    pinned = f"/ui/static/{name}?v={version(STATIC / name)}"
    assert f'"{pinned}"' in served.get("/").text, f"the shell does not load {pinned}"
    res = served.get(pinned)
    assert res.status_code == 200 and res.content == (STATIC / name).read_bytes()
    assert res.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert res.headers["content-type"] == TYPES[Path(name).suffix]
    assert served.get(pinned, headers={"If-None-Match": res.headers["etag"]}).status_code == 304
    for unpinned in (f"/ui/static/{name}", f"/ui/static/{name}?v=0123456789abcdef"):
        again = served.get(unpinned)
        assert again.content == res.content and again.headers["cache-control"] == "no-cache"


def test_pages_are_never_cached_for_good_and_other_paths_go_on() -> None:
    served = Client(STATIC)
    for path in ("/", "/ui", "/ui/sql", "/ui/dashboards/sales?period=all"):
        page = served.get(path)
        assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
        assert not re.search(r"\{[a-z]+\}", page.text), "a placeholder was left in the shell"
    for path in ("/ui/static/../pages.py", "/ui/static/js/missing.js", "/api/v3/catalog"):
        assert served.get(path).status_code == 404, path
