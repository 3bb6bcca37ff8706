"""A served demo project and a headless Chromium for the web UI tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from fleuve.project import ADMIN_PASSWORD_FILE
from tests.conftest import free_port

FLEUVE = [sys.executable, "-m", "fleuve"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ANALYST = ("analyst", "analyst-password-1")
# Other test suites may share the machine's two cores: assertions wait up to 30 s, not 5.
expect.set_options(timeout=30_000)


@dataclass
class Served:
    """A demo project served by `fleuve serve` on free ports."""

    folder: Path
    url: str
    flight_port: int
    admin_password: str

    def token(self, user: str = "admin", password: str | None = None) -> str:
        """A login token for `user`."""
        res = httpx.post(
            f"{self.url}/apiv2/login",
            json={"userName": user, "password": password or self.admin_password},
        )
        res.raise_for_status()
        return res.json()["token"]


def start_server(folder: Path, http_port: int, flight_port: int) -> subprocess.Popen:
    """`fleuve serve` on the given ports, returned once /health answers."""
    proc = subprocess.Popen(
        [
            *FLEUVE,
            "-p",
            str(folder),
            "--set",
            f"server.flight_port={flight_port}",
            "serve",
            "--port",
            str(http_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"fleuve serve exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError("fleuve serve did not answer within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server started by `start_server`."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The demo shop (1,000 orders) with its pipeline run, served on free ports."""
    folder = tmp_path_factory.mktemp("ui") / "demo"
    done = subprocess.run(
        [
            *FLEUVE,
            "demo",
            str(folder),
            "--scale",
            "1000",
            "--no-serve",
            "--api-port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    password = (folder / ".fleuve" / ADMIN_PASSWORD_FILE).read_text().strip()
    http_port, flight_port = free_port(), free_port()
    proc = start_server(folder, http_port, flight_port)
    server = Served(folder, f"http://127.0.0.1:{http_port}", flight_port, password)
    try:
        token = server.token()
        httpx.post(
            f"{server.url}/api/fleuve/v1/ui/admin/users",
            headers={"Authorization": f"Bearer {token}"},
            json={"userName": ANALYST[0], "password": ANALYST[1], "roles": ["analyst"]},
        ).raise_for_status()
        yield server
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium driven by Playwright (no browser is downloaded)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (`.ci/run` does)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def screenshot(page: Page, name: str) -> None:
    """Save a screenshot for the docs and the README when FLEUVE_SCREENSHOTS=1."""
    if os.environ.get("FLEUVE_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)


def login(page: Page, served: Served, user: str = "admin", password: str | None = None) -> None:
    """Sign in through the login form, with the keyboard only."""
    page.wait_for_selector("input[name=userName]")
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    page.keyboard.type(password or served.admin_password)
    page.keyboard.press("Enter")
    page.wait_for_selector("header.top:not([hidden])")
