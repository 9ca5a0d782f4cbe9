"""What the dashboard pages show, computed from the Collector (no HTTP here).

Everything goes through the storage contract (:class:`~debugtrace.storage.Storage`), so any
backend serves the dashboard; the built-in SQL one answers each call with one or two queries.

Listing: the trace's own columns (developer, repository, status) are filtered by storage
(:meth:`Collector.traces`, keyset pages newest first). The result columns come from
:meth:`Storage.verdicts` (validated, score: one query per page on the SQL storage); the result
filters (a :class:`~debugtrace.storage.VerdictFilter`, as exports use) are applied while streaming
pages, and a page stops as soon as it is full. Sorting by score or oldest first needs the whole
filtered set: it is done in memory over at most :data:`SORT_LIMIT` traces (the newest), each a
small summary. The overview is :meth:`Storage.stats` (aggregate queries on the SQL storage).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from math import inf
from typing import Any, Literal, cast, get_args

from markupsafe import Markup

from debugtrace.collector import Collector
from debugtrace.model import CommandEvent, EditEvent, Event, ReasoningEvent, Trace, TraceStatus
from debugtrace.results import TraceResult
from debugtrace.server.auth import Principal
from debugtrace.storage import (
    TraceSummary,
    Verdict,
    VerdictFilter,
    could_not_test,
    effective_run,
    latest_run,
    outcome,
)

PAGE_SIZE = 25
SCAN_LIMIT = 10_000
"""Most traces one list request reads while filtering on results (it then offers "Next")."""
SORT_LIMIT = 5_000
"""Most (newest) matching traces sorted in memory for the score and oldest-first sorts."""
STATUSES: tuple[str, ...] = get_args(TraceStatus)
SORTS = ("-created", "created", "-score", "score")
OUTPUT_PREVIEW_LINES = 20
MAX_OUTPUT_CHARS = 200_000
MAX_DIFF_CHARS = 400_000

Sort = Literal["-created", "created", "-score", "score"]


# -- the trace list ---------------------------------------------------------------------------


@dataclass
class Filters:
    """The list page's query parameters, parsed; ``errors`` names the ones that were ignored."""

    developer: str = ""
    repo: str = ""
    """A part of the repository URL (any part: ``r1.git``, ``github.com/pallets``)."""
    q: str = ""
    """A part of the bug description or of the trace id."""
    status: str = ""
    validated: str = ""
    min_score: int | None = None
    max_score: int | None = None
    sort: Sort = "-created"
    cursor: str | None = None
    offset: int = 0
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, params: Any) -> Filters:
        f = cls()
        f.developer = (params.get("developer") or "").strip()[:255]
        f.repo = (params.get("repo") or "").strip()[:4096]
        f.q = (params.get("q") or "").strip()[:500]
        status = params.get("status") or ""
        if status in STATUSES:
            f.status = status
        elif status not in ("", "any"):
            f.errors.append(f"status: {status!r} is not one of {', '.join(STATUSES)}")
        validated = params.get("validated") or ""
        if validated in ("yes", "no", "untested"):
            f.validated = validated
        elif validated not in ("", "any"):
            f.errors.append("validated: use yes, no or untested (could not test)")
        for name in ("min_score", "max_score"):
            raw = (params.get(name) or "").strip()
            if not raw:
                continue
            if raw.isdigit() and 1 <= int(raw) <= 5:
                setattr(f, name, int(raw))
            else:
                f.errors.append(f"{name}: {raw!r} is not a score from 1 to 5")
        sort = params.get("sort") or "-created"
        if sort in SORTS:
            f.sort = cast(Sort, sort)
        else:
            f.errors.append(f"sort: {sort!r} is not one of {', '.join(SORTS)}")
        cursor = params.get("cursor") or ""
        if re.fullmatch(r"[0-9a-f]{1,64}", cursor):
            f.cursor = cursor
        offset = params.get("offset") or ""
        if offset.isdigit():
            f.offset = min(int(offset), SORT_LIMIT)
        return f

    @property
    def on_results(self) -> VerdictFilter:
        """The filters on the finalize result (validated yes / no / could not test, score
        range: a score range leaves out traces that could not be tested)."""
        return VerdictFilter(
            validated={"yes": True, "no": False}.get(self.validated),
            untested=True if self.validated == "untested" else None,
            min_score=self.min_score,
            max_score=self.max_score,
        )

    def query(self, **changes: Any) -> dict[str, str]:
        """The filters as query parameters (empty ones left out), with ``changes`` applied."""
        q: dict[str, Any] = {
            "q": self.q,
            "developer": self.developer,
            "repo": self.repo,
            "status": self.status,
            "validated": self.validated,
            "min_score": self.min_score,
            "max_score": self.max_score,
            "sort": "" if self.sort == "-created" else self.sort,
        }
        q.update(changes)
        return {k: str(v) for k, v in q.items() if v not in (None, "")}


