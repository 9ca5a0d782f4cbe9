"""The dashboard on traces as they come from real use (issue 19), in real headless Chromium.

A team lead's first look at real traces found a trace page 32,780 px tall (852 tests, one row
each), an overview whose colours ran backwards, and a list that did not follow its own Created
column. These tests seed what real traces look like and read like the answer to each point:

- a more-itertools fix with 852 tests (830 ``pass_to_pass``), a Markdown bug title, an agent's
  ``cost`` of ``0.019520000000000006`` dollars and three finalize runs (validated, then not
  validated, then a run that failed before the tests: the validated run still stands);
- fixes scored 1 to 5, validated, not validated and could not test, across three repositories;
- imported traces whose ``created_at`` is older than traces stored before them (the list follows
  Created, not the order of storage);
- bug descriptions with ``%`` and ``_`` (search is literal) and with HTML (shown as text).

Results are saved through the storage (no sandbox runs): what a page shows is what a stored
result says. ``DEBUGTRACE_UPDATE_DOCS_IMG=1`` copies the screenshots to ``docs/img/``.
"""

# The fixtures of browser.py are imported, then used by name as test arguments:
# ruff: noqa: F811

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from debugtrace import Collector, Settings
from debugtrace.results import Grade, RubricScore, Stage, TraceResult, Validation
from support import ROOT
from support.browser import (  # noqa: F401 - the fixtures are used by name
    ARTIFACTS,
    Browsing,
    Page,
    browser,
    close_page,
    expect,
    open_page,
)
from support.server_process import Server, server_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser

pytestmark = pytest.mark.slow
expect.set_options(timeout=10_000)

DOCS_IMG = ROOT / "docs" / "img"
UPDATE_DOCS_IMG = os.environ.get("DEBUGTRACE_UPDATE_DOCS_IMG") == "1"

MORE = "https://github.com/more-itertools/more-itertools.git"
JINJA = "https://github.com/pallets/jinja.git"
REQUESTS = "https://github.com/psf/requests.git"
LONG_DEVELOPER = "release-engineering-bot@ci.example.com"

BIG_BUG = (
    "## `sort_together()` drops **duplicate** keys when `key=` is given\n"
    "\n"
    "Reported in [#812](https://github.com/more-itertools/more-itertools/issues/812):\n"
    "```python\nsort_together([(3, 1, 3), 'abc'], key=lambda x: x)\n```\n"
    '<img src=x onerror="window.__pwned=1"> is what the HTML reporter printed.\n'
)
BIG_TITLE = "sort_together() drops duplicate keys when key= is given"
COST = 0.019520000000000006

F2P = [f"tests/test_more.py::SortTogetherTests::test_duplicate_keys_{i}" for i in range(3)]
P2F = ["tests/test_more.py::SortTogetherTests::test_reverse_stable"]
P2P = [
    f"tests/test_more.py::{cls}Tests::test_case_{i:03d}"
    for cls in (
        "Chunked",
        "Windowed",
        "Collapse",
        "Interleave",
        "Unique",
        "Peekable",
        "Spy",
        "Bucket",
        "Consume",
        "Partition",
    )
    for i in range(83)
]
F2F = [f"tests/test_recipes.py::PowersetTests::test_known_failure_{i}" for i in range(8)]
ADDED = [f"tests/test_more.py::SortTogetherTests::test_new_{i}" for i in range(5)]
REMOVED = ["tests/test_more.py::SortTogetherTests::test_old_a", "tests/test_more.py::Old::b"]
FLAKY = [f"tests/test_more.py::TimeLimitedTests::test_timing_{i}" for i in range(3)]
ALL_TESTS = F2P + P2F + P2P + F2F + ADDED + REMOVED + FLAKY
ENVIRONMENT = "python 3.12.3 (/usr/bin/python3.12); env py-5d41402a (reused)"


def _at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


