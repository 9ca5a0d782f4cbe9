"""The dashboard says what finalize could and could not find: a fix that could not be tested is
its own category ("could not test: <reason>", never "no"), the environment the tests ran in,
held-out tests and how they fared, and every earlier run of a trace (History).

Results are built by hand and saved through the storage, so these pages do not depend on a
sandbox: what they show is what a stored result says.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.server.test_dashboard import LOCAL, hidden_table, list_all, settings_for

from debugtrace import Collector
from debugtrace.results import Grade, Stage, TraceResult
from debugtrace.server.app import create_app
from debugtrace.testing import UNTESTED_REASON, example_validation

HELD_OUT_PATCH = (
    "--- a/tests/test_calc.py\n+++ b/tests/test_calc.py\n@@ -1 +1,3 @@\n import calc\n"
    "+def test_exact():\n+    assert calc.divide(4, 2) == 2\n"
)
EXPECTED = ["tests/test_calc.py::test_divide_by_zero", "tests/test_calc.py::test_exact"]


def _grade(score: int) -> Grade:
    return Grade(score=score, grader="heuristic", summary="s", rubric_version="r1")


def _at(day: int) -> datetime:
    return datetime(2026, 3, day, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Traces of dana: validated, not validated, could not test (graded 5 all the same),
    validated then finalized again when the repository was gone, and one with held-out tests
    one of which did not turn green."""
    tmp = tmp_path_factory.mktemp("verdicts")
    collector = Collector(settings=settings_for(tmp))

    def stored(result: TraceResult, **fields: Any) -> str:
        doc = {"developer_id": "dana", "repo_url": "https://example.com/r.git"}
        tid = str(collector.submit({**doc, "bug_description": "b", "events": [], **fields}).id)
        collector.storage.save_result(tid, result)
        collector.storage.set_status(tid, "finalized")
        return tid

    untested = TraceResult(
        stages=[Stage(name="tests", status="failed", message=UNTESTED_REASON)],
        validation=example_validation(None),
        grades=[_grade(5)],
        finalized_at=_at(2),
    )
    validated = TraceResult(
        stages=[Stage(name="tests", status="ok")],
        validation=example_validation(True),
        grades=[_grade(4)],
        finalized_at=_at(3),
    )
    gone = TraceResult(
        stages=[Stage(name="workspace", status="failed", message="repository not found")],
        finalized_at=_at(4),
    )
    held = example_validation(False).model_copy(
        update={
            "test_patch": True,
            "expected_fail_to_pass": EXPECTED,
            "missing_expected": EXPECTED[1:],
        }
    )
    ids = {
        "validated": stored(TraceResult(validation=example_validation(True), grades=[_grade(3)])),
        "refuted": stored(TraceResult(validation=example_validation(False), grades=[_grade(2)])),
        "untested": stored(untested),
        "regone": stored(untested.with_run(validated).with_run(gone)),
        "held": stored(
            TraceResult(validation=held),
            held_out={"test_patch": HELD_OUT_PATCH, "fail_to_pass": EXPECTED},
        ),
    }
    with TestClient(create_app(collector=collector), base_url=LOCAL) as client:
        yield {"client": client, "ids": ids}


@pytest.fixture
def client(store: dict[str, Any]) -> TestClient:
    return store["client"]  # type: ignore[no-any-return]


def _validated_column(client: TestClient, **params: str) -> dict[str, str]:
    return {r["id"]: r["validated"] for r in list_all(client, developer="dana", **params)}


def _text(page: str, element_id: str) -> str:
    m = re.search(rf'id="{element_id}"[^>]*>(.*?)</', page, re.S)
    assert m, element_id
    return html.unescape(m.group(1)).strip()


def test_the_list_says_could_not_test_never_no(store: dict[str, Any], client: TestClient) -> None:
    ids = store["ids"]
    assert _validated_column(client) == {
        ids["validated"]: "yes",
        ids["refuted"]: "no",
        ids["untested"]: "could not test",
        ids["regone"]: "yes",  # the earlier verdict stands
        ids["held"]: "no",
    }


