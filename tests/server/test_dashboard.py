"""The web dashboard (server side): pages, filters, actions, auth, escaping, charts.

Most tests drive the real app in-process through Starlette's TestClient (httpx) over a store
seeded directly; one starts ``debugtrace serve`` to check the installed package serves it all.
The browser tests (JS, layout, keyboard) are in test_dashboard_e2e.py.
"""

from __future__ import annotations

import ast
import contextlib
import html
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from debugtrace import Collector, Settings
from debugtrace.results import Grade, TraceResult, Validation
from debugtrace.server.app import create_app
from debugtrace.server.dashboard import CSP, charts
from debugtrace.server.dashboard.views import PAGE_SIZE, split_diff
from debugtrace.testing import DefaultReads
from support import ROOT
from support.calc_repo import example_trace, make_calc_repo
from support.server_process import FAST_TEST_COMMAND, Server, server_env

DASHBOARD = ROOT / "src" / "debugtrace" / "server" / "dashboard"
ADMIN_TOKEN = "admin-token-for-dashboard-tests"
EVIL = "<script>alert('x')</script>"
EVIL_IMG = '<img src=x onerror="alert(1)">'
LOCAL = "http://127.0.0.1"
"""In-process clients call the app by a loopback name: a server without a token answers no
other Host (DNS rebinding)."""


def settings_for(tmp: Path, **changes: Any) -> Settings:
    return Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'traces.db'}",
        load_plugins="",
        allow_local_repos=True,
        sandbox="local",
        grader="heuristic",
        test_command=FAST_TEST_COMMAND,
        **changes,
    )


# -- the seeded store ---------------------------------------------------------------------------

SEEDED = 32
"""alice and bob's traces: every third is bob's; repos r0/r1 alternate; the first 25 finalized
with a grade (score i % 5 + 1) and validated when i is even; the rest open and ungraded."""


def seed(collector: Collector) -> list[dict[str, Any]]:
    """Store the SEEDED traces (oldest first); returns what each should show."""
    out = []
    for i in range(SEEDED):
        trace = collector.submit(
            {
                "developer_id": "bob" if i % 3 == 0 else "alice",
                "repo_url": f"https://example.com/r{i % 2}.git",
                "bug_description": f"seeded bug {i}",
                "events": [{"type": "reasoning", "details": {"text": f"thought {i}"}}],
            }
        )
        expect: dict[str, Any] = {
            "id": trace.id,
            "developer": trace.developer_id,
            "repo": trace.repo_url,
            "status": "open",
            "score": None,
            "validated": None,
        }
        if i < 25:
            result = TraceResult(
                validation=Validation(fix_validated=i % 2 == 0),
                grades=[Grade(score=i % 5 + 1, grader="heuristic")],
            )
            collector.storage.save_result(str(trace.id), result)
            collector.storage.set_status(str(trace.id), "finalized")
            expect.update(status="finalized", score=i % 5 + 1, validated=i % 2 == 0)
        out.append(expect)
    return out


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An open (no token) app over a store holding the seeded traces, the calc example finalized
    for real (local sandbox), and a trace full of markup."""
    tmp = tmp_path_factory.mktemp("dashboard")
    repo = tmp / "calc"
    make_calc_repo(repo)
    collector = Collector(settings=settings_for(tmp))
    seeded = seed(collector)
    calc = collector.submit(example_trace(repo, developer_id="carol"))
    done = collector.finalize(str(calc.id))
    assert done.result.validation is not None and done.result.validation.fix_validated
    evil = collector.submit(
        {
            "developer_id": "mallory",
            "repo_url": f"https://example.com/{EVIL_IMG}",
            "bug_description": f"{EVIL} {EVIL_IMG}",
            "metadata": {"harness": EVIL},
            "events": [
                {
                    "type": "reasoning",
                    "details": {"text": EVIL_IMG, "reasoning_type": EVIL, "confidence": "high"},
                },
                {
                    "type": "command",
                    "details": {"command": f"echo {EVIL}", "output": EVIL_IMG, "exit_code": 1},
                },
                {
                    "type": "edit",
                    "details": {
                        "file": f"{EVIL_IMG}.py",
                        "diff": f"--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-{EVIL}\n+{EVIL_IMG}\n",
                    },
                },
            ],
        }
    )
    with TestClient(create_app(collector=collector), base_url=LOCAL) as client:
        yield {
            "client": client,
            "collector": collector,
            "seeded": seeded,
            "calc": str(calc.id),
            "evil": str(evil.id),
        }


@pytest.fixture
def client(store: dict[str, Any]) -> TestClient:
    return store["client"]  # type: ignore[no-any-return]


# -- reading pages --------------------------------------------------------------------------------


def rows(page: str) -> list[dict[str, str]]:
    """The trace list's rows: id, status and the text of each cell by its class."""
    out = []
    for m in re.finditer(
        r'<tr data-trace-id="([0-9a-f]+)" data-status="(\w+)">(.*?)</tr>', page, re.S
    ):
        cells = {
            c: html.unescape(re.sub(r"<[^>]+>", "", text)).strip()
            for c, text in re.findall(r'<td class="col-(\w+)[^"]*">(.*?)</td>', m.group(3), re.S)
        }
        out.append({"id": m.group(1), "status": m.group(2), **cells})
    return out