def _grade(score: int, grader: str = "heuristic") -> Grade:
    rubric = {
        "reproduction": RubricScore(score=score, reason="ran the failing test first"),
        "root_cause": RubricScore(score=max(1, score - 1), reason="found the key handling"),
    }
    return Grade(score=score, grader=grader, summary=f"score {score}", rubric=rubric)


def _validation(fix_validated: bool | None, **lists: list[str]) -> Validation:
    return Validation(
        test_command=["python", "-m", "pytest", "-q"],
        fix_validated=fix_validated,
        could_not_test=None if fix_validated is not None else "collection errors: ImportError",
        environment=ENVIRONMENT,
        **lists,
    )


@dataclass(frozen=True)
class Seeded:
    database_url: str
    data_dir: Path
    ids: dict[str, str]
    """Trace ids by name: big, s1 ... s5 (scores), untested, refuted, percent, underscore."""
    created: dict[str, datetime]


def seed(tmp: Path) -> Seeded:
    """The traces the module's tests read (see the module docstring)."""
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite:///{tmp / 'traces.db'}",
        load_plugins="",
        sandbox="local",
        grader="heuristic",
    )
    ids: dict[str, str] = {}
    created: dict[str, datetime] = {}
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("DEBUGTRACE_")]:
            mp.delenv(key)
        with Collector(settings=settings) as collector:

            def stored(name: str, when: datetime, result: TraceResult | None, **doc: Any) -> None:
                doc.setdefault("developer_id", "dana")
                doc.setdefault("repo_url", MORE)
                trace = collector.submit({**doc, "created_at": when.isoformat(), "events": []})
                tid = str(trace.id)
                if result is not None:
                    collector.storage.save_result(tid, result)
                    collector.storage.set_status(tid, "finalized")
                ids[name], created[name] = tid, when

            # Stored first, created last (an import of yesterday's trace comes later, below).
            validated = TraceResult(
                stages=[
                    Stage(name=s, status="ok") for s in ("workspace", "apply", "tests", "grade")
                ],
                validation=_validation(
                    True,
                    fail_to_pass=F2P,
                    pass_to_fail=P2F,
                    pass_to_pass=P2P,
                    fail_to_fail=F2F,
                    added=ADDED,
                    removed=REMOVED,
                    flaky=FLAKY,
                ),
                grades=[_grade(4)],
                finalized_at=_at(20, 10),
            )
            refuted = TraceResult(
                validation=_validation(False, fail_to_pass=[], pass_to_fail=F2P, pass_to_pass=P2P),
                grades=[_grade(2)],
                finalized_at=_at(20, 9),
            )
            gone = TraceResult(
                stages=[Stage(name="workspace", status="failed", message="repository not found")],
                finalized_at=_at(21, 8),
            )
            stored(
                "big",
                _at(20),
                refuted.with_run(validated).with_run(gone),
                bug_description=BIG_BUG,
                metadata={"source": "swe-agent", "model": "gpt-4.1", "cost": COST},
            )
            for score in range(1, 6):
                stored(
                    f"s{score}",
                    _at(10 + score),
                    TraceResult(validation=_validation(score >= 3), grades=[_grade(score)]),
                    repo_url=JINJA if score % 2 else REQUESTS,
                    developer_id=LONG_DEVELOPER if score == 5 else "erin",
                    bug_description=f"**Jinja** `{{% include %}}` case {score}\nsecond line",
                )
            stored(
                "untested",
                _at(9),
                TraceResult(
                    stages=[Stage(name="tests", status="failed", message="collection errors")],
                    validation=_validation(None),
                    grades=[_grade(3)],
                ),
                bug_description="# Tests cannot be collected\n\nImportError in conftest.py",
            )
            stored(
                "refuted",
                _at(8),
                TraceResult(validation=_validation(False, pass_to_fail=P2F), grades=[_grade(2)]),
                repo_url=REQUESTS,
                bug_description="Session.send ignores `timeout` for [proxies](https://x.test)",
            )
            stored("percent", _at(7), None, bug_description="CPU at 100% in parse_args")
            stored("underscore", _at(6), None, bug_description="CPU at 1000 in parseXargs")
            # Imported last, recorded long ago: the list shows it last, as its Created says.
            stored("imported", _at(1), None, bug_description="Imported trajectory from October")
    return Seeded(settings.database_url or "", tmp / "data", ids, created)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    return seed(tmp_path_factory.mktemp("first-use"))