@dataclass
class Row:
    """One line of the trace list."""

    summary: TraceSummary
    validated: bool | None
    score: int | None
    untested: bool = False
    """Could not test (the verdict column says so, not "no")."""


@dataclass
class ListPage:
    rows: list[Row]
    next_query: dict[str, str] | None = None
    prev_query: dict[str, str] | None = None
    note: str = ""
    total: int = 0
    """How many traces match the filters (all pages), at least this many when ``total_more``."""
    total_more: bool = False


def _scan(
    collector: Collector,
    f: Filters,
    developer: str | None,
    cursor: str | None,
    batch: int,
    order: Literal["id", "created"] = "created",
) -> Iterator[tuple[TraceSummary, Row | None]]:
    """Every trace the storage filters let through, newest first (by ``created_at``, or by id:
    the order of storage, which the database walks without sorting), from ``cursor`` on, each
    with its row when the result filters accept it (None when they do not)."""
    on_results = f.on_results
    while True:
        page = collector.traces(
            developer_id=developer,
            repo_contains=f.repo or None,
            text=f.q or None,
            status=cast(TraceStatus, f.status) if f.status else None,  # Filters.parse checked it
            order=order,
            limit=batch,
            cursor=cursor,
        )
        found = collector.verdicts([s.id for s in page.items])
        for s in page.items:
            verdict = found.get(s.id) or Verdict()
            row = (
                Row(s, verdict.validated, verdict.score, verdict.untested)
                if on_results.accepts(verdict)
                else None
            )
            yield s, row
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def list_page(collector: Collector, who: Principal, f: Filters) -> ListPage:
    """One page of the trace list for ``who`` (a developer sees only their own traces)."""
    developer = who.developer_id if not who.admin else (f.developer or None)
    if f.sort == "-created":
        out = _newest_first(collector, f, developer)
    else:
        out = _sorted_in_memory(collector, f, developer)
    out.total, out.total_more = count_matching(collector, f, developer)
    return out


def count_matching(collector: Collector, f: Filters, developer: str | None) -> tuple[int, bool]:
    """How many traces the filters let through, and whether there may be more (a count over
    more than :data:`SCAN_LIMIT` traces stops there). Without a text or repository filter it
    is the overview's aggregate (:meth:`Storage.stats`, by status and verdict); with one, a scan
    of the matching traces' ids and verdicts."""
    on_results = f.on_results
    if not f.q and not f.repo:
        stats = collector.stats(developer_id=developer)
        return sum(
            c.traces
            for c in stats.verdicts
            if (not f.status or c.status == f.status)
            and on_results.accepts(
                Verdict(validated=c.validated, score=c.score, untested=c.untested)
            )
        ), False
    total = 0
    scan = _scan(collector, f, developer, None, 1000, order="id")  # any order counts alike
    for scanned, (_, row) in enumerate(scan, 1):
        total += row is not None
        if scanned >= SCAN_LIMIT:
            return total, True
    return total, False


