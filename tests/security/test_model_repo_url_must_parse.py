"""Issue 14, item 12: a `repo_url` with `[` or `]` where a URL cannot have them gave a 500 (urlsplit
raises ValueError on an invalid IPv6 host, and nothing caught it).

The model now refuses a URL (``scheme://...``) whose host or port does not parse, on the field
``repo_url`` (HTTP 422, CLI exit 2). Brackets stay legal where they are: in local paths, in
``user@host:path``, in a URL's path and query, around an IPv6 host, and in the user/password part
(where redaction puts ``[REDACTED:kind]``). A secret redacted out of a URL's *host* would leave a
URL the model refuses, which could then not be read back: ingest refuses it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from debugtrace import Collector, InvalidTrace, parse_trace

TRACE = {"developer_id": "dev", "bug_description": "b"}
TOKEN = "ghp_" + "a1B2c3D4e5" * 3 + "f6G7h8"  # a GitHub token's shape: the redactor finds it

MALFORMED = [
    "https://[x",
    "https://[x/repo.git",
    "http://]x/repo.git",
    "https://[not-an-address]/repo.git",
    "ssh://git@[::1/repo.git",
    "https://example.com:99999/repo.git",
    "https://example.com:http/repo.git",
    " https://[x",
    "file://[x/repo",
]

USABLE = [
    "https://example.com/repo.git",
    "https://[::1]/repo.git",
    "ssh://git@[2001:db8::1]:2222/repo.git",
    "https://example.com/a[1]/repo.git?ref=[x]",
    "https://user:[REDACTED:url-password]@example.com/repo.git",
    "/srv/repos/a[1]",
    "[weird]/relative",
    "git@example.com:team/a[1].git",
    "file:///srv/a[1]",
]


def errors(exc: pytest.ExceptionInfo[InvalidTrace]) -> dict[str, str]:
    return {e.where: e.msg for e in exc.value.errors}


@pytest.mark.parametrize("url", MALFORMED)
def test_a_url_whose_host_or_port_cannot_parse_is_refused_on_repo_url(url: str) -> None:
    with pytest.raises(InvalidTrace) as exc:
        parse_trace({**TRACE, "repo_url": url})
    assert "not a usable repository URL" in errors(exc)["repo_url"]


@pytest.mark.parametrize("url", USABLE)
def test_brackets_where_they_are_legal_are_kept(url: str) -> None:
    assert parse_trace({**TRACE, "repo_url": url}).repo_url == url


@pytest.mark.parametrize("url", MALFORMED[:3])
def test_an_untrusted_submit_says_invalid_trace_not_value_error(
    collector: Collector, url: str
) -> None:
    with pytest.raises(InvalidTrace) as exc:
        collector.submit({**TRACE, "repo_url": url}, untrusted=True)
    assert "repo_url" in errors(exc)
    assert list(collector.iter_traces()) == []


@pytest.fixture
def client(collector: Collector) -> Iterator[TestClient]:
    from debugtrace.server.app import create_app

    # No `with`: no lifespan (executor, housekeeping); a submit with ?finalize=false needs none.
    c = TestClient(
        create_app(collector=collector), "http://127.0.0.1", raise_server_exceptions=False
    )
    yield c
    c.close()


@pytest.mark.parametrize("url", ["https://[x", "https://[::1/r", "https://h:99999/r"])
def test_the_http_api_answers_422_naming_repo_url(client: TestClient, url: str) -> None:
    r = client.post(
        "/api/traces", params={"finalize": "false"}, json={**TRACE, "repo_url": url, "events": []}
    )
    assert r.status_code == 422, r.text
    assert [d["loc"] for d in r.json()["detail"]] == [["repo_url"]]


def test_a_secret_redacted_out_of_the_host_is_refused_not_stored(collector: Collector) -> None:
    # `[REDACTED:github-token]` as the host cannot parse: stored, the trace could not be read back
    # (nor exported, for anyone). Refused before storing, naming the field.
    with pytest.raises(InvalidTrace) as exc:
        collector.submit({**TRACE, "repo_url": f"https://{TOKEN}.example.com/repo.git"})
    assert "redacted" in errors(exc)["repo_url"]
    assert list(collector.iter_traces()) == []


def test_a_url_with_its_password_redacted_is_stored_read_back_and_exported(
    collector: Collector,
) -> None:
    stored = collector.submit({**TRACE, "repo_url": f"https://ci:{TOKEN}@example.com/repo.git"})
    got = collector.get(str(stored.id))
    assert got.repo_url.startswith("https://ci:[REDACTED:")
    assert TOKEN not in got.repo_url
    assert collector.export("otel", io.BytesIO()) == 1
