"""Issue 14, item 12 (server parts): inputs and outages that gave 500s.

- ``[`` or ``]`` in ``repo_url`` (``urlsplit`` raised ValueError in the URL check): 422 naming
  ``repo_url``.
- NUL in an id on PostgreSQL (jobs, finalize, events, dashboard): ids are checked against their
  form (24 hex digits) before the store is asked: 422 naming the path parameter, or the
  dashboard's 404 page. NUL in a filter is a 422 naming it.
- The database going away: every route, for the admin, a developer token and the open server,
  answers 503 saying the database is unavailable (job reads and every developer-token request
  were 500).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from debugtrace import Collector, Settings
from debugtrace.server.app import create_app
from support.services import drop_pg_database

LOCAL = "http://127.0.0.1:8000"
ADMIN = "admin-token-for-500-tests"
NUL_ID = "0123456789ab%00cdef01234567"
REPO = "https://example.com/r.git"


def settings_for(tmp: Path, url: str, **changes: Any) -> Settings:
    return Settings(
        data_dir=tmp / "data", database_url=url, load_plugins="", sandbox="local", **changes
    )


@pytest.mark.parametrize("url", ["https://[x/repo.git", "https://]x/repo.git", "https://[::1/r"])
def test_brackets_in_repo_url_are_a_422_naming_it(tmp_path: Path, url: str) -> None:
    collector = Collector(settings=settings_for(tmp_path, f"sqlite:///{tmp_path / 't.db'}"))
    trace = {"developer_id": "d", "repo_url": url, "bug_description": "b"}
    with TestClient(
        create_app(collector=collector), base_url=LOCAL, raise_server_exceptions=False
    ) as client:
        r = client.post("/api/traces", params={"finalize": "false"}, json=trace)
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["repo_url"]
    assert collector.traces().items == []


@pytest.fixture
def pg_app(pg_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Collector, str]]:
    collector = Collector(settings=settings_for(tmp_path, pg_url, api_token=ADMIN))
    alice = collector.create_token("alice")
    with TestClient(
        create_app(collector=collector), base_url=LOCAL, raise_server_exceptions=False
    ) as client:
        yield client, collector, alice


@pytest.mark.postgres
def test_nul_in_an_id_is_refused_before_the_database(
    pg_app: tuple[TestClient, Collector, str],
) -> None:
    client, _, alice = pg_app
    for token in (ADMIN, alice):
        h = {"Authorization": f"Bearer {token}"}
        for method, path, field in [
            ("GET", f"/api/traces/{NUL_ID}", "trace_id"),
            ("POST", f"/api/traces/{NUL_ID}/events", "trace_id"),
            ("POST", f"/api/traces/{NUL_ID}/finalize", "trace_id"),
            ("GET", f"/api/jobs/{NUL_ID}", "job_id"),
        ]:
            r = client.request(method, path, headers=h, json=[] if method == "POST" else None)
            assert r.status_code == 422, (method, path, r.text)
            assert ["path", field] in [e["loc"] for e in r.json()["detail"]]
        for param in ("developer_id", "repo_url"):
            r = client.get(f"/api/traces?{param}=a%00b", headers=h)
            assert r.status_code == 422, r.text
            assert r.json()["detail"][0]["loc"] == ["query", param]
    # The dashboard (signed in as the admin): its 404 page, and filters that match nothing.
    page = client.get("/login")
    csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"token": ADMIN, "csrf": csrf, "next": "/"})
    assert client.get(f"/traces/{NUL_ID}").status_code == 404
    assert client.get(f"/traces/{NUL_ID}?view=split").status_code == 404
    assert client.get("/?developer=a%00b&repo=x%00y").status_code == 200


@pytest.mark.postgres
def test_the_database_going_away_is_a_503_everywhere(
    pg_app: tuple[TestClient, Collector, str], pg_url: str
) -> None:
    client, collector, alice = pg_app
    tid = str(
        collector.submit({"developer_id": "alice", "repo_url": REPO, "bug_description": "b"}).id
    )
    job = collector.storage.create_job(tid, "grade", {})
    drop_pg_database(pg_url.rsplit("/", 1)[1])
    for token in (ADMIN, alice):
        h = {"Authorization": f"Bearer {token}"}
        for method, path in [
            ("GET", "/api/traces"),
            ("GET", f"/api/traces/{tid}"),
            ("POST", f"/api/traces/{tid}/events"),
            ("POST", f"/api/traces/{tid}/finalize"),
            ("GET", f"/api/jobs/{job.id}"),
            ("POST", "/api/traces"),
        ]:
            body: Any = None
            if method == "POST":
                body = [] if path.endswith("events") else None
                if path == "/api/traces":
                    body = {"developer_id": "alice", "repo_url": REPO, "bug_description": "b"}
            r = client.request(method, path, headers=h, json=body)
            assert r.status_code == 503, (token[:5], method, path, r.status_code, r.text)
            assert "detail" in r.json()
    assert client.get("/healthz").status_code == 503


@pytest.mark.postgres
def test_an_open_server_whose_database_went_away_answers_503(pg_url: str, tmp_path: Path) -> None:
    collector = Collector(settings=settings_for(tmp_path, pg_url))
    with TestClient(
        create_app(collector=collector), base_url=LOCAL, raise_server_exceptions=False
    ) as client:
        assert client.get("/api/traces").status_code == 200
        drop_pg_database(pg_url.rsplit("/", 1)[1])
        for path in ("/api/traces", "/", "/api/jobs/" + "0" * 24):
            r = client.get(path)
            assert r.status_code == 503, (path, r.text)  # never open on doubt, never a 500