def _newest_first(collector: Collector, f: Filters, developer: str | None) -> ListPage:
    rows: list[Row] = []
    batch = PAGE_SIZE + 1 if not f.on_results.active else 500
    out = ListPage(rows)
    scan = _scan(collector, f, developer, f.cursor, batch)
    for scanned, (summary, row) in enumerate(scan, 1):
        if row is not None:
            if len(rows) == PAGE_SIZE:  # one more exists: offer the next page
                out.next_query = f.query(cursor=rows[-1].summary.id)
                break
            rows.append(row)
        if scanned >= SCAN_LIMIT:
            out.next_query = f.query(cursor=summary.id)
            out.note = f"Read {scanned} traces for this page; Next goes on from the last one read."
            break
    if f.cursor:
        out.prev_query = f.query()  # keyset paging goes forward; "previous" restarts at the top
    return out


def _sorted_in_memory(collector: Collector, f: Filters, developer: str | None) -> ListPage:
    matched: list[Row] = []
    truncated = False
    for _, row in _scan(collector, f, developer, None, 1000, order="id"):
        if row is None:
            continue
        if len(matched) == SORT_LIMIT:
            truncated = True
            break
        matched.append(row)
    # Newest first by Created (the storage order differs for imported traces), then as asked.
    matched.sort(key=lambda r: (r.summary.created_at, r.summary.id), reverse=True)
    if f.sort == "created":
        matched.reverse()
    else:
        graded = [r for r in matched if r.score is not None]
        ungraded = [r for r in matched if r.score is None]
        # Stable sorts on newest-first input: equal scores stay newest first; ungraded go last.
        graded.sort(key=lambda r: r.score or 0, reverse=f.sort == "-score")
        matched = graded + ungraded
    start = min(f.offset, len(matched))
    out = ListPage(matched[start : start + PAGE_SIZE])
    if start + PAGE_SIZE < len(matched):
        out.next_query = f.query(offset=start + PAGE_SIZE)
    if start > 0:
        out.prev_query = f.query(offset=max(0, start - PAGE_SIZE) or None)
    if truncated:
        out.note = f"Sorted the newest {SORT_LIMIT} matching traces only."
    return out


# -- the overview -----------------------------------------------------------------------------


@dataclass
class Overview:
    total: int = 0
    scores: list[tuple[str, int]] = field(default_factory=list)
    validated: list[tuple[str, int]] = field(default_factory=list)
    weeks: list[str] = field(default_factory=list)
    per_developer: dict[str, list[int]] = field(default_factory=dict)
    note: str = ""


TOP_DEVELOPERS = 7
MAX_WEEKS = 26


def overview(collector: Collector, who: Principal) -> Overview:
    """Score distribution, validated share and traces per developer per week, for ``who``."""
    stats = collector.stats(developer_id=None if who.admin else who.developer_id)
    out = Overview(total=stats.total)
    scores = stats.by_score()
    out.scores = [(str(s), scores.get(s, 0)) for s in range(1, 6)]
    out.scores.append(("ungraded", scores.get(None, 0)))
    validated: Counter[str] = Counter()
    for c in stats.verdicts:
        if c.untested:  # its own category: neither validated nor refuted
            validated["could not test"] += c.traces
        elif c.validated is None:
            validated["not finalized" if c.status != "finalized" else "no test verdict"] += c.traces
        else:
            validated["validated" if c.validated else "not validated"] += c.traces
    out.validated = [
        (k, validated[k])
        for k in (
            "validated",
            "not validated",
            "could not test",
            "no test verdict",
            "not finalized",
        )
        if k != "no test verdict" or validated[k]
    ]
    if stats.weeks:
        per_dev: Counter[str] = Counter()
        for w in stats.weeks:
            per_dev[w.developer_id] += w.traces
        last = max(w.week for w in stats.weeks)
        earliest = min(w.week for w in stats.weeks)
        first = max(earliest, last - timedelta(weeks=MAX_WEEKS - 1))
        weeks = [first + timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]
        top = [d for d, _ in per_dev.most_common(TOP_DEVELOPERS)]
        series: dict[str, list[int]] = {d: [0] * len(weeks) for d in top}
        if len(per_dev) > len(top):
            series["others"] = [0] * len(weeks)
        index: dict[date, int] = {w: i for i, w in enumerate(weeks)}
        for w in stats.weeks:
            if w.week in index:
                name = w.developer_id if w.developer_id in top else "others"
                series[name][index[w.week]] += w.traces
        out.weeks = [w.isoformat() for w in weeks]
        out.per_developer = series
        if earliest < first:
            out.note = f"Weekly counts show the last {MAX_WEEKS} weeks."
    return out


