"""Issue 14, item 5: the open loopback server took cross-site writes and DNS rebinding.

Before, any web page could make the browser of someone running ``debugtrace serve`` POST a
``text/plain`` body (no CORS preflight) to ``http://127.0.0.1:8000/api/traces``: a trace with the
attacker's repository and test code, finalized on that machine. Through DNS rebinding
(``rebind.evil.example`` resolving to 127.0.0.1) a page could even read the answers. Now:

- API writes take ``application/json`` only (415): a page cannot send JSON cross-site without a
  preflight, which the server never grants;
- without a token, only loopback ``Host`` names are answered (400), only loopback clients (403),
  and a write whose ``Origin`` is another site's, or that the browser marks ``Sec-Fetch-Site:
  cross-site``, is refused (403);
- the dashboard's own forms (same origin, CSRF token) keep working.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from debugtrace import Collector, Settings
from debugtrace.server.app import create_app

LOCAL = "http://127.0.0.1:8000"
TRACE = {"developer_id": "dev", "repo_url": "https://example.com/r.git", "bug_description": "b"}


@pytest.fixture
def collector(settings: Settings) -> Collector:
    return Collector(
        settings=settings.model_copy(update={"sandbox": "local", "grader": "heuristic"})
    )


@pytest.fixture
def client(collector: Collector) -> Iterator[TestClient]:
    """The open server (no token anywhere), called as a browser on this machine would."""
    with TestClient(create_app(collector=collector), base_url=LOCAL) as c:
        yield c


def stored(collector: Collector) -> int:
    return len(collector.traces().items)


def test_a_text_plain_post_from_any_page_stores_nothing(
    client: TestClient, collector: Collector
) -> None:
    body = json.dumps(TRACE).encode()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x"):
        r = client.post("/api/traces", content=body, headers={"Content-Type": ctype})
        assert r.status_code == 415, (ctype, r.text)
        assert "application/json" in r.json()["detail"]
    r = client.post("/api/traces", params={"finalize": "false"}, content=body)  # no type at all
    assert r.status_code == 415
    assert stored(collector) == 0
    # The events endpoint too, with a plain body.
    tid = client.post("/api/traces", params={"finalize": "false"}, json=TRACE).json()["id"]
    r = client.post(
        f"/api/traces/{tid}/events",
        content=b'[{"type": "reasoning", "details": {"text": "x"}}]',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    assert client.get(f"/api/traces/{tid}").json()["events"] == []


@pytest.mark.parametrize("host", ["rebind.evil.example", "rebind.evil.example:8000", "", "a b"])
def test_a_foreign_host_name_is_not_served_dns_rebinding(
    client: TestClient, collector: Collector, host: str
) -> None:
    headers = {"Host": host}
    assert client.get("/api/traces", headers=headers).status_code == 400
    assert client.get("/", headers=headers).status_code == 400
    r = client.post("/api/traces", json=TRACE, headers=headers)
    assert r.status_code == 400
    assert "Host" in r.json()["detail"]
    assert stored(collector) == 0


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "localhost"])
def test_loopback_host_names_are_served(client: TestClient, host: str) -> None:
    assert client.get("/api/traces", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://127.0.0.1:9999"},  # another server on this machine
        {"Origin": "null"},  # a sandboxed frame, a file:// page
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ],
)
def test_a_cross_site_write_is_refused(
    client: TestClient, collector: Collector, headers: dict[str, str]
) -> None:
    r = client.post("/api/traces", params={"finalize": "false"}, json=TRACE, headers=headers)
    assert r.status_code == 403, r.text
    assert stored(collector) == 0
    tid = client.post("/api/traces", params={"finalize": "false"}, json=TRACE).json()["id"]
    # A body-less POST (finalize) is a "simple" request too.
    assert client.post(f"/api/traces/{tid}/finalize", headers=headers).status_code == 403
    assert collector.get(tid).status == "open"


def test_a_same_origin_write_is_taken(client: TestClient, collector: Collector) -> None:
    r = client.post(
        "/api/traces",
        params={"finalize": "false"},
        json=TRACE,
        headers={"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"},
    )
    assert r.status_code == 201, r.text


def test_a_client_off_this_machine_is_refused_while_no_token_exists(collector: Collector) -> None:
    """An open server bound beyond loopback by mistake (uvicorn run by hand, a container's
    0.0.0.0) still answers nobody else."""

    async def call(client: tuple[str, int]) -> int:
        transport = httpx.ASGITransport(app=create_app(collector=collector), client=client)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as c:
            return (await c.get("/api/traces")).status_code

    assert asyncio.run(call(("203.0.113.7", 50000))) == 403
    assert asyncio.run(call(("127.0.0.1", 50000))) == 200


def test_the_dashboards_own_forms_keep_working(client: TestClient, collector: Collector) -> None:
    tid = str(collector.submit(TRACE).id)
    page = client.get(f"/traces/{tid}")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    r = client.post(
        f"/traces/{tid}/regrade",
        data={"csrf": csrf.group(1)},
        headers={"Origin": LOCAL, "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert collector.get(tid).result.grades  # the heuristic grader ran
