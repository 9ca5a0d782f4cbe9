"""Issue 14, item 4: dashboard sessions are checked against the store on every request.

Before, the session cookie was a signed "developer X until T": it kept working for its 8 hours
after the developer's token was revoked, and after "Sign out" (which only deleted the browser's
copy; a copied cookie stayed valid). Now the cookie holds the key of a session row that names the
token; every page and every API read looks it up, so revocation and sign-out end it at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from debugtrace import Collector, Settings
from debugtrace.server.app import create_app

LOCAL = "http://127.0.0.1:8000"
ADMIN_TOKEN = "admin-token-for-session-tests"


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "no CSRF field on the page"
    return m.group(1)


def sign_in(client: TestClient, token: str) -> httpx.Response:
    page = client.get("/login")
    return client.post(
        "/login",
        data={"token": token, "csrf": csrf_of(page.text), "next": "/"},
        follow_redirects=False,
    )


@pytest.fixture
def secured(settings: Settings) -> Iterator[dict[str, Any]]:
    settings = settings.model_copy(update={"sandbox": "local", "api_token": ADMIN_TOKEN})
    collector = Collector(settings=settings)
    alice = collector.create_token("alice")
    trace = collector.submit(
        {"developer_id": "alice", "repo_url": "https://example.com/r.git", "bug_description": "b"}
    )
    app = create_app(collector=collector)
    with TestClient(app, base_url=LOCAL):  # runs the lifespan once for every browser below
        yield {"app": app, "alice": alice, "trace": str(trace.id), "settings": settings}


def signed_out(client: TestClient, trace_id: str) -> bool:
    """Every page leads to the sign-in form and the cookie no longer reads the API."""
    page = client.get("/", follow_redirects=False)
    api = client.get(f"/api/traces/{trace_id}")
    to_login = page.status_code == 303 and "/login" in page.headers["location"]
    return to_login and api.status_code == 401


def test_revoking_a_token_ends_the_sessions_opened_with_it(secured: dict[str, Any]) -> None:
    with TestClient(secured["app"], base_url=LOCAL) as browser:
        assert sign_in(browser, secured["alice"]).status_code == 303
        assert browser.get("/", follow_redirects=False).status_code == 200
        assert browser.get(f"/api/traces/{secured['trace']}").status_code == 200
        # Revoked as `debugtrace token revoke` does it: the row is marked, from any process.
        engine = sa.create_engine(secured["settings"].sqlalchemy_url())
        with engine.begin() as conn:
            conn.execute(
                sa.text("UPDATE tokens SET revoked_at = :now WHERE developer_id = 'alice'"),
                {"now": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")},
            )
        engine.dispose()
        assert signed_out(browser, secured["trace"])


def test_signing_out_ends_the_session_even_for_a_copy_of_its_cookie(
    secured: dict[str, Any],
) -> None:
    with (
        TestClient(secured["app"], base_url=LOCAL) as browser,
        TestClient(secured["app"], base_url=LOCAL) as thief,
    ):
        assert sign_in(browser, ADMIN_TOKEN).status_code == 303
        page = browser.get("/")
        assert page.status_code == 200
        thief.cookies.set("debugtrace_session", browser.cookies["debugtrace_session"])
        assert thief.get("/", follow_redirects=False).status_code == 200  # a working copy ...
        out = browser.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
        assert out.status_code == 303
        assert signed_out(thief, secured["trace"])  # ... that signing out ended too
        assert signed_out(browser, secured["trace"])