def link(page: str, rel: str) -> str | None:
    m = re.search(rf'<a rel="{rel}" href="([^"]+)"', page)
    return html.unescape(m.group(1)) if m else None


def csrf_of(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, "no CSRF field on the page"
    return m.group(1)


def list_all(client: TestClient | httpx.Client, **params: str) -> list[dict[str, str]]:
    """Every row of a filtered list, following the Next links."""
    r = client.get("/", params=params)
    assert r.status_code == 200, r.text
    out = rows(r.text)
    while (nxt := link(r.text, "next")) is not None:
        assert len(rows(r.text)) == PAGE_SIZE
        r = client.get(nxt)
        assert r.status_code == 200
        out += rows(r.text)
    return out


def seeded_rows(client: TestClient, **params: str) -> list[dict[str, str]]:
    found = list_all(client, **params)
    return [r for r in found if r["developer"] in ("alice", "bob")]


# -- the trace list -------------------------------------------------------------------------------


def test_the_list_pages_through_every_trace_newest_first(store: dict[str, Any]) -> None:
    client = store["client"]
    first = client.get("/")
    assert first.status_code == 200
    assert len(rows(first.text)) == PAGE_SIZE
    assert link(first.text, "prev") is None
    everything = list_all(client)
    ids = [r["id"] for r in everything]
    stored = [t.id for t in store["collector"].traces(limit=1000).items]
    assert len(stored) >= SEEDED + 2
    assert ids == stored
    assert ids == sorted(ids, reverse=True)  # ids sort by age: newest first
    second = client.get(link(first.text, "next") or "")
    assert link(second.text, "prev") is not None


def test_each_row_shows_the_trace_and_its_result(store: dict[str, Any]) -> None:
    by_id = {r["id"]: r for r in list_all(store["client"])}
    for expect in store["seeded"]:
        row = by_id[expect["id"]]
        assert row["developer"] == expect["developer"]
        assert row["repo"] == expect["repo"]
        assert row["status"] == expect["status"]
        assert row["score"] == (str(expect["score"]) if expect["score"] else "—")
        assert row["validated"] == {True: "yes", False: "no", None: "—"}[expect["validated"]]
        assert row["events"] == "1"
    calc = by_id[store["calc"]]
    assert (calc["status"], calc["validated"], calc["score"]) == ("finalized", "yes", "4")
    assert calc["bug"].startswith("divide() returns an int")


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({"developer": "bob"}, lambda e: e["developer"] == "bob"),
        ({"repo": "https://example.com/r1.git"}, lambda e: e["repo"].endswith("r1.git")),
        ({"status": "open"}, lambda e: e["status"] == "open"),
        ({"validated": "yes"}, lambda e: e["validated"] is True),
        ({"validated": "no"}, lambda e: e["validated"] is False),
        ({"min_score": "4"}, lambda e: (e["score"] or 0) >= 4),
        ({"max_score": "2"}, lambda e: e["score"] is not None and e["score"] <= 2),
        (
            {"developer": "alice", "validated": "yes", "min_score": "2", "max_score": "3"},
            lambda e: e["developer"] == "alice" and e["validated"] and 2 <= e["score"] <= 3,
        ),
    ],
)
def test_filters(store: dict[str, Any], params: dict[str, str], keep: Any) -> None:
    expected = [e["id"] for e in reversed(store["seeded"]) if keep(e)]
    assert expected, "the seed must have matches"
    assert [r["id"] for r in seeded_rows(store["client"], **params)] == expected


