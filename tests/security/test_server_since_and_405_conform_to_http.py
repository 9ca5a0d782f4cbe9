"""Issue 14, low (schemathesis' conformance checks): ``since`` took ``0.5``, and a 405 named only
some of the allowed methods.

- ``since`` is documented as a date-time; pydantic also read a number as seconds since 1970. Now
  only an ISO 8601 date or date-time is taken (422 naming ``since`` otherwise).
- ``DELETE /api/traces`` answered 405 with ``Allow: POST`` (the methods of the first route that
  matched the path), though GET is allowed too. Now ``Allow`` lists every method of the path.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from debugtrace import Collector, Settings
from debugtrace.server.app import create_app

LOCAL = "http://127.0.0.1:8000"


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    collector = Collector(settings=settings.model_copy(update={"sandbox": "local"}))
    with TestClient(create_app(collector=collector), base_url=LOCAL) as c:
        yield c


@pytest.mark.parametrize("since", ["0.5", "1700000000", "-1", "now", "2025-13-01"])
def test_since_takes_only_dates(client: TestClient, since: str) -> None:
    r = client.get("/api/traces", params={"since": since})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "since"]


@pytest.mark.parametrize(
    "since", ["2025-01-31", "2025-01-31T12:00:00Z", "2025-01-31T12:00:00+02:00"]
)
def test_since_takes_iso_dates_and_date_times(client: TestClient, since: str) -> None:
    assert client.get("/api/traces", params={"since": since}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/traces", {"GET", "POST"}),
        ("PUT", "/api/traces", {"GET", "POST"}),
        ("DELETE", "/api/traces/" + "0" * 24, {"GET"}),
        ("GET", "/api/traces/" + "0" * 24 + "/finalize", {"POST"}),
        ("PATCH", "/api/jobs/" + "0" * 24, {"GET"}),
    ],
)
def test_a_405_lists_every_allowed_method(
    client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    r = client.request(method, path)
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} == allowed