# -- the trace page ---------------------------------------------------------------------------

TEST_CLASSES = ("fail_to_pass", "pass_to_fail", "pass_to_pass", "fail_to_fail", "added", "removed")
OPEN_CLASSES = ("fail_to_pass", "pass_to_fail")
"""Shown expanded: what the fix changed. The others (and ``flaky``) start collapsed."""
MAX_TEST_FILTER = 200


@dataclass
class TestRow:
    test: str
    category: str
    flaky: bool


@dataclass
class TestGroup:
    """The tests of one class (or the flaky ones), as the trace page's Tests section lists them."""

    name: str
    rows: list[TestRow]
    total: int
    """Tests of the class before the search (``rows`` holds those that match it)."""
    open: bool


def group_tests(result: TraceResult, search: str = "") -> list[TestGroup]:
    """The tests by class: fail_to_pass and pass_to_fail first, always listed (even empty, to
    say so) and open; then the other classes that have tests, collapsed, then the flaky tests
    (finalize classifies a flaky test by no class). With ``search`` (a part of a test id, case
    insensitive), only the matching tests, and every group that has some is open."""
    v = result.validation
    if v is None or not any(getattr(v, cls) for cls in (*TEST_CLASSES, "flaky")):
        return []
    needle = search.casefold()
    flaky = set(v.flaky)
    groups: list[TestGroup] = []
    for cls in (*TEST_CLASSES, "flaky"):
        tests: list[str] = list(v.flaky) if cls == "flaky" else getattr(v, cls)
        if not tests and cls not in OPEN_CLASSES:
            continue
        rows = [
            TestRow(t, cls, t in flaky and cls != "flaky")
            for t in tests
            if not needle or needle in t.casefold()
        ]
        groups.append(
            TestGroup(cls, rows, len(tests), cls in OPEN_CLASSES or bool(needle and rows))
        )
    return groups


STAGES = ("workspace", "apply", "tests", "grade")
STAGE_LABELS = {"workspace": "clone", "apply": "apply", "tests": "tests", "grade": "grade"}


def stage_list(result: TraceResult) -> list[dict[str, Any]]:
    """The four stages in order, each with its stored record or ``pending``."""
    stored = {s.name: s for s in result.stages}
    out = []
    for name in STAGES:
        s = stored.get(name)  # type: ignore[call-overload]
        out.append(
            {
                "name": name,
                "label": STAGE_LABELS[name],
                "status": s.status if s else "pending",
                "duration": f"{s.duration_s:.2f} s" if s and s.duration_s is not None else "",
                "message": s.message if s else "",
                "log": s.log if s else "",
            }
        )
    return out


def verdict_text(result: TraceResult) -> str:
    """The trace page's "Fix validated": ``yes``, ``no``, ``could not test: <reason>``, or ``—``
    (no test verdict)."""
    v = result.validation
    if v is not None and v.fix_validated is not None:
        return "yes" if v.fix_validated else "no"
    reason = could_not_test(result)
    return f"could not test: {reason}" if reason is not None else "—"