def test_the_filter_form_keeps_its_values_and_has_labels(client: TestClient) -> None:
    page = client.get("/", params={"developer": "bob", "status": "open", "sort": "-score"}).text
    form = re.search(r'<form id="filters" method="get".*?</form>', page, re.S)
    assert form
    for name in ("developer", "repo", "status", "validated", "min_score", "max_score", "sort"):
        field = re.search(rf'id="([\w-]+)" name="{name}"', form.group(0))
        assert field, name
        assert f'<label for="{field.group(1)}">' in form.group(0)
    assert 'name="developer" value="bob"' in form.group(0)
    assert '<option value="open" selected>' in form.group(0)
    assert '<option value="-score" selected>' in form.group(0)


@pytest.mark.parametrize("sort", ["-score", "score", "created"])
def test_sorts(store: dict[str, Any], sort: str) -> None:
    found = seeded_rows(store["client"], sort=sort)
    assert len(found) == SEEDED
    if sort == "created":
        assert [r["id"] for r in found] == [e["id"] for e in store["seeded"]]
        return
    scores = [int(r["score"]) for r in found if r["score"] != "—"]
    assert scores == sorted(scores, reverse=sort == "-score")
    assert all(r["score"] == "—" for r in found[len(scores) :])  # ungraded last


def test_no_match_and_bad_values(client: TestClient) -> None:
    page = client.get("/", params={"developer": "nobody"}).text
    assert '<p class="empty">No traces match.</p>' in page
    assert link(page, "next") is None
    page = client.get("/", params={"min_score": "9", "status": "weird", "developer": "bob"}).text
    assert page.count('role="alert"') == 2  # both ignored, said so
    assert len(rows(page)) > 0


def test_a_queued_trace_is_marked_for_live_updates(store: dict[str, Any]) -> None:
    collector: Collector = store["collector"]
    trace = collector.submit(
        {"developer_id": "dave", "repo_url": "https://x.org/r", "bug_description": "q"}
    )
    collector.storage.set_status(str(trace.id), "queued")
    page = store["client"].get("/", params={"developer": "dave"}).text
    assert f'<tr data-trace-id="{trace.id}" data-status="queued">' in page
    assert '<span class="status status-queued">queued</span>' in page
    assert '<script src="/static/dashboard.js" defer></script>' in page
    # What the script polls: the API, which answers the same browser.
    assert store["client"].get(f"/api/traces/{trace.id}").json()["status"] == "queued"


# -- the trace page -------------------------------------------------------------------------------


