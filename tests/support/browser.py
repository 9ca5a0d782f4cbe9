"""Real headless Chromium (Playwright, sync API) against real dashboard servers, for e2e tests.

A test module imports the fixtures it uses by name (like ``docker_engine``). The fixtures:

- ``browser`` (module): Debian's ``chromium`` driven by Playwright for Python (never
  ``playwright install``: it downloads a browser). Missing chromium or playwright skips the tests
  with the reason through ``conftest.require`` (a failure in CI, DEBUGTRACE_REQUIRE_SERVICES=1).
- ``seeded`` (module): a SQLite database holding two traces, both finalized in the local sandbox
  and graded by the offline rubric: the calc trace (``fail_to_pass`` fix) and an *untrusted* one
  whose every field a person wrote carries HTML/JS that must be shown as text (``XSS``).
- ``dashboard`` (module): ``debugtrace serve`` on a free loopback port over that database, with no
  token configured (loopback only, no login). ``token_dashboard``: the same with
  ``DEBUGTRACE_API_TOKEN`` set, so every page needs a sign-in.
- ``live_dashboard``: a no-login server over an empty database of its own, and ``slow_calc`` a
  repository whose tests take seconds, to watch a finalize while it runs.
- ``browsing`` (per test): a fresh browser context (no cookies) and page, recording every request
  URL, console error and uncaught page error; at the end of the test it fails if any request left
  the server's origin (no CDN, no fonts, no analytics: the dashboard is self-contained).
  ``phone`` is the same at 360x740, ``live_browsing`` and ``token_browsing`` on the other servers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from debugtrace import Collector, Settings
from support import ROOT
from support.calc_repo import example_trace, git, make_calc_repo
from support.chromium import CHROMIUM_ARGS
from support.server_process import FAST_TEST_COMMAND, Server, server_env
from support.services import require


def _no_playwright() -> NoReturn:
    """Skip the importing test module (or, in CI, fail it) without the playwright package."""
    message = "playwright is not available: pip install -e '.[dev]'"
    if os.environ.get("DEBUGTRACE_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (DEBUGTRACE_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message, allow_module_level=True)


try:
    from playwright.sync_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Error,
        Locator,
        Page,
        Request,
        expect,
        sync_playwright,
    )
except ImportError:
    _no_playwright()

__all__ = ["Locator", "Page", "expect"]  # for the test modules, which import them from here

ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
"""Screenshots of every run land here (gitignored; CI keeps them as artifacts)."""

ADMIN_TOKEN = "dashboard-admin-token-for-tests"

XSS = (
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned=2">',
    '"><svg onload=window.__pwned=3>',
)
"""Markup that would run script if any page put it into the document as HTML."""

PAYLOAD = " ".join(XSS)


@dataclass(frozen=True)
class Seeded:
    """The seeded database and the ids of its traces."""

    database_url: str
    data_dir: Path
    calc_id: str
    untrusted_id: str


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian chromium, launched once per test module.

    Not once per session: while Playwright's sync API is alive it leaves its event loop set as
    the main thread's running loop, so ``asyncio.run`` in any later test module would fail.
    """
    executable = shutil.which("chromium")
    if executable is None:
        require("chromium", "the browser is not installed (apt-get install -y chromium)")
        return  # not reached: require skips, or fails in CI
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
        except Error as exc:
            require("chromium", f"{executable} did not start: {exc.message.splitlines()[0]}")
            return
        try:
            yield chromium
        finally:
            chromium.close()


def untrusted_trace(repo: Path) -> dict[str, object]:
    """A trace whose bug, reasoning, command, output, file name and diff all carry ``XSS``."""
    diff = (
        "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,3 @@\n def divide(a, b):\n"
        f"+    # {PAYLOAD}\n     return a / b\n"
    )
    return {
        "developer_id": "mallory",
        "repo_url": str(repo),
        "bug_description": f"Untrusted {PAYLOAD}",
        "events": [
            {
                "type": "reasoning",
                "details": {
                    "text": f"Hypothesis {PAYLOAD}",
                    "reasoning_type": "hypothesis",
                    "confidence": "low",
                },
            },
            {
                "type": "command",
                "details": {"command": f"echo '{XSS[0]}'", "exit_code": 1, "output": PAYLOAD},
            },
            {"type": "edit", "details": {"file": f"calc{XSS[2]}.py", "diff": diff}},
        ],
    }


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """Two finalized, graded traces in a SQLite file: calc's fix and the untrusted one."""
    tmp = tmp_path_factory.mktemp("dashboard")
    repo = tmp / "calc"
    make_calc_repo(repo)
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'traces.db'}",
        load_plugins="",
        sandbox="local",
        grader="heuristic",
        allow_local_repos=True,
        test_command=FAST_TEST_COMMAND,
    )
    # Module fixtures run before the per-test hermetic environment: keep the caller's out here.
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("DEBUGTRACE_")]:
            mp.delenv(key)
        with Collector(settings=settings) as collector:
            calc = collector.finalize(str(collector.submit(example_trace(repo)).id))
            untrusted = collector.finalize(str(collector.submit(untrusted_trace(repo)).id))
    assert calc.result is not None and calc.result.validation is not None
    assert calc.result.validation.fix_validated, calc.result
    assert untrusted.status == "finalized", untrusted.result
    return Seeded(settings.database_url or "", tmp / "data", str(calc.id), str(untrusted.id))