@dataclass
class RunRow:
    """One finalize run of a trace, as the History section lists it."""

    finalized_at: datetime | None
    outcome: str
    score: int | None
    complete: bool
    environment: str = ""
    counts: list[tuple[str, int]] = field(default_factory=list)
    """Tests per class (fail_to_pass, pass_to_fail, pass_to_pass, fail_to_fail; the others when
    there are some); empty when the run has no test results."""
    grades: list[tuple[str, int]] = field(default_factory=list)
    """(grader, score) of each grader's latest grade in the run."""
    verdict: bool = False
    """This run stands as the trace's verdict (:func:`~debugtrace.storage.effective_run`)."""


def _run_row(run: TraceResult, verdict: bool = False) -> RunRow:
    v = run.validation
    counts: list[tuple[str, int]] = []
    ran = v is not None and (
        v.fix_validated is not None or any(getattr(v, c) for c in TEST_CLASSES)
    )
    if v is not None and ran:
        for cls in (*TEST_CLASSES, "flaky"):
            n = len(getattr(v, cls))
            if n or cls in TEST_CLASSES[:4]:
                counts.append((cls, n))
    return RunRow(
        finalized_at=run.finalized_at,
        outcome=outcome(run),
        score=run.score(),
        complete=run.complete,
        environment=v.environment if v is not None else "",
        counts=counts,
        grades=[(name or "grader", g.score) for name, g in run.latest_grades().items()],
        verdict=verdict,
    )


def history_rows(result: TraceResult) -> list[RunRow]:
    """Every finalize run of the trace (the result and its earlier runs), newest first (a run
    still going first), the one that stands as the verdict marked; empty when there is only
    one run."""
    if not result.history:
        return []
    standing = effective_run(result)
    runs = [result, *result.history]
    runs.sort(key=lambda r: r.finalized_at.timestamp() if r.finalized_at else inf, reverse=True)
    return [_run_row(r, verdict=r is standing) for r in runs]


def latest_failed_run(result: TraceResult) -> RunRow | None:
    """The newest run when it is not the one shown (it failed before the tests, or is still
    running, and an earlier verdict stands); None otherwise."""
    latest = latest_run(result)
    if latest is result:
        return None
    return _run_row(latest)


@dataclass
class HeldOutView:
    """Held-out tests of a trace and how the shown run fared against them."""

    patch: str = ""
    files: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    applied: bool = False


def held_out_view(trace: Trace) -> HeldOutView | None:
    """What the trace page shows of held-out tests: the trace's own (patch, expected ids), and
    the run's checks (the patch applied, expected tests that did not go from failing to
    passing); None when there are none."""
    v = trace.result.validation
    held = trace.held_out
    expected = list(v.expected_fail_to_pass) if v is not None else []
    if held is None and not expected and not (v is not None and v.test_patch):
        return None
    out = HeldOutView()
    if held is not None:
        out.patch = held.test_patch[:MAX_DIFF_CHARS]
        out.files = [line[6:] for line in held.test_patch.splitlines() if line.startswith("+++ b/")]
        out.expected = list(held.fail_to_pass)
    if v is not None:
        out.expected = expected or out.expected
        out.missing = list(v.missing_expected)
        out.applied = v.test_patch
    return out


@dataclass
class SplitRow:
    """One line pair of a side-by-side diff (``kind`` of each side: ctx, del, add, empty)."""

    left_no: int | None
    left: str
    left_kind: str
    right_no: int | None
    right: str
    right_kind: str
    header: bool = False