def test_the_trace_page_of_a_finalized_trace(store: dict[str, Any]) -> None:
    page = store["client"].get(f"/traces/{store['calc']}").text
    assert "<h1>divide() returns an int for exact results and crashes on zero</h1>" in page
    for fact in ("carol", "finalized", "Base commit"):
        assert fact in page

    stages = re.findall(r'<li class="stage stage-(\w+)" data-stage="(\w+)">', page)
    assert stages == [("ok", "workspace"), ("ok", "apply"), ("ok", "tests"), ("ok", "grade")]
    assert '<pre class="log">' in page and "s</span>" in page  # a log and a duration

    # Tests by class: what the fix changed open, the rest collapsed, counts first.
    tests = re.search(r'<section id="tests".*?</section>', page, re.S)
    assert tests
    counts = re.sub(
        r"<[^>]+>", "", re.search(r'<p id="test-counts".*?</p>', tests.group(0)).group(0)
    )
    assert counts == "1 fail_to_pass · 0 pass_to_fail · 1 pass_to_pass"
    groups = re.findall(r'<details class="test-group [^"]*" id="tests-(\w+)"[^>]*?( open)?>', page)
    assert groups == [("fail_to_pass", " open"), ("pass_to_fail", " open"), ("pass_to_pass", "")]
    f2p = re.search(r'id="tests-fail_to_pass".*?</details>', page, re.S)
    assert f2p and "<code>tests/test_calc.py::test_divide_by_zero</code>" in f2p.group(0)

    grade = re.search(r'<figure class="grade" data-grader="heuristic">.*?</figure>', page, re.S)
    assert grade and "4/5" in grade.group(0)
    svg = re.search(r"<svg .*?</svg>", grade.group(0), re.S)
    assert svg and 'role="img"' in svg.group(0) and "aria-labelledby=" in svg.group(0)
    assert svg.group(0).count('<rect class="bar') == 6  # one bar per rubric criterion
    assert "<h3>Strengths</h3>" in grade.group(0)

    events = re.findall(r'<li class="event event-(\w+)" id="event-(\d+)" data-seq="\d+">', page)
    assert events == [("reasoning", "1"), ("command", "2"), ("edit", "3"), ("reasoning", "4")]
    assert '<span class="reasoning-type">hypothesis</span>' in page
    assert '<span class="confidence">confidence medium</span>' in page
    assert '<code class="command">pytest -x tests/test_calc.py</code>' in page
    assert '<details class="output" open>\n      <summary>Output (1 line)</summary>' in page
    assert '<pre class="diff" tabindex="0">' in page
    assert '<span class="hl-gi">+    if b == 0:</span>' in page  # highlighted by pygments
    assert 'class="diff-split"' not in page
    assert '<button id="finalize" type="submit">Finalize again</button>' in page
    assert '<button id="regrade" type="submit">Re-grade</button>' in page


def test_the_side_by_side_diff(store: dict[str, Any]) -> None:
    page = store["client"].get(f"/traces/{store['calc']}", params={"view": "split"}).text
    table = re.search(r'<table class="diff-split">.*?</table>', page, re.S)
    assert table
    assert '<td class="code add"><span class="visually-hidden">added: </span>    if b == 0:' in (
        table.group(0)
    )
    assert '<pre class="diff"' not in page
    assert '<a href="?view=unified">unified</a>' in page


def test_split_diff_pairs_removed_and_added_lines() -> None:
    diff = "--- a/f\n+++ b/f\n@@ -3,3 +3,4 @@ def f\n ctx\n-old\n+new\n+extra\n tail\n"
    got = [
        (r.left_no, r.left, r.left_kind, r.right_no, r.right, r.right_kind)
        for r in split_diff(diff)
    ]
    assert got == [
        (None, "@@ -3,3 +3,4 @@ def f", "hunk", None, "@@ -3,3 +3,4 @@ def f", "hunk"),
        (3, "ctx", "ctx", 3, "ctx", "ctx"),
        (4, "old", "del", 4, "new", "add"),
        (None, "", "empty", 5, "extra", "add"),
        (5, "tail", "ctx", 6, "tail", "ctx"),
    ]


def test_an_unknown_or_unfinalized_trace(store: dict[str, Any]) -> None:
    r = store["client"].get("/traces/0123abc")
    assert r.status_code == 404
    assert "There is no trace 0123abc." in r.text
    opened = store["seeded"][-1]["id"]
    page = store["client"].get(f"/traces/{opened}").text
    assert re.findall(r'class="stage stage-(\w+)"', page) == ["pending"] * 4
    assert "Not finalized yet." in page and "Not graded yet." in page