@pytest.fixture(scope="module")
def server(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``debugtrace serve`` over the seeded database, no token (loopback only, no login)."""
    log = tmp_path_factory.mktemp("serve-first-use") / "server.log"
    with Server(server_env(seeded.data_dir, seeded.database_url), log) as s:
        yield s


@pytest.fixture
def desk(browser: Browser, server: Server) -> Iterator[Browsing]:
    """A desktop-sized page (1200x800)."""
    b = open_page(browser, server)
    yield b
    close_page(b, server.url)


@pytest.fixture
def phone390(browser: Browser, server: Server) -> Iterator[Browsing]:
    """A phone-sized page (390x844, an iPhone 14's viewport)."""
    b = open_page(browser, server, viewport={"width": 390, "height": 844})
    yield b
    close_page(b, server.url)


@pytest.fixture
def no_js(browser: Browser, server: Server) -> Iterator[Browsing]:
    """A desktop page with JavaScript turned off."""
    b = open_page(browser, server, java_script_enabled=False)
    yield b
    close_page(b, server.url)


def to_docs(browsing: Browsing, name: str, section: str = "") -> None:
    """Screenshot (of the page, or of the element ``#SECTION``) into test-artifacts/
    (``first-use-NAME.png``), and into ``docs/img/dashboard-NAME.png`` when asked."""
    if section:
        path = ARTIFACTS / f"first-use-{name}.png"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browsing.page.locator(f"#{section}").screenshot(path=str(path))
    else:
        path = browsing.screenshot(f"first-use-{name}")
    if UPDATE_DOCS_IMG:
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_IMG / f"dashboard-{name}.png")


def page_height(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollHeight"))


def no_errors(b: Browsing) -> None:
    assert b.console_errors == [], b.console_errors
    assert b.page_errors == [], b.page_errors


# -- the tests table ------------------------------------------------------------------------------


def test_852_tests_show_as_counts_with_what_the_fix_changed_first(
    desk: Browsing, seeded: Seeded
) -> None:
    page = desk.page
    page.goto(f"/traces/{seeded.ids['big']}")
    assert len(ALL_TESTS) == 852

    # Counts per class first, each a link to its group.
    counts = page.locator("#test-counts")
    expect(counts).to_have_text(
        "3 fail_to_pass · 1 pass_to_fail · 830 pass_to_pass · 8 fail_to_fail · 5 added"
        " · 2 removed · 3 flaky"
    )
    expect(counts.get_by_role("link", name="830 pass_to_pass")).to_have_attribute(
        "href", "#tests-pass_to_pass"
    )

    # What the fix changed is open; the rest is collapsed, yet every test is in the page.
    groups = page.locator("#tests details.test-group")
    names = [groups.nth(i).get_attribute("data-class") for i in range(groups.count())]
    assert names == [
        "fail_to_pass",
        "pass_to_fail",
        "pass_to_pass",
        "fail_to_fail",
        "added",
        "removed",
        "flaky",
    ]
    for name in names:
        group = page.locator(f"#tests-{name}")
        if name in ("fail_to_pass", "pass_to_fail"):
            expect(group).to_have_attribute("open", "")
        else:
            expect(group).not_to_have_attribute("open", "")
    expect(page.locator("#tests .test-list li")).to_have_count(852)
    expect(page.locator("#tests-fail_to_pass li", has_text=F2P[0])).to_be_visible()
    expect(page.locator("#tests-pass_to_pass li").first).to_be_hidden()

    # The whole trace page is now shorter than two screens' worth of those rows.
    height = page_height(page)
    print(f"trace page with 852 tests: {height} px high at 1200 px wide")
    assert height < 3000, height
    to_docs(desk, "tests", section="tests")

    # Typing in "Find a test" filters as you type: matching groups open, the count is said.
    page.locator("#tests-filter").fill("Windowed")
    expect(page.locator("#tests-filter-note")).to_have_text("83 tests match “Windowed”.")
    expect(page.locator("#tests-pass_to_pass")).to_have_attribute("open", "")
    expect(page.locator("#tests-pass_to_pass .group-count")).to_have_text("(83 of 830)")
    expect(page.locator("#tests-pass_to_pass li:visible")).to_have_count(83)
    expect(page.locator("#tests-fail_to_pass")).not_to_have_attribute("open", "")
    # Cleared, everything is as it was.
    page.locator("#tests-filter").fill("")
    expect(page.locator("#tests-pass_to_pass")).not_to_have_attribute("open", "")
    expect(page.locator("#tests-fail_to_pass")).to_have_attribute("open", "")
    no_errors(desk)


def test_without_javascript_the_test_search_is_a_form_the_server_answers(
    no_js: Browsing, seeded: Seeded
) -> None:
    page = no_js.page
    page.goto(f"/traces/{seeded.ids['big']}")
    # Collapsed groups still hold their tests: a browser's find-in-page opens them.
    expect(page.locator("#tests-pass_to_pass li")).to_have_count(830)
    page.locator("#tests-filter").fill("test_timing_1")
    page.locator("#test-search").get_by_role("button", name="Find").click()
    expect(page).to_have_url(re.compile(r"[?&]tests=test_timing_1(&|#|$)"))
    expect(page.locator("#tests-filter-note")).to_have_text("1 test matches “test_timing_1”.")
    expect(page.locator("#tests-flaky")).to_have_attribute("open", "")
    expect(page.locator("#tests .test-list li")).to_have_count(1)
    expect(page.locator("#tests-flaky li")).to_have_text(FLAKY[1])
    page.get_by_role("link", name="Show all").click()
    expect(page.locator("#tests .test-list li")).to_have_count(852)


# -- the trace page: title, cost, history ---------------------------------------------------------


def test_a_markdown_bug_is_a_plain_title_and_the_cost_is_money(
    desk: Browsing, seeded: Seeded
) -> None:
    page = desk.page
    page.goto(f"/traces/{seeded.ids['big']}")
    expect(page.locator("h1")).to_have_text(BIG_TITLE)
    assert page.title().startswith(BIG_TITLE[:40])
    # The description as written is one click away, as text (its HTML never runs).
    description = page.locator("details.description")
    description.locator("summary").click()
    expect(description.locator("pre")).to_contain_text('<img src=x onerror="window.__pwned=1">')
    assert page.evaluate("typeof window.__pwned") == "undefined"
    expect(page.locator(".facts div", has_text="cost").locator("dd")).to_have_text("$0.02")
    expect(page.locator("body")).not_to_contain_text("0.019520000000000006")
    no_errors(desk)


def test_the_history_shows_every_run_and_which_one_stands(desk: Browsing, seeded: Seeded) -> None:
    page = desk.page
    page.goto(f"/traces/{seeded.ids['big']}")
    # The latest run failed before the tests: the page says so, and the verdict stays.
    expect(page.locator("#latest-run")).to_contain_text("workspace failed: repository not found")
    expect(page.locator("#verdict")).to_have_text("yes")

    runs = page.locator("#runs tbody tr")
    expect(runs).to_have_count(3)
    expect(page.locator("#history h2")).to_have_text("History (3 finalize runs, newest first)")
    latest, standing, first = runs.nth(0), runs.nth(1), runs.nth(2)
    expect(latest.locator("td.finished")).to_have_text("2026-11-21 08:00:00 UTC")
    expect(latest.locator("td.outcome")).to_have_text("workspace failed: repository not found")
    expect(latest.locator("td.counts")).to_have_text("—")

    expect(standing).to_have_class(re.compile(r"\brun-verdict\b"))
    expect(standing.locator(".verdict-mark")).to_have_text("verdict")
    expect(standing.locator("td.outcome")).to_have_text("validated")
    expect(standing.locator("td.environment")).to_have_text(ENVIRONMENT)
    expect(standing.locator("td.counts")).to_have_text(
        "3 fail_to_pass, 1 pass_to_fail, 830 pass_to_pass, 8 fail_to_fail, 5 added, 2 removed,"
        " 3 flaky"
    )
    expect(standing.locator("td.grades")).to_have_text("heuristic 4/5")

    expect(first.locator("td.outcome")).to_have_text("not validated")
    expect(first.locator("td.grades")).to_have_text("heuristic 2/5")
    expect(first.locator(".verdict-mark")).to_have_count(0)
    to_docs(desk, "history", section="history")
    no_errors(desk)


# -- the list -------------------------------------------------------------------------------------


def created_column(page: Page) -> list[str]:
    return [t for t in page.locator("#traces td.col-created time").all_inner_texts()]


def test_the_list_follows_created_counts_and_shows_titles_as_text(
    desk: Browsing, seeded: Seeded
) -> None:
    page = desk.page
    page.goto("/")
    expect(page.locator("#total")).to_have_text("11 traces; newest first.")
    to_docs(desk, "list")

    # Newest first by Created, even for the import stored last with an old date.
    shown = created_column(page)
    assert len(shown) == 11 and shown == sorted(shown, reverse=True), shown
    ids = [r.get_attribute("data-trace-id") for r in page.locator("#traces tbody tr").all()]
    assert ids[0] == seeded.ids["big"] and ids[-1] == seeded.ids["imported"]

    # Titles: the first line, no Markdown markers, never HTML.
    big = page.locator(f'#traces tr[data-trace-id="{seeded.ids["big"]}"] td.col-bug')
    expect(big).to_have_text(BIG_TITLE)
    titles = page.locator("#traces td.col-bug").all_inner_texts()
    for title in titles:
        assert not re.search(r"(^#|\*\*|`|\]\()", title), title
    s3 = page.locator(f'#traces tr[data-trace-id="{seeded.ids["s3"]}"] td.col-bug')
    expect(s3).to_have_text("Jinja {% include %} case 3")

    # Oldest first reverses it; the Created column still agrees.
    page.goto("/?sort=created")
    shown = created_column(page)
    assert len(shown) == 11 and shown == sorted(shown), shown
    no_errors(desk)


def test_a_failed_fix_and_could_not_test_look_different(desk: Browsing, seeded: Seeded) -> None:
    page = desk.page
    page.goto("/")

    def badge(name: str) -> Any:
        return page.locator(f'#traces tr[data-trace-id="{seeded.ids[name]}"] .col-validated span')

    expect(badge("refuted")).to_have_text("no")
    expect(badge("untested")).to_have_text("could not test")
    expect(badge("s5")).to_have_text("yes")
    style = """el => {
        const s = getComputedStyle(el), mark = getComputedStyle(el, '::before');
        return [s.color, s.borderTopStyle, s.fontStyle, s.fontWeight, mark.content];
    }"""
    no, untested, yes = (badge(n).evaluate(style) for n in ("refuted", "untested", "s5"))
    assert no[1] == "solid" and untested[1] == "dashed", (no, untested)
    assert untested[2] == "italic" and no[2] == "normal"
    assert no[0] != untested[0] and no[0] != yes[0]
    assert "✗" in no[4] and "?" in untested[4] and "✓" in yes[4], (no, untested, yes)
    no_errors(desk)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": "duplicate"}, ["big"]),  # words of the bug description
        ({"q": "100%"}, ["percent"]),  # % is a character, not a wildcard
        ({"q": "parse_args"}, ["percent"]),  # so is _ (parseXargs does not match)
        ({"q": "JINJA"}, ["s5", "s4", "s3", "s2", "s1"]),  # any case
        ({"repo": "pallets"}, ["s5", "s3", "s1"]),  # any part of the repository URL
        ({"repo": "psf/requests", "validated": "no"}, ["s2", "refuted"]),
        ({"q": "no such bug anywhere"}, []),
    ],
)
def test_search_and_repository_filters(
    desk: Browsing, seeded: Seeded, params: dict[str, str], expected: list[str]
) -> None:
    page = desk.page
    page.goto("/")
    form = page.locator("form#filters")
    for name, value in params.items():
        field = form.locator(f'[name="{name}"]')
        if field.evaluate("el => el.tagName") == "SELECT":
            field.select_option(value)
        else:
            field.fill(value)
    form.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"/\?"))  # a GET form: the filters are the URL
    n = len(expected)
    expect(page.locator("#total")).to_contain_text(
        f"{n} trace{'' if n == 1 else 's'} match these filters"
    )
    ids = [r.get_attribute("data-trace-id") for r in page.locator("#traces tbody tr").all()]
    assert ids == [seeded.ids[n] for n in expected]
    if not expected:
        expect(page.locator("p.empty")).to_have_text("No traces match.")