def split_diff(diff: str) -> list[SplitRow]:
    """Side-by-side rows of a unified diff: a run of removed lines faces the added run after it."""
    rows: list[SplitRow] = []
    old_no = new_no = 0
    dels: list[tuple[int, str]] = []
    adds: list[tuple[int, str]] = []

    def flush() -> None:
        for i in range(max(len(dels), len(adds))):
            lno, ltext = dels[i] if i < len(dels) else (None, "")
            rno, rtext = adds[i] if i < len(adds) else (None, "")
            rows.append(
                SplitRow(
                    lno,
                    ltext,
                    "del" if i < len(dels) else "empty",
                    rno,
                    rtext,
                    "add" if i < len(adds) else "empty",
                )
            )
        dels.clear()
        adds.clear()

    hunk = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@(.*)$")
    in_hunk = False
    for line in diff.splitlines():
        m = hunk.match(line)
        if m:
            flush()
            old_no, new_no = int(m.group(1)), int(m.group(2))
            rows.append(SplitRow(None, line, "hunk", None, line, "hunk", header=True))
            in_hunk = True
            continue
        if not in_hunk:
            continue  # file headers (---/+++, diff --git, index) are shown above the table
        if line.startswith("-"):
            dels.append((old_no, line[1:]))
            old_no += 1
        elif line.startswith("+"):
            adds.append((new_no, line[1:]))
            new_no += 1
        elif line.startswith("\\"):
            continue  # "\ No newline at end of file"
        else:
            flush()
            text = line[1:] if line.startswith(" ") else line
            rows.append(SplitRow(old_no, text, "ctx", new_no, text, "ctx"))
            old_no += 1
            new_no += 1
    flush()
    return rows


def highlight_diff(diff: str) -> str:
    """The diff as HTML (pygments' DiffLexer, CSS classes; the text is escaped by pygments)."""
    from pygments import highlight  # type: ignore[import-untyped]
    from pygments.formatters import HtmlFormatter  # type: ignore[import-untyped]
    from pygments.lexers import DiffLexer  # type: ignore[import-untyped]

    html: str = highlight(diff, DiffLexer(), HtmlFormatter(nowrap=True, classprefix="hl-"))
    return html


def diff_stats(diff: str) -> tuple[int, int]:
    plus = minus = 0
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            plus += 1
        elif line.startswith("-") and not line.startswith("---"):
            minus += 1
    return plus, minus


def _clip(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to ``limit`` characters (head and tail), and how many were left out."""
    if len(text) <= limit:
        return text, 0
    head = limit * 2 // 3
    tail = limit - head
    return text[:head] + "\n…\n" + text[-tail:], len(text) - limit


def timeline(trace: Trace, split: bool) -> list[dict[str, Any]]:
    """The events as the trace page shows them."""
    return [_event_view(ev, split) for ev in trace.events]


def _event_view(ev: Event, split: bool) -> dict[str, Any]:
    view: dict[str, Any] = {"seq": ev.seq, "type": ev.type, "time": ev.timestamp}
    if isinstance(ev, ReasoningEvent):
        d = ev.details
        view.update(
            text=d.text,
            reasoning_type=d.reasoning_type or "reasoning",
            confidence=d.confidence,
        )
    elif isinstance(ev, CommandEvent):
        c = ev.details
        output, cut = _clip(c.output, MAX_OUTPUT_CHARS)
        lines = len(c.output.splitlines())
        failed = c.exit_code not in (None, 0)
        view.update(
            command=c.command,
            cwd=c.cwd,
            exit_code=c.exit_code,
            failed=failed,
            duration=f"{c.duration_s:.2f} s" if c.duration_s is not None else "",
            output=output,
            output_cut=cut,
            lines=lines,
            open=failed or lines <= OUTPUT_PREVIEW_LINES,
        )
    else:
        assert isinstance(ev, EditEvent)
        diff, cut = _clip(ev.details.diff, MAX_DIFF_CHARS)
        plus, minus = diff_stats(ev.details.diff)
        view.update(file=ev.details.file, plus=plus, minus=minus, diff_cut=cut)
        if split:
            view["split"] = split_diff(diff)
        else:
            view["unified"] = Markup(highlight_diff(diff))  # pygments escapes the text
    return view
