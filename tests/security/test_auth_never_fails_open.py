"""Issue 14, item 4 (and the low "open for up to 5 s after the first token"): authentication
never fails open.

Before, with no admin token and one developer token, deleting the token rows made the server open
again (any token, or none, was admin): whether tokens were needed was asked of ``has_tokens()``
per request (cached for 5 s), and a new server over such a store started open. The other way
round, an open server kept answering everyone for up to 5 s after the first token was created.

Now a store that ever issued a token keeps a persisted "secured" flag, a server decides at start
and never reopens, and an open server checks the flag on every request until it is set.
"""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from debugtrace import Collector, Settings
from debugtrace.server.app import create_app
from debugtrace.server.auth import Authenticator

LOCAL = "http://127.0.0.1:8000"
TRACE = {"developer_id": "alice", "repo_url": "https://example.com/r.git", "bug_description": "b"}


def settings_for(tmp: Path) -> Settings:
    return Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'traces.db'}",
        load_plugins="",
        sandbox="local",
    )


def delete_every_token_row(settings: Settings) -> None:
    """What an operator "cleaning up" (or anyone with the database) might do."""
    engine = sa.create_engine(settings.sqlalchemy_url())
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM tokens")
    finally:
        engine.dispose()


def past_any_cache() -> None:
    # The old code cached "are there tokens" for Authenticator.TTL_S seconds.
    time.sleep(getattr(Authenticator, "TTL_S", 0) + 0.2)


def assert_closed(client: TestClient) -> None:
    assert client.get("/api/traces").status_code == 401
    anything = {"Authorization": "Bearer anything"}
    assert client.get("/api/traces", headers=anything).status_code == 401
    r = client.post("/api/traces", params={"finalize": "false"}, json=TRACE)
    assert r.status_code == 401, r.text


def test_deleting_every_token_row_does_not_reopen_a_running_server(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    collector = Collector(settings=settings)
    collector.create_token("alice")
    with TestClient(create_app(collector=collector), base_url=LOCAL) as client:
        assert_closed(client)
        delete_every_token_row(settings)
        past_any_cache()
        assert_closed(client)


def test_a_store_that_issued_a_token_stays_secured_for_a_new_server(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with Collector(settings=settings) as collector:
        collector.create_token("alice")
    delete_every_token_row(settings)
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        assert_closed(client)


def test_the_first_token_closes_an_open_server_at_once(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    with TestClient(create_app(settings), base_url=LOCAL) as client:
        assert client.get("/api/traces").status_code == 200  # open: no token exists anywhere
        # Another process (`debugtrace token create`) issues the first token ...
        with Collector(settings=settings) as cli:
            cli.create_token("alice")
        # ... and the very next request needs one.
        assert_closed(client)
