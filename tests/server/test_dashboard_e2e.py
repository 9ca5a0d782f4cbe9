"""The dashboard, end to end: real headless Chromium (Playwright) against `debugtrace serve`.

The server runs as a subprocess on a free loopback port over a SQLite file seeded with two
finalized traces (see ``browser.py``): the calc fix (``test_divide_by_zero`` is fail_to_pass) and
an untrusted trace full of HTML/JS. Every test opens a fresh browser context, and every request a
page makes must stay on the server's origin. Screenshots of the list, the trace page and the
overview go to ``test-artifacts/dashboard/`` in every run; ``DEBUGTRACE_UPDATE_DOCS_IMG=1`` also
refreshes the README's ``docs/img/dashboard-trace.png`` (the screenshots of real-sized traces are
``test_dashboard_first_use_e2e.py``'s).
"""

# The fixtures of browser.py are imported, then used by name as test arguments:
# ruff: noqa: F811

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from support import ROOT
from support.browser import (  # noqa: F401 - the fixtures are used by name
    ADMIN_TOKEN,
    XSS,
    Browsing,
    Locator,
    Page,
    Seeded,
    browser,
    browsing,
    dashboard,
    expect,
    live_browsing,
    live_dashboard,
    phone,
    seeded,
    slow_calc,
    token_browsing,
    token_dashboard,
)
from support.calc_repo import example_trace
from support.server_process import Server, wait_for_job

pytestmark = pytest.mark.slow
expect.set_options(timeout=10_000)

FAIL_TO_PASS = "tests/test_calc.py::test_divide_by_zero"
STAGES = ["workspace", "apply", "tests", "grade"]
DOCS_IMG = ROOT / "docs" / "img" / "dashboard-trace.png"
# Read at import: the per-test hermetic environment drops every DEBUGTRACE_* variable.
UPDATE_DOCS_IMG = os.environ.get("DEBUGTRACE_UPDATE_DOCS_IMG") == "1"


def row(page: Page, trace_id: str) -> Locator:
    return page.locator(f'#traces tr[data-trace-id="{trace_id}"]')


def svg_in(page: Page, element_id: str) -> Locator:
    """The inline SVG chart ``#ID`` is, or holds."""
    return page.locator(f"svg#{element_id}, #{element_id} svg")


def focus_visible(page: Page) -> bool:
    """The focused element matches ``:focus-visible`` and draws an outline or a shadow."""
    return bool(
        page.evaluate(
            """() => {
                const el = document.activeElement;
                if (!el || !el.matches(':focus-visible')) return false;
                const s = getComputedStyle(el);
                return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
                    || s.boxShadow !== 'none';
            }"""
        )
    )


def assert_no_console_errors(b: Browsing) -> None:
    assert b.console_errors == [], b.console_errors
    assert b.page_errors == [], b.page_errors


# -- the list -------------------------------------------------------------------------------------