def test_could_not_test_is_a_filter_of_its_own(store: dict[str, Any], client: TestClient) -> None:
    ids = store["ids"]
    assert list(_validated_column(client, validated="untested")) == [ids["untested"]]
    assert ids["untested"] not in _validated_column(client, validated="no")
    # A score range leaves untested fixes out, however they were graded.
    assert list(_validated_column(client, min_score="5")) == []
    page = client.get("/", params={"validated": "untested"}).text
    assert '<option value="untested" selected>could not test</option>' in page


def test_the_overview_counts_could_not_test_apart(client: TestClient) -> None:
    share = hidden_table(client.get("/overview").text, "validated-share")
    assert share["could not test"] == ["1"]
    assert share["not validated"] == ["2"]
    assert share["validated"] == ["2"]


def test_the_trace_page_says_why_it_could_not_test(
    store: dict[str, Any], client: TestClient
) -> None:
    page = client.get(f"/traces/{store['ids']['untested']}").text
    assert _text(page, "verdict") == f"could not test: {UNTESTED_REASON}"
    assert _text(page, "environment").startswith("python 3.12.3 (/usr/bin/python3.12)")
    assert f"Could not test: {UNTESTED_REASON}." in html.unescape(page)
    assert 'id="history"' not in page


def test_the_trace_page_lists_earlier_runs_and_keeps_the_verdict(
    store: dict[str, Any], client: TestClient
) -> None:
    page = client.get(f"/traces/{store['ids']['regone']}").text
    assert _text(page, "verdict") == "yes"
    assert "did not reach a verdict: workspace failed: repository not found" in page
    # Every run, newest first: when, outcome, environment, test counts, grades, score; the
    # standing verdict (the validated run of 3 March) is marked, though a later run failed.
    runs = re.search(r'<table id="runs">.*?</table>', page, re.S)
    assert runs
    cells = [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        ]
        for tr in re.findall(r"<tr class=\"run[^\"]*\">(.*?)</tr>", runs.group(0), re.S)
    ]
    env = example_validation(True).environment
    counts = "1 fail_to_pass, 0 pass_to_fail, 1 pass_to_pass, 0 fail_to_fail"
    assert [row[0] for row in cells] == [
        "2026-03-04 09:00:00 UTC",
        "2026-03-03 09:00:00 UTC verdict",
        "2026-03-02 09:00:00 UTC",
    ]
    assert cells[0][1:] == ["workspace failed: repository not found", "—", "—", "—", "—"]
    assert cells[1][1:] == ["validated", env, counts, "heuristic 4/5", "4"]
    assert cells[2][1] == f"could not test: {UNTESTED_REASON}"
    assert cells[2][4:] == ["heuristic 5/5", "5"]
    assert re.findall(r'<tr class="(run[^"]*)">', runs.group(0))[1] == (
        "run run-complete run-verdict"
    )
    assert "History (3 finalize runs, newest first)" in page


def test_the_trace_page_shows_held_out_tests_and_which_did_not_turn_green(
    store: dict[str, Any], client: TestClient
) -> None:
    page = client.get(f"/traces/{store['ids']['held']}").text
    section = re.search(r'<section id="held-out".*?</section>', page, re.S)
    assert section
    text = section.group(0)
    assert "Expected to go from failing to passing (2): 1 did." in text
    assert '<li class="missing"><code>tests/test_calc.py::test_exact</code>' in text
    assert "Test patch: tests/test_calc.py (applied to both runs)" in text
    assert "+def test_exact():" in html.unescape(text)


def test_a_page_without_held_out_tests_or_history_has_neither(
    store: dict[str, Any], client: TestClient
) -> None:
    page = client.get(f"/traces/{store['ids']['validated']}").text
    assert 'id="held-out"' not in page and 'id="history"' not in page
    assert _text(page, "verdict") == "yes"