def test_at_390px_the_verdict_and_score_stay_in_view(phone390: Browsing, seeded: Seeded) -> None:
    page = phone390.page
    page.goto("/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    rows = page.locator("#traces tbody tr")
    expect(rows).to_have_count(11)
    for i in range(rows.count()):
        for column in ("col-validated", "col-score", "col-bug"):
            cell = rows.nth(i).locator(f"td.{column}")
            expect(cell).to_be_visible()
            box = cell.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (
                column,
                box,
            )
    expect(rows.first.locator("td.col-score")).to_have_text("4")  # "score" is a CSS label
    to_docs(phone390, "list-390px")
    no_errors(phone390)


# -- the overview ---------------------------------------------------------------------------------


def _rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return r, g, b


def test_the_overview_colours_read_the_right_way(desk: Browsing, seeded: Seeded) -> None:
    page = desk.page
    page.goto("/overview")
    fill = "el => getComputedStyle(el).fill"

    # Scores: an ordinal scale from warm (1) to cool (5), each bar darker or lighter in order.
    bars = page.locator("#score-distribution svg rect.bar")
    expect(bars).to_have_count(6)
    colours = [_rgb(bars.nth(i).evaluate(fill)) for i in range(5)]
    assert colours[0][0] > colours[0][2] + 100, colours  # 1: red
    assert colours[4][2] > colours[4][0] + 100, colours  # 5: blue
    warmth = [r - b for r, _, b in colours]
    assert warmth == sorted(warmth, reverse=True), colours  # redder to bluer, in order

    # Validated green, not validated red, could not test grey.
    share = page.locator("#validated-share svg")
    green = _rgb(share.locator("rect.bar.v-validated").evaluate(fill))
    red = _rgb(share.locator("rect.bar.v-not-validated").evaluate(fill))
    grey = _rgb(share.locator("rect.bar.v-could-not-test").evaluate(fill))
    assert green[1] > green[0] and green[1] > green[2], green
    assert red[0] > red[1] and red[0] > red[2], red
    assert max(grey) - min(grey) < 30, grey

    # Axis and legend text: at least 12 px, and no text runs past its chart's edge.
    for chart in ("score-distribution", "validated-share", "traces-per-developer"):
        svg = page.locator(f"#{chart} svg")
        overflow = svg.evaluate(
            """svg => {
                const width = svg.viewBox.baseVal.width, out = [];
                for (const t of svg.querySelectorAll('text')) {
                    const box = t.getBBox(), size = parseFloat(getComputedStyle(t).fontSize);
                    if (box.x < 0 || box.x + box.width > width + 0.5 || size < 12)
                        out.push([t.textContent, box.x, box.width, width, size]);
                }
                return out;
            }"""
        )
        assert overflow == [], (chart, overflow)
    expect(page.locator("#traces-per-developer svg")).to_contain_text(LONG_DEVELOPER)
    to_docs(desk, "overview")
    no_errors(desk)
