"""Browser tests: headless Chromium (Debian's ``chromium``, driven by the PyPI ``playwright`` package) against
a real ``uvicorn`` server on localhost, one per test, on a fresh embedded database with the demo data.

* ``server``: the base URL of a server of its own (the demo database is built once per session, then copied).
* ``user("window")``: a browser page signed in as that demo account through the sign-in page. Every
  same-origin answer 401 or 403 and every script error on any page is a failure of the test: no page may
  send a request its user's API rights refuse.
* ``shoot(page, "name")``: screenshots at 1366 px and 375 px wide into ``var/screenshots/``.

Without Chromium the tests skip, except on CI (``CI`` set), where a missing browser fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

CHROMIUM = os.environ.get("ONEWINDOW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=zh-CN",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
PASSWORD = "onewindow-demo"
WIDTHS = (1366, 375)
DESKTOP = {"width": 1366, "height": 900}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """One browser per test module: Playwright's sync API keeps an event loop running in this thread while
    it is open, so it must be closed before tests that run their own (``asyncio.run``)."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM} (.ci/run installs Debian's chromium)")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def demo_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo database, built once: migrated, bundled models deployed, demo licences and accounts."""
    from engine.bootstrap import bootstrap
    from engine.settings import Settings

    path = tmp_path_factory.mktemp("demo") / "demo.db"
    services = bootstrap(Settings(database_url=f"sqlite:///{path}", demo=True))
    services.engine.dispose()
    return path


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def server(demo_database: Path, tmp_path: Path) -> Iterator[Server]:
    db = tmp_path / "onewindow.db"
    shutil.copy(demo_database, db)
    port = _free_port()
    env = {
        **os.environ,
        "ONEWINDOW_DATABASE_URL": f"sqlite:///{db}",
        "ONEWINDOW_DEMO": "1",
        "ONEWINDOW_SECRET_KEY": "browser-tests-" + "x" * 32,
        "ONEWINDOW_UPLOAD_DIR": str(tmp_path / "uploads"),
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    running = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"the server exited ({process.returncode}):\n{running.output()}")
        try:
            if httpx.get(running.url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not answer within 60 s:\n{running.output()}")
        time.sleep(0.1)
    yield running
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@dataclass
class Watch:
    """What a signed-in page must never meet: a refused same-origin request, a script error, a resource the
    page's Content-Security-Policy blocks."""

    origin: str
    refused: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    allowed: set[str] = field(default_factory=set)  # "METHOD path" a test provokes on purpose

    def console(self, kind: str, text: str) -> None:
        """What the page's Content-Security-Policy blocked is a failure too (a script, a style, a font)."""
        if kind == "error" and "Content Security Policy" in text:
            self.script_errors.append(text)

    def response(self, response: Any) -> None:
        if response.url.startswith(self.origin) and response.status in (401, 403):
            path = response.url[len(self.origin) :].split("?")[0]
            if f"{response.request.method} {path}" not in self.allowed:
                self.refused.append(f"{response.status} {response.request.method} {path}")


@pytest.fixture
def user(chromium: Any, server: Server) -> Iterator[Callable[..., Any]]:
    """``user(username)``: a page of its own browser context, signed in through the sign-in page."""
    contexts: list[tuple[Any, Watch]] = []

    def sign_in(username: str | None, *, viewport: dict[str, int] | None = None) -> Any:
        context = chromium.new_context(
            viewport=viewport or DESKTOP, locale="zh-CN", timezone_id="Asia/Shanghai", base_url=server.url
        )
        context.set_default_timeout(15_000)
        watch = Watch(server.url)
        contexts.append((context, watch))
        page = context.new_page()
        page.watch = watch  # type: ignore[attr-defined]
        context.on("response", watch.response)
        page.on("pageerror", lambda error: watch.script_errors.append(str(error)))
        page.on("console", lambda msg: watch.console(msg.type, msg.text))
        if username is None:
            return page
        page.goto("/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(lambda url: "/login" not in url)
        return page

    yield sign_in
    problems = []
    for context, watch in contexts:
        problems += [f"refused: {r}" for r in watch.refused] + [f"script: {e}" for e in watch.script_errors]
        context.close()
    assert not problems, "\n".join(problems) + "\n" + server.output()[-2000:]


@pytest.fixture
def shoot() -> Callable[[Any, str], None]:
    """Screenshots of the page as it is now, at 1366 px and at 375 px wide (full page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> None:
        before = page.viewport_size or DESKTOP
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(150)  # let a diagram or chart fit itself to the new width
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        page.set_viewport_size(before)

    return take