# -- escaping and headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/", "/?developer=mallory", "/traces/{evil}", "/traces/{evil}?view=split", "/overview"]
)
def test_untrusted_text_is_escaped_and_the_policy_is_strict(
    store: dict[str, Any], url: str
) -> None:
    r = store["client"].get(url.format(evil=store["evil"]))
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == CSP
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "no-store" in r.headers["cache-control"]
    assert "<script>alert" not in r.text
    assert "<img src=x" not in r.text
    assert r.text.count("<script") == 1  # the one static script
    assert " style=" not in r.text
    if "evil" in url:
        assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in r.text
        assert "&lt;img src=x onerror=" in r.text


def test_the_csp_is_the_contracts() -> None:
    assert CSP == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    )


def test_the_api_and_docs_keep_their_headers(client: TestClient) -> None:
    assert "content-security-policy" not in client.get("/docs").headers  # loads its own assets
    assert "content-security-policy" not in client.get("/api/traces").headers


def test_static_files_are_served_with_the_policy(client: TestClient) -> None:
    js = client.get("/static/dashboard.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert "/api/traces/" in js.text
    css = client.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["content-security-policy"] == CSP
    assert client.get("/static/../app.py").status_code == 404


def test_nothing_is_loaded_from_outside() -> None:
    files = [p for p in DASHBOARD.rglob("*") if p.suffix in (".html", ".js", ".css")]
    assert len(files) >= 7
    for path in files:
        text = path.read_text()
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/|@import", text), path
        assert " style=" not in text and "<style" not in text, path
        if path.suffix == ".html":
            assert "<script>" not in text, path  # only <script src=...>
            assert "|safe" not in text.replace(" ", ""), path


# -- actions: re-grade, finalize again ----------------------------------------------------------


def test_regrade_needs_the_forms_csrf_token(store: dict[str, Any]) -> None:
    client: TestClient = store["client"]
    url = f"/traces/{store['calc']}"
    page = client.get(url).text
    assert client.post(f"{url}/regrade", follow_redirects=False).status_code == 403
    r = client.post(f"{url}/regrade", data={"csrf": "forged"}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post(
        f"{url}/regrade",
        data={"csrf": csrf_of(page)},
        headers={"Sec-Fetch-Site": "cross-site"},
        follow_redirects=False,
    )
    assert r.status_code == 403
    # Another browser, without this one's CSRF cookie.
    stranger = TestClient(client.app, base_url=LOCAL)
    r = stranger.post(f"{url}/regrade", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert r.status_code == 403

    r = client.post(f"{url}/regrade", data={"csrf": csrf_of(page)}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == url
    shown = client.get(url).text
    assert '<p role="status" id="flash">Re-graded: heuristic 4/5</p>' in shown
    assert 'id="flash"' not in client.get(url).text  # shown once


def test_finalize_again_queues_a_job_and_reports_a_conflict(store: dict[str, Any]) -> None:
    client: TestClient = store["client"]
    collector: Collector = store["collector"]
    target = store["seeded"][0]["id"]
    url = f"/traces/{target}"
    token = csrf_of(client.get(url).text)
    collector.storage.set_status(target, "queued")  # as if a finalize were waiting
    r = client.post(f"{url}/finalize", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303
    page = client.get(url).text
    assert "A finalize of this trace is already queued or running." in page
    r = client.post(f"{url}/regrade", data={"csrf": token})
    assert "re-grade after it ends" in r.text
    collector.storage.set_status(target, "finalized")

    url = f"/traces/{store['calc']}"
    page = client.post(f"{url}/finalize", data={"csrf": token}).text  # follows the redirect
    m = re.search(r'<p role="status" id="flash">Finalize queued \(job ([0-9a-f]+)\)\.</p>', page)
    assert m, page
    deadline = time.monotonic() + 60
    while collector.job(m.group(1)).state not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert collector.job(m.group(1)).state == "done"
    assert collector.get(store["calc"]).status == "finalized"


# -- overview -------------------------------------------------------------------------------------


def hidden_table(page: str, figure: str) -> dict[str, list[str]]:
    fig = re.search(rf'<figure id="{figure}">.*?</figure>', page, re.S)
    assert fig, figure
    return {
        head: re.findall(r"<td>(\d+)</td>", cells)
        for head, cells in re.findall(r'<tr><th scope="row">([^<]+)</th>(.*?)</tr>', fig.group(0))
    }


def test_the_overview_charts_and_their_numbers(store: dict[str, Any]) -> None:
    page = store["client"].get("/overview").text
    assert re.search(r'<section id="overview"', page)
    for figure in ("score-distribution", "validated-share", "traces-per-developer"):
        fig = re.search(rf'<figure id="{figure}">.*?</figure>', page, re.S)
        assert fig and "<figcaption>" in fig.group(0)
        svg = re.search(r"<svg .*?</svg>", fig.group(0), re.S)
        assert svg and 'role="img"' in svg.group(0)
        ET.fromstring(svg.group(0))  # well-formed

    collector: Collector = store["collector"]
    traces = [collector.get(r["id"]) for r in list_all(store["client"])]
    scores = hidden_table(page, "score-distribution")
    for s in ("1", "2", "3", "4", "5"):
        assert scores[s] == [str(sum(t.result.score() == int(s) for t in traces))]
    assert scores["ungraded"] == [str(sum(t.result.score() is None for t in traces))]
    share = hidden_table(page, "validated-share")
    validated = sum(bool(t.result.validation and t.result.validation.fix_validated) for t in traces)
    assert share["validated"] == [str(validated)]
    weekly = hidden_table(page, "traces-per-developer")
    assert sum(int(n) for cells in weekly.values() for n in cells) == len(traces)


def test_a_backend_with_only_the_contracts_defaults_shows_the_same(
    store: dict[str, Any], tmp_path: Path
) -> None:
    client: TestClient = store["client"]
    inner = store["collector"].storage
    with (
        Collector(settings=settings_for(tmp_path), storage=DefaultReads(inner)) as other,
        TestClient(create_app(collector=other), base_url=LOCAL) as theirs,
    ):
        for params in (
            {},
            {"repo": "https://example.com/r1.git"},
            {"validated": "yes", "developer": "alice"},
            {"min_score": "2", "max_score": "4", "sort": "-score"},
            {"status": "open", "sort": "created"},
        ):
            assert list_all(theirs, **params) == list_all(client, **params), params
        ours, page = client.get("/overview").text, theirs.get("/overview").text
        for figure in ("score-distribution", "validated-share", "traces-per-developer"):
            assert hidden_table(page, figure) == hidden_table(ours, figure)
        trace = store["seeded"][3]["id"]
        assert theirs.get(f"/traces/{trace}").status_code == 200


def test_the_dashboard_reads_through_the_storage_contract() -> None:
    """No import of the SQL backend under server/, no probing a backend for undeclared methods."""
    server = DASHBOARD.parent
    for path in server.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not [n for n in names if n.startswith("debugtrace.storage.sql")], path
    for path in DASHBOARD.rglob("*.py"):
        assert "getattr(storage" not in path.read_text(), path
        assert "isinstance(storage" not in path.read_text(), path


# -- charts ---------------------------------------------------------------------------------------


def test_rubric_chart_draws_one_bar_per_criterion_and_escapes() -> None:
    svg = str(charts.rubric_chart("r<1>", "Rubric & co", {"a_b": 5, "<script>": 2, "low": 1}))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    bars = [r for r in root.iter(f"{ns}rect") if "bar" in r.get("class", "")]
    assert [float(b.get("width", 0)) for b in bars] == [200, 80, 40]  # 5, 2, 1 of 5
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "r<1>-title r<1>-desc"
    assert root.find(f"{ns}title").text == "Rubric & co"  # type: ignore[union-attr]
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "a b" in svg  # snake_case criteria read as words


def test_vertical_bars_scale_to_the_largest() -> None:
    root = ET.fromstring(str(charts.vertical_bars("c", "t", [("1", 2), ("2", 4), ("x", 0)])))
    heights = [float(r.get("height", 0)) for r in root.iter("{http://www.w3.org/2000/svg}rect")]
    assert heights == [75, 150, 0]
    assert "1: 2; 2: 4; x: 0" in str(charts.vertical_bars("c", "t", [("1", 2), ("2", 4), ("x", 0)]))


def test_share_bar_and_stacked_columns() -> None:
    share = str(charts.share_bar("s", "t", [("yes", 3), ("no", 1)]))
    assert "yes: 3 (75%)" in share and "no: 1 (25%)" in share
    ET.fromstring(share)
    ET.fromstring(str(charts.share_bar("s", "t", [("yes", 0)])))  # nothing yet: still drawn
    stacked = str(
        charts.stacked_columns("d", "t", ["2025-01-06", "2025-01-13"], {"a<b": [1, 2], "c": [0, 3]})
    )
    root = ET.fromstring(stacked)
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if "bar" in r.get("class", "")]
    assert len(bars) == 3  # zero counts draw nothing
    assert "a&lt;b" in stacked


# -- authentication -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An app with an admin token and a developer token for alice; one trace each of alice, bob."""
    tmp = tmp_path_factory.mktemp("secured")
    collector = Collector(settings=settings_for(tmp, api_token=ADMIN_TOKEN))
    alice_token = collector.storage.create_token("alice")
    ids = {
        dev: str(
            collector.submit(
                {
                    "developer_id": dev,
                    "repo_url": "https://x.org/r",
                    "bug_description": f"{dev}'s bug",
                }
            ).id
        )
        for dev in ("alice", "bob")
    }
    with TestClient(create_app(collector=collector), base_url=LOCAL) as client:
        yield {"app": client.app, "alice_token": alice_token, "ids": ids, "client": client}


def browser(secured: dict[str, Any]) -> contextlib.closing[TestClient]:
    """A fresh browser (its own cookies) on the secured app (whose lifespan the fixture runs)."""
    return contextlib.closing(TestClient(secured["app"], base_url=LOCAL))


def sign_in(client: TestClient, token: str, next_url: str = "/") -> httpx.Response:
    page = client.get("/login", params={"next": next_url})
    assert page.status_code == 200
    return client.post(
        "/login",
        data={"token": token, "csrf": csrf_of(page.text), "next": next_url},
        follow_redirects=False,
    )


def test_with_no_token_configured_there_is_no_login(client: TestClient) -> None:
    assert client.get("/").status_code == 200
    r = client.get("/login", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    assert "Sign out" not in client.get("/").text


def test_pages_redirect_to_the_login_form(secured: dict[str, Any]) -> None:
    with browser(secured) as b:
        for path in ("/", "/overview", f"/traces/{secured['ids']['bob']}?view=split"):
            r = b.get(path, follow_redirects=False)
            assert r.status_code == 303
            target = urlsplit(r.headers["location"])
            assert target.path == "/login"
            assert parse_qs(target.query)["next"] == [path]
        r = b.post(f"/traces/{secured['ids']['bob']}/regrade", follow_redirects=False)
        assert r.status_code == 303  # a form posted after the session ended: back to its page
        assert parse_qs(urlsplit(r.headers["location"]).query)["next"] == [
            f"/traces/{secured['ids']['bob']}"
        ]
        form = b.get("/login").text
        assert '<form id="login" method="post"' in form
        assert '<label for="token">' in form
        assert '<input id="token" name="token" type="password"' in form
        assert '<button type="submit">Sign in</button>' in form
        # The API still wants a token, and the dashboard's POSTs a session.
        assert b.get("/api/traces").status_code == 401


def test_a_wrong_token_shows_the_form_again(secured: dict[str, Any]) -> None:
    with browser(secured) as b:
        r = sign_in(b, "not-the-token")
        assert r.status_code == 401
        assert '<p role="alert" class="error">That token is not valid.' in r.text
        assert '<form id="login"' in r.text
        assert "debugtrace_session" not in r.headers.get("set-cookie", "")
        assert b.get("/", follow_redirects=False).status_code == 303


def test_the_admin_signs_in_once_and_out(secured: dict[str, Any]) -> None:
    with browser(secured) as b:
        bob = secured["ids"]["bob"]
        r = sign_in(b, ADMIN_TOKEN, next_url=f"/traces/{bob}")
        assert r.status_code == 303
        assert r.headers["location"] == f"/traces/{bob}"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("debugtrace_session=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert ADMIN_TOKEN not in cookie
        page = b.get(f"/traces/{bob}")
        assert page.status_code == 200 and "bob&#39;s bug" in page.text
        assert {r["id"] for r in rows(b.get("/").text)} == set(secured["ids"].values())
        assert b.get(f"/api/traces/{bob}").status_code == 200  # the cookie works for API reads

        out = b.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
        assert out.status_code == 303
        assert b.get("/", follow_redirects=False).status_code == 303


def test_a_developer_sees_only_their_own_traces(secured: dict[str, Any]) -> None:
    alice, bob = secured["ids"]["alice"], secured["ids"]["bob"]
    with browser(secured) as b:
        assert sign_in(b, secured["alice_token"]).status_code == 303
        listed = b.get("/", params={"developer": "bob"}).text
        assert [r["id"] for r in rows(listed)] == [alice]
        assert 'value="alice" readonly' in listed
        assert b.get(f"/traces/{bob}").status_code == 404
        page = b.get(f"/traces/{alice}").text
        assert b.post(f"/traces/{bob}/regrade", data={"csrf": csrf_of(page)}).status_code == 404
        assert "1 trace of alice" in b.get("/overview").text
        # The session cookie reads the API as alice, and only reads.
        assert b.get(f"/api/traces/{alice}").status_code == 200
        assert b.get(f"/api/traces/{bob}").status_code == 404
        assert [t["id"] for t in b.get("/api/traces").json()["items"]] == [alice]
        write = b.post(
            f"/api/traces/{alice}/events", json=[{"type": "reasoning", "details": {"text": "x"}}]
        )
        assert write.status_code == 401
        assert b.post(f"/api/traces/{alice}/finalize").status_code == 401


def test_a_forged_session_or_login_is_refused(secured: dict[str, Any]) -> None:
    with browser(secured) as b:
        b.cookies.set("debugtrace_session", "eyJ2Ijp7ImRldiI6bnVsbH0sImUiOjk5OTk5OTk5OTl9.forged")
        assert b.get("/", follow_redirects=False).status_code == 303
        assert b.get("/api/traces").status_code == 401
        # A login form posted from elsewhere (no CSRF token) is refused.
        r = b.post("/login", data={"token": ADMIN_TOKEN, "next": "/"}, follow_redirects=False)
        assert r.status_code == 403


def test_login_only_goes_back_to_local_pages(secured: dict[str, Any]) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        with browser(secured) as b:
            r = sign_in(b, ADMIN_TOKEN, next_url=target)
            assert r.status_code == 303
            assert r.headers["location"] == "/", target


# -- the real server ------------------------------------------------------------------------------


def test_debugtrace_serve_serves_the_dashboard(tmp_path: Path) -> None:
    env = server_env(tmp_path / "data", f"sqlite:///{tmp_path / 'traces.db'}")
    with Server(env, tmp_path / "server.log") as srv, srv.client() as http:
        page = http.get("/")
        assert page.status_code == 200
        assert page.headers["content-security-policy"] == CSP
        assert '<p class="empty">No traces match.</p>' in page.text
        for asset in ("/static/dashboard.js", "/static/dashboard.css"):
            assert http.get(asset).status_code == 200
        assert http.get("/overview").status_code == 200