def test_the_list_shows_every_trace_and_filters_by_developer(
    browsing: Browsing, seeded: Seeded
) -> None:
    page = browsing.page
    page.goto("/")
    expect(page.locator("main#content")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Traces")).to_have_attribute("href", "/")
    expect(nav.get_by_role("link", name="Overview")).to_have_attribute("href", "/overview")

    # Both seeded traces are rows, newest first; the first cell links to the trace.
    expect(page.locator("#traces tbody tr[data-trace-id]")).to_have_count(2)
    expect(row(page, seeded.calc_id)).to_have_attribute("data-status", "finalized")
    expect(row(page, seeded.calc_id)).to_contain_text("dev_042")
    link = row(page, seeded.calc_id).locator(f'a[href="/traces/{seeded.calc_id}"]')
    expect(link).to_contain_text("divide()")
    # The untrusted bug description is listed as text.
    expect(row(page, seeded.untrusted_id)).to_contain_text(XSS[0][:20])
    assert page.evaluate("typeof window.__pwned") == "undefined"
    browsing.screenshot("list")

    # Filtering by developer narrows the list; the filter is a URL.
    filters = page.locator("form#filters")
    filters.locator('[name="developer"]').fill("dev_042")
    filters.locator('[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"[?&]developer=dev_042(&|$)"))
    expect(page.locator("#traces tbody tr[data-trace-id]")).to_have_count(1)
    expect(row(page, seeded.calc_id)).to_be_visible()

    # A developer with no traces: the empty message.
    page.goto("/?developer=nobody")
    expect(page.locator("p.empty")).to_have_text("No traces match.")
    assert_no_console_errors(browsing)


def test_the_keyboard_reaches_the_filters_and_the_trace_links_with_visible_focus(
    browsing: Browsing, seeded: Seeded
) -> None:
    page = browsing.page
    page.goto("/")
    reached: dict[str, bool] = {}  # what Tab focused -> whether its focus was visible
    for _ in range(40):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const el = document.activeElement;
                return el.getAttribute('name') || el.getAttribute('href') || el.tagName;
            }"""
        )
        reached[str(focused)] = focus_visible(page)
        if f"/traces/{seeded.calc_id}" in reached and f"/traces/{seeded.untrusted_id}" in reached:
            break
    for target in ("developer", "repo", "status", f"/traces/{seeded.calc_id}"):
        assert target in reached, f"Tab never reached {target}: {list(reached)}"
        assert reached[target], f"no visible focus on {target}"
    # The skip link comes first and leads to the content.
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_attribute("href", "#content")


# -- a trace ---------------------------------------------------------------------------------------


def test_a_trace_page_shows_stages_tests_timeline_and_the_diff(
    browsing: Browsing, seeded: Seeded
) -> None:
    page = browsing.page
    page.goto("/")
    row(page, seeded.calc_id).locator("a").first.click()
    expect(page).to_have_url(re.compile(rf"/traces/{seeded.calc_id}$"))
    expect(page.locator("h1")).to_contain_text("divide()")

    # The four finalize stages, in order, all ok.
    stages = page.locator("#stages li.stage")
    expect(stages).to_have_count(4)
    assert [stages.nth(i).get_attribute("data-stage") for i in range(4)] == STAGES
    for i in range(4):
        expect(stages.nth(i)).to_have_class(re.compile(r"\bstage-ok\b"))

    # The test the fix turned green is fail_to_pass, listed open.
    expect(page.locator("#test-counts")).to_have_text(
        "1 fail_to_pass · 0 pass_to_fail · 1 pass_to_pass"
    )
    f2p = page.locator("#tests-fail_to_pass li", has_text=FAIL_TO_PASS)
    expect(f2p).to_have_count(1)
    expect(f2p).to_be_visible()
    expect(page.locator("#tests-pass_to_fail")).to_contain_text("No test went from passing")
    # The test that passed before and after is pass_to_pass, collapsed until opened.
    test_divide = page.locator("#tests-pass_to_pass li").filter(
        has_text=re.compile(r"^\s*tests/test_calc.py::test_divide\s*$")
    )
    expect(test_divide).to_be_hidden()
    page.locator("#tests-pass_to_pass summary").click()
    expect(test_divide).to_be_visible()

    # The timeline: reasoning, command, edit, reasoning.
    events = page.locator("#timeline li.event")
    expect(events).to_have_count(4)
    for seq, kind in enumerate(["reasoning", "command", "edit", "reasoning"], start=1):
        expect(page.locator(f"#timeline #event-{seq}")).to_have_class(re.compile(rf"event-{kind}"))
    expect(page.locator("#event-1 .reasoning-type")).to_contain_text("hypothesis")
    expect(page.locator("#event-1 .confidence")).to_contain_text("medium")
    expect(page.locator("#event-2 code.command")).to_have_text("pytest -x tests/test_calc.py")

    # The command output is a disclosure that opens on click.
    output = page.locator("#event-2 details.output")
    if output.get_attribute("open") is not None:  # short outputs start open
        output.locator("summary").click()
    expect(output).not_to_have_attribute("open", "")
    output.locator("summary").click()
    expect(output).to_have_attribute("open", "")
    expect(output.locator("pre")).to_be_visible()
    expect(output.locator("pre")).to_contain_text("ZeroDivisionError")

    # The edit: unified diff by default...
    diff = page.locator("#event-3 pre.diff")
    expect(diff).to_contain_text('+        raise ValueError("division by zero")')
    expect(page.locator("#event-3")).to_contain_text("calc.py")
    browsing.screenshot("trace")
    if UPDATE_DOCS_IMG:
        DOCS_IMG.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(browsing.screenshot("trace"), DOCS_IMG)

    # ...and side by side through its link (a URL: works without JS).
    page.locator('a[href*="view=split"]').first.click()
    expect(page).to_have_url(re.compile(r"[?&]view=split"))
    split = page.locator("#event-3 table.diff-split")
    expect(split).to_be_visible()
    expect(split).to_contain_text("raise ValueError")
    assert_no_console_errors(browsing)


def test_regrade_runs_the_graders_again_and_says_so(
    browsing: Browsing, seeded: Seeded, dashboard: Server
) -> None:
    page = browsing.page
    page.goto(f"/traces/{seeded.calc_id}")
    page.locator("#regrade").click()

    # Back on the trace page (303), with a status message naming the re-grade.
    expect(page).to_have_url(re.compile(rf"/traces/{seeded.calc_id}$"))
    flash = page.locator("#flash")
    expect(flash).to_have_attribute("role", "status")
    expect(flash).to_contain_text(re.compile("re-grade", re.IGNORECASE))

    # The heuristic grade is still there, with its rubric chart.
    with httpx.Client(base_url=dashboard.url) as api:
        grade = api.get(f"/api/traces/{seeded.calc_id}").json()["result"]["grades"][0]
    figure = page.locator('#grades figure.grade[data-grader="heuristic"]')
    expect(figure).to_have_count(1)
    expect(figure).to_contain_text(str(grade["score"]))
    chart = figure.locator('svg[role="img"]')
    expect(chart).to_have_count(1)
    labelled_by = chart.get_attribute("aria-labelledby")
    assert labelled_by, "the rubric chart has no text alternative"
    for part in labelled_by.split():
        expect(page.locator(f"#{part}")).to_have_count(1)
    assert_no_console_errors(browsing)


def test_a_finalize_in_progress_is_followed_live_without_reloading_the_list(
    live_browsing: Browsing, live_dashboard: Server, slow_calc: Path
) -> None:
    # A trace whose finalize takes seconds (its tests sleep), queued through the API.
    with live_dashboard.client() as api:
        created = api.post("/api/traces", json=example_trace(slow_calc)).json()
        trace_id, job_id = created["id"], created["job"]["id"]

        # The list, and the trace page in a second tab, while it runs.
        page = live_browsing.page
        page.goto("/")
        live_row = row(page, trace_id)
        assert live_row.get_attribute("data-status") in ("queued", "finalizing")
        page.evaluate("window.__same_document = true")  # gone if the page reloads
        trace_tab = live_browsing.new_tab()
        trace_tab.goto(f"/traces/{trace_id}")
        expect(trace_tab.locator("#stages li.stage-ok")).not_to_have_count(4)

        assert wait_for_job(api, job_id)["state"] == "done"

    # The list's script polls the API and updates the row in place...
    expect(live_row).to_have_attribute("data-status", "finalized")
    expect(live_row.locator(".status")).to_have_text("finalized")
    expect(live_row.locator(".status")).to_have_class(re.compile(r"\bstatus-finalized\b"))
    expect(live_row.locator("td", has_text=re.compile(r"^\s*yes\s*$"))).to_have_count(1)
    assert page.evaluate("window.__same_document") is True
    assert f"{live_dashboard.url}/api/traces/{trace_id}" in live_browsing.requests

    # ...and the trace page reloads itself to show the results.
    expect(trace_tab.locator("#stages li.stage-ok")).to_have_count(4)
    expect(trace_tab.locator("#tests-fail_to_pass li")).to_have_count(1)
    assert_no_console_errors(live_browsing)


def test_a_live_row_says_could_not_test_when_the_tests_gave_no_verdict(
    live_browsing: Browsing, live_dashboard: Server
) -> None:
    # A queued trace whose stored result then says "could not test", as finalize leaves it when
    # the project's tests cannot be collected (written straight to the server's database).
    from debugtrace.results import Stage, TraceResult
    from debugtrace.storage.sql.storage import SQLStorage
    from debugtrace.testing import UNTESTED_REASON, example_validation

    with live_dashboard.client() as api:
        doc = {"developer_id": "erin", "repo_url": "https://example.com/r.git"}
        created = api.post(
            "/api/traces", params={"finalize": "false"}, json={**doc, "bug_description": "b"}
        ).json()
    trace_id = created["id"]
    storage = SQLStorage(live_dashboard.env["DEBUGTRACE_DATABASE_URL"])
    try:
        storage.set_status(trace_id, "queued")
        page = live_browsing.page
        page.goto("/")
        live_row = row(page, trace_id)
        expect(live_row).to_have_attribute("data-status", "queued")
        untested = TraceResult(
            stages=[Stage(name="tests", status="failed", message=UNTESTED_REASON)],
            validation=example_validation(None),
        )
        storage.save_result(trace_id, untested)
        storage.set_status(trace_id, "finalized")
    finally:
        storage.close()
    expect(live_row).to_have_attribute("data-status", "finalized")
    expect(live_row.locator(".col-validated")).to_have_text("could not test")
    page.reload()  # the server renders the same
    expect(row(page, trace_id).locator(".col-validated")).to_have_text("could not test")
    assert_no_console_errors(live_browsing)


# -- untrusted content ----------------------------------------------------------------------------


def test_untrusted_html_is_shown_as_text_and_never_runs(browsing: Browsing, seeded: Seeded) -> None:
    page = browsing.page
    response = page.goto(f"/traces/{seeded.untrusted_id}")
    assert response is not None and response.ok
    csp = response.headers["content-security-policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "object-src 'none'"):
        assert directive in csp, csp
    assert response.headers["x-content-type-options"] == "nosniff"

    # Every payload is on the page, as text: the bug, the reasoning, the command and its
    # output, the file name and the diff.
    expect(page.locator("h1")).to_contain_text(XSS[0])
    expect(page.locator("#event-1")).to_contain_text(XSS[1])
    expect(page.locator("#event-2 code.command")).to_contain_text(XSS[0])
    for payload in XSS:
        expect(page.locator("#event-2 details.output pre")).to_contain_text(payload)
        expect(page.locator("#event-3 pre.diff")).to_contain_text(payload)
    expect(page.locator("#event-3")).to_contain_text(f"calc{XSS[2]}.py")

    # None of it became markup, and nothing ran.
    expect(page.locator("#content script")).to_have_count(0)
    expect(page.locator('img[src="x"], [onerror], [onload]')).to_have_count(0)
    assert page.evaluate("typeof window.__pwned") == "undefined"
    page.goto(f"/traces/{seeded.untrusted_id}?view=split")
    expect(page.locator("#event-3 table.diff-split")).to_contain_text(XSS[0])
    assert page.evaluate("typeof window.__pwned") == "undefined"

    # A CSP violation report would be an error too, but it is not the page's fault: allowed.
    errors = [e for e in browsing.console_errors if "Content Security Policy" not in e]
    assert errors == [], errors
    assert browsing.page_errors == [], browsing.page_errors


# -- overview, layout, sign-in --------------------------------------------------------------------


def test_the_overview_draws_its_three_charts(browsing: Browsing) -> None:
    page = browsing.page
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Overview").click()
    expect(page).to_have_url(re.compile(r"/overview$"))
    for chart in ("score-distribution", "validated-share", "traces-per-developer"):
        svg = svg_in(page, chart)
        expect(svg).to_have_count(1)
        expect(svg).to_have_attribute("role", "img")
        expect(svg).to_be_visible()
    # Each chart's numbers are also a (visually hidden) table.
    expect(page.locator("#overview figure table")).to_have_count(3)
    browsing.screenshot("overview")
    assert_no_console_errors(browsing)


def test_the_list_fits_a_360px_screen_as_cards(phone: Browsing) -> None:
    page = phone.page
    page.goto("/")
    expect(page.locator("#traces")).to_be_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page is {width}px wide at a 360px viewport"
    # Each trace is a card: its bug, whether the fix validated and its score all in view.
    rows = page.locator("#traces tbody tr")
    for i in range(rows.count()):
        assert rows.nth(i).evaluate("el => getComputedStyle(el).display") == "grid"
        for column in ("col-bug", "col-validated", "col-score"):
            box = rows.nth(i).locator(f"td.{column}").bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
    phone.screenshot("list-360px")


def test_with_a_token_configured_the_pages_need_a_sign_in(
    token_browsing: Browsing, token_dashboard: Server
) -> None:
    page = token_browsing.page
    response = page.goto("/")
    assert response is not None
    redirect = response.request.redirected_from
    assert redirect is not None, "/ did not redirect"
    redirected = redirect.response()
    assert redirected is not None and redirected.status == 303
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
    expect(page.locator('form#login label[for="token"]')).to_have_count(1)
    expect(page.locator("form#login #token")).to_have_attribute("type", "password")

    # A wrong token: the form again, with an alert.
    page.locator("#token").fill("not-the-token")
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Sign in").click()
    assert posted.value.status == 401
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#traces")).to_have_count(0)

    # The right one: the list.
    page.locator("#token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(token_dashboard.url + "/")
    expect(page.locator("#traces tbody tr[data-trace-id]")).to_have_count(2)

    # The session is a cookie the page cannot read and that does not hold the token.
    cookie = next(c for c in token_browsing.context.cookies() if c["name"] == "debugtrace_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert ADMIN_TOKEN not in cookie["value"]
    assert "debugtrace_session" not in page.evaluate("document.cookie")

    # A reload stays signed in.
    page.reload()
    expect(page).to_have_url(token_dashboard.url + "/")
    expect(page.locator("#traces tbody tr[data-trace-id]")).to_have_count(2)

    # Signing out ends it: the pages ask for the token again.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
