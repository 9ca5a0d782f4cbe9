"""The HTTP API through real HTTP: `debugtrace serve` runs as a subprocess, httpx is the client."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.calc_repo import example_trace, git, make_calc_repo
from support.server_process import Server, free_port, run_cli, server_env, wait_for_job

MAX_BODY = 100_000
FAIL_TO_PASS = ["tests/test_calc.py::test_divide_by_zero"]
ADMIN_TOKEN = "admin-secret-for-tests"
JSON = {"Content-Type": "application/json"}
"""API writes take JSON only (415 otherwise): bodies sent raw say so."""


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    return server_env(tmp / "data", f"sqlite:///{tmp / 'traces.db'}", **extra)


@pytest.fixture(scope="module")
def calc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo") / "calc"
    make_calc_repo(repo)
    return repo


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """No auth (loopback), local repositories allowed, a small body limit."""
    tmp = tmp_path_factory.mktemp("server")
    env = env_for(tmp, DEBUGTRACE_ALLOW_LOCAL_REPOS="1", DEBUGTRACE_MAX_BODY_BYTES=str(MAX_BODY))
    with Server(env, tmp / "server.log") as srv:
        yield srv


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def reasoning(text: str) -> dict[str, Any]:
    return {"type": "reasoning", "details": {"text": text}}


def new_trace(client: httpx.Client, **fields: Any) -> str:
    """Store a trace without finalizing it; returns its id."""
    doc = {
        "developer_id": "dev",
        "repo_url": "https://example.com/calc.git",
        "bug_description": "b",
        "events": [reasoning("first")],
        **fields,
    }
    r = client.post("/api/traces", params={"finalize": "false"}, json=doc)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


# -- every endpoint -------------------------------------------------------------------------------


def test_healthz_openapi_and_docs(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    spec = client.get("/openapi.json").json()
    assert set(spec["paths"]) == {
        "/healthz",
        "/api/traces",
        "/api/traces/{trace_id}",
        "/api/traces/{trace_id}/events",
        "/api/traces/{trace_id}/finalize",
        "/api/jobs/{job_id}",
    }
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert "swagger" in docs.text.lower()


def test_submit_queues_a_finalize_whose_result_is_stored(client: httpx.Client, calc: Path) -> None:
    r = client.post("/api/traces", json=example_trace(calc))
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/traces/{body['id']}"
    assert body["status"] == "queued"
    assert body["event_count"] == 4
    assert body["job"]["state"] == "queued"
    assert body["job"]["kind"] == "finalize"
    assert body["job"]["trace_id"] == body["id"]

    stored = client.get(r.headers["location"]).json()
    assert stored["id"] == body["id"]
    assert [e["seq"] for e in stored["events"]] == [1, 2, 3, 4]
    assert [e["type"] for e in stored["events"]] == ["reasoning", "command", "edit", "reasoning"]

    job = wait_for_job(client, body["job"]["id"])
    assert job["state"] == "done", job
    assert job["attempts"] == 1
    done = client.get(f"/api/traces/{body['id']}").json()
    assert done["status"] == "finalized"
    validation = done["result"]["validation"]
    assert validation["fail_to_pass"] == FAIL_TO_PASS
    assert validation["fix_validated"] is True
    assert validation["base_sha"] == git(calc, "rev-parse", "HEAD")


def test_submit_with_finalize_false_only_stores(client: httpx.Client, calc: Path) -> None:
    r = client.post("/api/traces", params={"finalize": "false"}, json=example_trace(calc))
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "open"
    assert r.json()["job"] is None
    stored = client.get(r.headers["location"]).json()
    assert stored["status"] == "open"


def test_add_events_as_a_list_and_as_an_object(client: httpx.Client) -> None:
    trace_id = new_trace(client)  # one event: seq 1
    r = client.post(f"/api/traces/{trace_id}/events", json=[reasoning("a"), reasoning("b")])
    assert r.status_code == 201, r.text
    assert r.json() == {"trace_id": trace_id, "count": 2, "first_seq": 2, "last_seq": 3}
    r = client.post(f"/api/traces/{trace_id}/events", json={"events": [reasoning("c")]})
    assert r.status_code == 201, r.text
    assert r.json() == {"trace_id": trace_id, "count": 1, "first_seq": 4, "last_seq": 4}
    r = client.post(f"/api/traces/{trace_id}/events", json=[])
    assert r.json() == {"trace_id": trace_id, "count": 0, "first_seq": None, "last_seq": None}
    events = client.get(f"/api/traces/{trace_id}").json()["events"]
    assert [(e["seq"], e["details"]["text"]) for e in events] == [
        (1, "first"),
        (2, "a"),
        (3, "b"),
        (4, "c"),
    ]


def test_finalize_endpoint_queues_a_job_and_refuses_a_second(
    client: httpx.Client, calc: Path
) -> None:
    r = client.post("/api/traces", params={"finalize": "false"}, json=example_trace(calc))
    trace_id = r.json()["id"]
    r = client.post(f"/api/traces/{trace_id}/finalize")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["state"] in ("queued", "running")
    assert job["trace_id"] == trace_id
    assert r.headers["location"] == f"/api/jobs/{job['id']}"
    # Finalize clones and runs the tests twice: far longer than the next request takes.
    again = client.post(f"/api/traces/{trace_id}/finalize")
    assert again.status_code == 409, again.text
    assert "detail" in again.json()
    assert client.get(r.headers["location"]).json()["id"] == job["id"]
    assert wait_for_job(client, job["id"])["state"] == "done"
    result = client.get(f"/api/traces/{trace_id}").json()["result"]
    assert result["validation"]["fail_to_pass"] == FAIL_TO_PASS


HELD_OUT_PATCH = (
    "--- a/tests/test_held_out.py\n+++ b/tests/test_held_out.py\n@@ -0,0 +1,2 @@\n"
    "+def test_nothing():\n+    pass\n"
)


def test_a_trace_carries_held_out_tests(client: httpx.Client) -> None:
    held = {"test_patch": HELD_OUT_PATCH, "fail_to_pass": FAIL_TO_PASS}
    trace_id = new_trace(client, held_out=held)
    assert client.get(f"/api/traces/{trace_id}").json()["held_out"] == held
    bad = client.post(
        "/api/traces",
        params={"finalize": "false"},
        json={"developer_id": "d", "repo_url": "r", "bug_description": "b", "held_out": {"x": 1}},
    )
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["held_out", "x"]


def test_finalize_takes_held_out_tests_in_its_body(client: httpx.Client, calc: Path) -> None:
    r = client.post("/api/traces", params={"finalize": "false"}, json=example_trace(calc))
    trace_id = r.json()["id"]
    body = {"test_patch": HELD_OUT_PATCH, "fail_to_pass": FAIL_TO_PASS}
    r = client.post(f"/api/traces/{trace_id}/finalize", json=body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["options"] == body  # the job runs finalize with them (FinalizeOptions)
    assert wait_for_job(client, job["id"])["state"] == "done"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"test_patch": 5}, ["test_patch"]),
        ({"fail_to_pass": "tests/test_calc.py::test_divide"}, ["fail_to_pass"]),
        ({"fail_to_pass": [""]}, ["fail_to_pass", 0]),
        ({"fail_to_pass": ["ok", 3]}, ["fail_to_pass", 1]),
        ({"test_patch": "a\x00b"}, ["test_patch"]),
        ({"repeat": 3}, ["repeat"]),
        ([], []),
    ],
    ids=["patch-not-text", "ids-not-a-list", "empty-id", "id-not-text", "nul", "unknown", "list"],
)
def test_a_bad_finalize_body_is_a_422_naming_the_field_and_queues_nothing(
    client: httpx.Client, body: Any, loc: list[Any]
) -> None:
    trace_id = new_trace(client)
    r = client.post(f"/api/traces/{trace_id}/finalize", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    assert client.get(f"/api/traces/{trace_id}").json()["status"] == "open"


def test_list_filters_and_pages_with_a_cursor(client: httpx.Client) -> None:
    dev = f"pager-{time.monotonic_ns()}"
    ids = [new_trace(client, developer_id=dev) for _ in range(5)]
    other = new_trace(client, developer_id=dev, repo_url="https://example.com/other.git")

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"developer_id": dev, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/traces", params=params).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [other, *reversed(ids)]  # newest first, each once

    by_repo = client.get(
        "/api/traces", params={"developer_id": dev, "repo_url": "https://example.com/other.git"}
    ).json()
    assert [item["id"] for item in by_repo["items"]] == [other]
    assert by_repo["items"][0]["event_count"] == 1
    assert by_repo["next_cursor"] is None
    open_ = client.get("/api/traces", params={"developer_id": dev, "status": "open"}).json()
    assert len(open_["items"]) == 6
    finalized = client.get("/api/traces", params={"developer_id": dev, "status": "finalized"})
    assert finalized.json()["items"] == []
    future = client.get(
        "/api/traces", params={"developer_id": dev, "since": "2999-01-01T00:00:00Z"}
    )
    assert future.json()["items"] == []


def test_list_searches_as_the_dashboard_does(client: httpx.Client) -> None:
    dev = f"search-{time.monotonic_ns()}"
    jinja = new_trace(
        client,
        developer_id=dev,
        repo_url="https://github.com/pallets/jinja.git",
        bug_description="{% include %} ignores 100% of the context",
    )
    new_trace(client, developer_id=dev, repo_url="https://github.com/psf/requests")

    def ids(**params: str) -> list[str]:
        r = client.get("/api/traces", params={"developer_id": dev, **params})
        assert r.status_code == 200, r.text
        return [item["id"] for item in r.json()["items"]]

    assert ids(q="INCLUDE") == [jinja]  # any case
    assert ids(q="100%") == [jinja] and ids(q="1_0%") == []  # % and _ are literal
    assert ids(repo_contains="Pallets/") == [jinja]
    assert len(ids(order="created")) == 2
    assert client.get("/api/traces", params={"order": "random"}).status_code == 422


# -- every error code ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/traces/0123456789abcdef01234567"),
        ("POST", "/api/traces/0123456789abcdef01234567/events"),
        ("POST", "/api/traces/0123456789abcdef01234567/finalize"),
        ("GET", "/api/jobs/0123456789abcdef01234567"),
        ("GET", "/api/no-such-route"),
    ],
)
def test_unknown_ids_are_404(client: httpx.Client, method: str, path: str) -> None:
    r = client.request(method, path, json=[reasoning("x")] if method == "POST" else None)
    assert r.status_code == 404, r.text
    assert isinstance(r.json()["detail"], str)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param(
            [reasoning("ok"), {"type": "command", "details": {"command": "x", "exit_code": "z"}}],
            ["events", 1, "details", "exit_code"],
            id="invalid-field",
        ),
        pytest.param(b'[{"type": "reasoning",', [], id="malformed-json"),
        pytest.param([{"type": "telepathy", "details": {}}], ["events", 0], id="unknown-type"),
    ],
)
def test_invalid_events_are_422_with_the_field_path(
    client: httpx.Client, body: Any, loc: list[Any]
) -> None:
    trace_id = new_trace(client)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post(f"/api/traces/{trace_id}/events", content=content, headers=JSON)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == loc
    assert r.json()["detail"][0]["msg"]
    # Nothing of a refused batch is stored.
    assert len(client.get(f"/api/traces/{trace_id}").json()["events"]) == 1


def test_invalid_trace_and_query_are_422(client: httpx.Client) -> None:
    r = client.post("/api/traces", json={"developer_id": "d", "repo_url": "https://x.org/r"})
    assert r.status_code == 422
    assert ["bug_description"] in [e["loc"] for e in r.json()["detail"]]
    r = client.post("/api/traces", content=b"not json", headers=JSON)
    assert r.status_code == 422
    r = client.get("/api/traces", params={"limit": 0})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", "limit"]


def test_body_over_the_limit_with_content_length_is_413(client: httpx.Client) -> None:
    trace_id = new_trace(client)
    big = json.dumps([reasoning("x" * 1000) for _ in range(200)]).encode()
    assert len(big) > MAX_BODY
    r = client.post(f"/api/traces/{trace_id}/events", content=big, headers=JSON)
    assert r.status_code == 413, r.text
    assert "DEBUGTRACE_MAX_BODY_BYTES" in r.json()["detail"]
    assert len(client.get(f"/api/traces/{trace_id}").json()["events"]) == 1


def test_streamed_body_over_the_limit_is_413(client: httpx.Client) -> None:
    trace_id = new_trace(client)

    def chunks() -> Iterator[bytes]:  # no length known up front: httpx sends it chunked
        yield b"["
        for _ in range(300):
            yield json.dumps(reasoning("y" * 1000)).encode() + b","
        yield b"]"

    r = client.post(f"/api/traces/{trace_id}/events", content=chunks(), headers=JSON)
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert len(client.get(f"/api/traces/{trace_id}").json()["events"]) == 1


def test_streamed_body_is_refused_without_reading_it_all(server: Server) -> None:
    """The body never ends: only a server that counts while reading can answer at all."""
    chunk = b"z" * 16384
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        # The answer is read while sending: the server may answer and close before the client
        # is done, and a connection reset would then discard an answer read only afterwards.
        answer: list[bytes] = []

        def read() -> None:
            try:
                answer.append(sock.makefile("rb").readline())
            except OSError as exc:  # reset before any answer: the assert below says so
                answer.append(repr(exc).encode())

        reader = threading.Thread(target=read)
        reader.start()
        sock.sendall(
            b"POST /api/traces/0123456789abcdef01234567/events HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:
            for _ in range(2 * MAX_BODY // len(chunk)):
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what it said is in `answer`
        # ... and no terminating 0-length chunk.
        reader.join(timeout=10)
    assert answer, "no answer"
    assert answer[0].startswith(b"HTTP/1.1 413"), answer[0]


# -- authentication -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """An admin token, and a developer token for alice made with the CLI on the same database.
    Local repositories are not allowed (the default)."""
    tmp = tmp_path_factory.mktemp("auth")
    env = env_for(tmp, DEBUGTRACE_API_TOKEN=ADMIN_TOKEN)
    made = run_cli(env, "token", "create", "alice")
    assert made.returncode == 0, made.stderr
    alice = made.stdout.strip()
    with Server(env, tmp / "server.log") as srv:
        yield srv, alice


def test_auth_requires_a_valid_token(auth_server: tuple[Server, str]) -> None:
    srv, _ = auth_server
    with srv.client() as anonymous:
        r = anonymous.get("/api/traces")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/healthz").status_code == 200  # liveness needs no token
    with srv.client(token="wrong") as wrong:
        r = wrong.get("/api/traces")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    with srv.client(token=ADMIN_TOKEN) as admin:
        assert admin.get("/api/traces").status_code == 200


def test_a_developer_token_sees_only_its_own_traces(auth_server: tuple[Server, str]) -> None:
    srv, alice_token = auth_server
    with srv.client(token=ADMIN_TOKEN) as admin, srv.client(token=alice_token) as alice:
        bobs = new_trace(admin, developer_id="bob")
        hers = new_trace(alice, developer_id="alice")
        assert alice.get(f"/api/traces/{hers}").json()["developer_id"] == "alice"
        r = alice.post(f"/api/traces/{hers}/events", json=[reasoning("more")])
        assert r.status_code == 201

        # Bob's trace does not exist for alice, whatever she tries.
        assert alice.get(f"/api/traces/{bobs}").status_code == 404
        assert alice.post(f"/api/traces/{bobs}/events", json=[reasoning("x")]).status_code == 404
        assert alice.post(f"/api/traces/{bobs}/finalize").status_code == 404
        r = alice.post(
            "/api/traces",
            params={"finalize": "false"},
            json={"developer_id": "bob", "repo_url": "https://x.org/r", "bug_description": "b"},
        )
        assert r.status_code == 403, r.text

        listed = [t["id"] for t in alice.get("/api/traces").json()["items"]]
        assert listed == [hers]
        sneaky = alice.get("/api/traces", params={"developer_id": "bob"}).json()["items"]
        assert [t["id"] for t in sneaky] == [hers]
        everyone = {t["id"] for t in admin.get("/api/traces").json()["items"]}
        assert {hers, bobs} <= everyone


def test_a_server_refuses_local_repositories_unless_allowed(
    auth_server: tuple[Server, str], calc: Path
) -> None:
    srv, _ = auth_server
    with srv.client(token=ADMIN_TOKEN) as admin:
        r = admin.post("/api/traces", json=example_trace(calc))
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["loc"] == ["repo_url"]
        assert "DEBUGTRACE_ALLOW_LOCAL_REPOS" in r.json()["detail"][0]["msg"]


def test_serving_beyond_loopback_without_a_token_is_refused(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    try:
        done = run_cli(env, "serve", "--host", "0.0.0.0", "--port", str(free_port()), timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("`debugtrace serve --host 0.0.0.0` started serving without any token")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert "DEBUGTRACE_API_TOKEN" in lines[0]


# -- restart in the middle of a finalize --------------------------------------------------------


SLOW_S = 3


@pytest.mark.slow
def test_a_finalize_killed_mid_run_is_resumed_after_a_restart(tmp_path: Path) -> None:
    repo = tmp_path / "calc"
    make_calc_repo(repo)
    (repo / "tests" / "test_slow.py").write_text(
        f"import time\n\n\ndef test_slow():\n    time.sleep({SLOW_S})\n"
    )
    git(repo, "add", ".")
    git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "slow")
    env = env_for(tmp_path, DEBUGTRACE_ALLOW_LOCAL_REPOS="1")

    first = Server(env, tmp_path / "first.log").start()
    try:
        with first.client() as c:
            r = c.post("/api/traces", json=example_trace(repo))
            assert r.status_code == 201, r.text
            trace_id, job_id = r.json()["id"], r.json()["job"]["id"]
            assert wait_for_job(c, job_id, states=("running",), timeout=30)["attempts"] == 1
            time.sleep(SLOW_S)  # past the clone, into the first (slow) test run
            assert c.get(f"/api/jobs/{job_id}").json()["state"] == "running"
    finally:
        first.kill()

    with Server(env, tmp_path / "second.log", port=free_port()) as second, second.client() as c:
        job = wait_for_job(c, job_id, timeout=90)
        assert job["state"] == "done", (job, second.output())
        assert job["attempts"] == 2
        trace = c.get(f"/api/traces/{trace_id}").json()
        assert trace["status"] == "finalized"
        assert len(trace["events"]) == 4
        assert trace["result"]["validation"]["fail_to_pass"] == FAIL_TO_PASS
        assert [t["id"] for t in c.get("/api/traces").json()["items"]] == [trace_id]


# -- the OpenAPI schema against the live server -------------------------------------------------


@pytest.mark.slow
def test_the_server_conforms_to_its_openapi_schema(server: Server) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.config import SchemathesisConfig
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    # Refusing schema-invalid input: schemathesis' list of refusals lacks 413, which a body over
    # the server's limit gets (a generated list of thousands of test ids) before it is parsed.
    refusals = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": [*refusals, "5xx"]}}}
    )
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json", config=config, timeout=10)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7

    def exercise(operation: Any, mode: Any) -> None:
        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            if case.method.upper() == "POST" and case.path == "/api/traces":
                case.query = {**(case.query or {}), "finalize": "false"}  # no finalize storm
            # Every check (no 5xx, status codes, content types, headers and bodies as documented,
            # schema-invalid input refused) except "schema-valid input is accepted": the schema
            # cannot say which repo_url a server takes or the size limits.
            case.call_and_validate(
                base_url=server.url, timeout=30, excluded_checks=[positive_data_acceptance]
            )

        check()

    for operation in operations:
        exercise(operation, schemathesis.GenerationMode.POSITIVE)
        if operation.body or operation.query:  # a bare path parameter has no invalid form
            exercise(operation, schemathesis.GenerationMode.NEGATIVE)


# -- load ---------------------------------------------------------------------------------------


CLIENTS, TRACES, LOAD_S, BATCH = 50, 10, 5.0, 5


async def _append_until(
    base_url: str, trace_id: str, client_id: int, stop_at: float
) -> tuple[int, list[int]]:
    """Append batches of (client id, counter) events; returns (events accepted, statuses)."""
    accepted, statuses, counter = 0, [], 0
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as c:
        while time.monotonic() < stop_at:
            batch = [reasoning(f"{client_id}:{counter + i}") for i in range(BATCH)]
            r = await c.post(f"/api/traces/{trace_id}/events", json=batch)
            statuses.append(r.status_code)
            if r.status_code == 201:
                accepted += r.json()["count"]
                counter += BATCH
    return accepted, statuses


@pytest.mark.slow
def test_concurrent_appends_keep_every_event_in_order(server: Server, client: httpx.Client) -> None:
    traces = [new_trace(client, developer_id="load", events=[]) for _ in range(TRACES)]

    async def run() -> list[tuple[int, list[int]]]:
        stop_at = time.monotonic() + LOAD_S
        return await asyncio.gather(
            *(_append_until(server.url, traces[i % TRACES], i, stop_at) for i in range(CLIENTS))
        )

    results = asyncio.run(run())
    statuses = [s for _, ss in results for s in ss]
    assert set(statuses) == {201}, f"non-201 answers: {sorted(set(statuses))}"
    expected: dict[str, int] = defaultdict(int)
    for i, (accepted, _) in enumerate(results):
        expected[traces[i % TRACES]] += accepted
    assert sum(expected.values()) > 0

    for trace_id in traces:
        events = client.get(f"/api/traces/{trace_id}").json()["events"]
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))  # gap-free, no dupes
        assert len(events) == expected[trace_id]  # nothing lost, nothing extra
        texts = [e["details"]["text"] for e in events]
        assert len(set(texts)) == len(texts)
        per_client: dict[str, list[int]] = defaultdict(list)
        for text in texts:
            who, n = text.split(":")
            per_client[who].append(int(n))
        for who, counters in per_client.items():
            # Each client's events in the order it sent them, none missing in between.
            assert counters == list(range(len(counters))), who