def _serve(seeded: Seeded, log: Path, **extra: str) -> Iterator[Server]:
    env = server_env(
        seeded.data_dir,
        seeded.database_url,
        DEBUGTRACE_ALLOW_LOCAL_REPOS="1",
        DEBUGTRACE_GRADER="heuristic",
        **extra,
    )
    with Server(env, log) as server:
        yield server


@pytest.fixture(scope="module")
def dashboard(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The seeded dashboard with no token configured: loopback only, no login."""
    yield from _serve(seeded, tmp_path_factory.mktemp("serve") / "server.log")


@pytest.fixture(scope="module")
def token_dashboard(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same database behind ``DEBUGTRACE_API_TOKEN=ADMIN_TOKEN``: pages need a sign-in."""
    log = tmp_path_factory.mktemp("serve-token") / "server.log"
    yield from _serve(seeded, log, DEBUGTRACE_API_TOKEN=ADMIN_TOKEN)


SLOW_TEST = "import time\n\n\ndef test_takes_a_while():\n    time.sleep(2)\n"


@pytest.fixture(scope="module")
def slow_calc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The calc repository plus a test that sleeps 2 s: its finalize takes over 4 s."""
    repo = tmp_path_factory.mktemp("slow") / "calc"
    make_calc_repo(repo)
    (repo / "tests" / "test_slow.py").write_text(SLOW_TEST)
    git(repo, "add", ".")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "slow")
    return repo


@pytest.fixture(scope="module")
def live_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A no-login dashboard over an empty database of its own, for traces a test finalizes."""
    tmp = tmp_path_factory.mktemp("serve-live")
    env = server_env(
        tmp / "data",
        f"sqlite:///{tmp / 'traces.db'}",
        DEBUGTRACE_ALLOW_LOCAL_REPOS="1",
        DEBUGTRACE_GRADER="heuristic",
    )
    with Server(env, tmp / "server.log") as server:
        yield server


@dataclass
class Browsing:
    """One page in a fresh context, and what it did."""

    page: Page
    context: BrowserContext
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def track(self, page: Page) -> Page:
        """Record what ``page`` (this one, or another tab of the context) does."""
        page.on("request", self.on_request)
        page.on("console", self.on_console)
        page.on("pageerror", self.on_page_error)
        return page

    def new_tab(self) -> Page:
        """Another page in the same context (same cookies), recorded too."""
        return self.track(self.context.new_page())

    def on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def on_page_error(self, error: Exception) -> None:
        self.page_errors.append(str(error))

    def screenshot(self, name: str) -> Path:
        """A full-page screenshot into ``test-artifacts/dashboard/NAME.png``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def open_page(browser: Browser, server: Server, **context_options: object) -> Browsing:
    """A new context (no cookies, ``base_url`` = the server) with one recorded page."""
    options: dict[str, object] = {"viewport": {"width": 1200, "height": 800}, **context_options}
    context = browser.new_context(base_url=server.url, **options)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    page = context.new_page()
    browsing = Browsing(page, context)
    browsing.track(page)
    return browsing


def close_page(browsing: Browsing, origin: str) -> None:
    """Close the context; fail if any request of it went anywhere but ``origin``."""
    browsing.context.close()
    elsewhere = [url for url in browsing.requests if not url.startswith(origin + "/")]
    assert not elsewhere, f"requests left {origin}: {elsewhere}"


@pytest.fixture
def browsing(browser: Browser, dashboard: Server) -> Iterator[Browsing]:
    """A fresh page on the no-login dashboard (desktop size, 1200x800)."""
    b = open_page(browser, dashboard)
    yield b
    close_page(b, dashboard.url)


@pytest.fixture
def phone(browser: Browser, dashboard: Server) -> Iterator[Browsing]:
    """A fresh page on the no-login dashboard at a phone's size (360x740)."""
    b = open_page(browser, dashboard, viewport={"width": 360, "height": 740})
    yield b
    close_page(b, dashboard.url)


@pytest.fixture
def live_browsing(browser: Browser, live_dashboard: Server) -> Iterator[Browsing]:
    """A fresh page on ``live_dashboard``."""
    b = open_page(browser, live_dashboard)
    yield b
    close_page(b, live_dashboard.url)


@pytest.fixture
def token_browsing(browser: Browser, token_dashboard: Server) -> Iterator[Browsing]:
    """A fresh page (not signed in) on the token-protected dashboard."""
    b = open_page(browser, token_dashboard)
    yield b
    close_page(b, token_dashboard.url)
