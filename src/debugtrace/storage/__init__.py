"""The storage contract every backend implements (the SQL built-in, or a plugin's).

``debugtrace.testing.StorageContract`` runs the same behaviour tests against any implementation.

A backend must implement the abstract methods. The others (:meth:`Storage.get_summary`,
:meth:`Storage.verdicts`, :meth:`Storage.stats`, :meth:`Storage.iter_traces`, ...) have defaults
built on those, so a new backend works at once; it overrides them with cheaper queries when its
stores grow (the SQL backend answers the dashboard's with indexed columns and ``GROUP BY``).
"""

from __future__ import annotations

import builtins
import re
import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from debugtrace.jobs import LEASE_S
from debugtrace.model import Event, Trace, TraceStatus, UtcDatetime
from debugtrace.results import TraceResult, verdict_run
from debugtrace.storage.repeats import same_events, same_submission

if TYPE_CHECKING:
    from debugtrace.jobs import Job

__all__ = [
    "ID_PATTERN",
    "ExportQuery",
    "ForwardingStorage",
    "GuardedStorage",
    "SessionInfo",
    "Storage",
    "TokenInfo",
    "TracePage",
    "TraceQuery",
    "TraceStats",
    "TraceSummary",
    "Verdict",
    "VerdictCount",
    "VerdictFilter",
    "WeekCount",
    "could_not_test",
    "effective_run",
    "is_id",
    "latest_run",
    "new_trace_id",
    "outcome",
    "same_events",
    "same_submission",
    "week_of",
]

ID_PATTERN = r"^[0-9a-f]{24}$"
"""Every id a store hands out (traces, jobs, tokens): :func:`new_trace_id`'s 24 lowercase hex
digits. Front ends check ids against it before asking the store (an id that cannot exist is a 404
without a query, and text a database refuses, such as NUL, never reaches it)."""

_ID = re.compile(ID_PATTERN[1:-1])


def is_id(value: str) -> bool:
    """Whether ``value`` has the form of an id this store could have made."""
    return _ID.fullmatch(value) is not None


_last_id = [0, 0]  # (milliseconds, random part) of the last id made by this process
_id_lock = threading.Lock()


def new_trace_id() -> str:
    """A new trace id: 12 hex digits of milliseconds then 12 random ones, so ids sort by age.

    Within one process ids also increase inside a millisecond (the random part then counts up
    from the previous id's by a random step); ids from different processes in the same
    millisecond are in random order.
    """
    with _id_lock:
        ms = int(time.time() * 1000)
        last_ms, last_rand = _last_id
        if ms > last_ms:
            rand = secrets.randbits(47)  # leaves half the range for ids in the same millisecond
        else:
            ms, rand = last_ms, last_rand + 1 + secrets.randbits(16)
            if rand >= 1 << 48:
                ms, rand = last_ms + 1, secrets.randbits(47)
        _last_id[:] = [ms, rand]
    return f"{ms:012x}{rand:012x}"


class TraceQuery(BaseModel):
    """Filters and paging for listing traces (newest first)."""

    model_config = ConfigDict(extra="forbid")
    developer_id: str | None = None
    repo_url: str | None = None
    status: TraceStatus | None = None
    since: datetime | None = None
    """Only traces created at or after this time."""
    limit: int = Field(50, ge=1, le=1000)
    cursor: str | None = Field(None, pattern=r"^[0-9a-f]{1,64}$")
    """``next_cursor`` of the previous page."""
    text: str | None = Field(None, max_length=500)
    """A part of the bug description or id (any case; ``%`` and ``_`` are literal)."""
    repo_contains: str | None = Field(None, max_length=4096)
    """A part of the repository URL (any case, literal)."""
    order: Literal["id", "created"] = "id"
    """Newest first by id (as stored) or by ``created_at`` (ties by id); the cursor is an id."""


def effective_run(result: TraceResult) -> TraceResult:
    """The run of ``result`` that stands as the trace's verdict, by the rule finalize stores it
    with (:func:`~debugtrace.results.verdict_run`): the newest complete run (its tests gave a
    verdict), one against held-out tests first; a later finalize that failed before the tests,
    or one still running, never replaces a verdict. Else ``result`` itself."""
    return verdict_run([result, *result.history]) or result


def could_not_test(result: TraceResult) -> str | None:
    """Why the tests of this one run (``result`` alone, not its history) gave no verdict, or
    None when they did or never tried: its validation says so (``fix_validated`` None), or its
    tests stage ended ``failed`` or ``error`` without a validation (a run recorded before
    ``could_not_test`` existed). A tests stage that was skipped (nothing to validate, no
    checkout) did not try, so it is not "could not test"."""
    v = result.validation
    if v is not None:
        if v.fix_validated is not None:
            return None
        return v.could_not_test or "no test verdict"
    tests = next((st for st in reversed(result.stages) if st.name == "tests"), None)
    if tests is not None and tests.status in ("failed", "error"):
        return tests.message or f"the tests stage {tests.status}"
    return None


def latest_run(result: TraceResult) -> TraceResult:
    """The newest finalize run of ``result``: itself, or the first of its ``history`` when that
    one is newer (a run that failed before the tests, or is still running, while an earlier
    complete run stays the verdict). A run still going has no ``finalized_at`` yet."""
    if not result.history:
        return result
    first = result.history[0]
    if first.finalized_at is None:
        return first if first.stages and result.finalized_at is not None else result
    if result.finalized_at is None or first.finalized_at > result.finalized_at:
        return first
    return result


def outcome(run: TraceResult) -> str:
    """One run in a few words, for listings of runs: ``validated``, ``not validated``,
    ``could not test: <reason>``, else the first stage that failed (``workspace failed:
    <message>``), a stage still running, or ``no test verdict`` with the reason when the tests
    stage said one."""
    v = run.validation
    if v is not None and v.fix_validated is not None:
        return v.verdict
    reason = could_not_test(run)
    if reason is not None:
        return f"could not test: {reason}"
    for st in run.stages:
        if st.status in ("failed", "error"):
            return f"{st.name} {st.status}" + (f": {st.message}" if st.message else "")
        if st.status == "running":
            return f"running ({st.name})"
    tests = next((st for st in run.stages if st.name == "tests" and st.message), None)
    return "no test verdict" + (f": {tests.message}" if tests is not None else "")


class Verdict(BaseModel):
    """A finalize result in three values, what listings, filters and aggregates show of it.

    It is the verdict of the result's :func:`effective_run`: the latest run whose tests gave a
    verdict, so a later finalize that failed before the tests (or is still running) keeps the
    earlier verdict.
    """

    model_config = ConfigDict(frozen=True)

    validated: bool | None = None
    """Whether the fix validated (``Validation.fix_validated``); None while there is no test
    verdict (not finalized yet, nothing to test, or the tests could not run)."""
    score: int | None = None
    """The run's :meth:`~debugtrace.results.TraceResult.score` (the lowest of each grader's
    latest score); None when ungraded."""
    untested: bool = False
    """The tests tried and gave no verdict ("could not test": collection or import errors, no
    test ran, a missing runner, an environment that could not be built; see
    :func:`could_not_test`). ``validated`` is then None."""

    @classmethod
    def of(cls, result: TraceResult, grader: str | None = None) -> Verdict:
        """The verdict of ``result`` (of its :func:`effective_run`; scored by ``grader`` alone
        when given)."""
        run = effective_run(result)
        validation = run.validation
        return cls(
            validated=validation.fix_validated if validation is not None else None,
            score=run.score(grader),
            untested=could_not_test(run) is not None,
        )


class VerdictFilter(BaseModel):
    """Conditions on a :class:`Verdict`: the one definition of the result filters, used by
    exports (:meth:`ExportQuery.accepts`) and the dashboard's list.

    A score condition (``min_score``, ``max_score``) also leaves out traces whose fix no test
    judged (could not test, never tested: graded imports): their grades judged a fix nobody ran.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    validated: bool | None = None
    """True: only validated fixes; False: only fixes whose tests ran and did not validate
    (neither keeps a trace that could not be tested)."""
    untested: bool | None = None
    """True: only traces that could not be tested; False: none of them."""
    min_score: int | None = None
    """Only scores at least this (ungraded and untested traces never pass)."""
    max_score: int | None = None
    """Only scores at most this (ungraded and untested traces never pass)."""
    graded: bool = False
    """Only traces with a score (implied by ``min_score`` and ``max_score``)."""
    scored_untested: bool = False
    """Let untested traces pass the score conditions on their score (``--include-untested``)."""

    @property
    def active(self) -> bool:
        """Whether any condition is set (an inactive filter accepts every verdict)."""
        return (
            self.validated is not None
            or self.untested is not None
            or self.graded
            or self.min_score is not None
            or self.max_score is not None
        )

    def accepts(self, verdict: Verdict) -> bool:
        """Whether ``verdict`` meets every condition."""
        if self.validated is not None and verdict.validated is not self.validated:
            return False
        if self.untested is not None and verdict.untested is not self.untested:
            return False
        scored = self.min_score is not None or self.max_score is not None
        tested = verdict.validated is not None
        if scored and not tested and not self.scored_untested:
            return False
        if self.graded or scored:
            score = verdict.score
            if score is None:
                return False
            if self.min_score is not None and score < self.min_score:
                return False
            if self.max_score is not None and score > self.max_score:
                return False
        return True


class ExportQuery(BaseModel):
    """Which traces to stream for an export (:meth:`Storage.iter_traces`), newest first.

    ``developer_id`` and ``since`` select on the trace; ``validated_only``, ``min_score`` and
    ``grader`` on its finalize result's :class:`Verdict` (see :meth:`accepts`): both
    ``validated_only`` and ``min_score`` leave out traces whose fix could not be tested.
    """

    model_config = ConfigDict(extra="forbid")

    developer_id: str | None = None
    since: UtcDatetime | None = None
    """Only traces created at or after this time (naive means UTC)."""
    validated_only: bool = False
    """Only traces whose fix validated (:attr:`Verdict.validated`: the latest run whose tests
    gave a verdict found fail_to_pass tests, no pass_to_fail, and every expected held-out test
    among them); never one that could not be tested."""
    min_score: int | None = None
    """Only traces whose score (:meth:`TraceResult.score`) is at least this; ungraded ones and
    those no test judged (could not test, or never tested) never."""
    grader: str | None = None
    """Score by this grader alone, and only traces it graded."""
    include_untested: bool = False
    """With ``min_score``: also traces no test judged, on their score (the heuristic grader caps
    them at 3)."""
    page_size: int = Field(200, ge=1, le=1000)
    """How many traces a backend reads at a time: memory against round trips."""

    @property
    def filters_results(self) -> bool:
        """Whether a filter needs the finalize result (not only the trace's own columns)."""
        return self.validated_only or self.min_score is not None or self.grader is not None

    def verdict_filter(self) -> VerdictFilter:
        """The result filters as a :class:`VerdictFilter` (on the verdict scored by ``grader``)."""
        return VerdictFilter(
            validated=True if self.validated_only else None,
            min_score=self.min_score,
            graded=self.grader is not None,
            scored_untested=self.include_untested,
        )

    def accepts(self, result: TraceResult) -> bool:
        """Whether a trace with this finalize result passes the result filters."""
        if not self.filters_results:
            return True
        return self.verdict_filter().accepts(Verdict.of(result, self.grader))


class TraceSummary(BaseModel):
    """A trace without its events, for listings."""

    id: str
    developer_id: str
    repo_url: str
    bug_description: str
    base_commit: str | None = None
    branch: str | None = None
    status: TraceStatus
    created_at: datetime
    updated_at: datetime
    event_count: int


class TracePage(BaseModel):
    """One page of a listing; ``next_cursor`` is None on the last page."""

    items: list[TraceSummary]
    next_cursor: str | None = None


class TokenInfo(BaseModel):
    """An API token as stored: who it is for and whether it was revoked (never the token)."""

    id: str
    developer_id: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Whether the token still authenticates."""
        return self.revoked_at is None


class SessionInfo(BaseModel):
    """A signed-in dashboard session, as :meth:`Storage.get_session` finds it (valid only)."""

    developer_id: str | None
    """None for the admin."""
    token_id: str | None
    """The developer token the session was opened with (None for the admin token); revoking
    that token ends the session."""
    expires_at: datetime


def week_of(when: datetime) -> date:
    """The Monday of the ISO week holding ``when`` (a naive time is taken as UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    day = when.date()
    return day - timedelta(days=day.weekday())


class VerdictCount(BaseModel):
    """How many traces have one status and one verdict."""

    status: TraceStatus
    validated: bool | None
    score: int | None
    traces: int
    untested: bool = False
    """The traces could not be tested (:attr:`Verdict.untested`)."""


class WeekCount(BaseModel):
    """How many traces one developer created in one week."""

    developer_id: str
    week: date
    """The Monday (UTC) of the ISO week of the traces' ``created_at``."""
    traces: int


def _rank(value: bool | int | None) -> int:
    return -1 if value is None else int(value)


class TraceStats(BaseModel):
    """Aggregates over a set of traces (:meth:`Storage.stats`): what an overview shows.

    Every trace is counted once in ``verdicts`` (by status, validated, score, untested) and once in
    ``weeks`` (by developer and week of creation). Build one with :meth:`of`, which orders the
    rows, so two backends counting the same traces give equal objects.
    """

    verdicts: list[VerdictCount] = Field(default_factory=list)
    weeks: list[WeekCount] = Field(default_factory=list)

    @classmethod
    def of(
        cls,
        verdicts: Mapping[tuple[TraceStatus, bool | None, int | None, bool], int],
        weeks: Mapping[tuple[str, date], int],
    ) -> TraceStats:
        """From counts by ``(status, validated, score, untested)`` and by ``(developer_id,
        week)``; zero counts are left out."""
        return cls(
            verdicts=[
                VerdictCount(status=st, validated=v, score=sc, untested=u, traces=n)
                for (st, v, sc, u), n in sorted(
                    verdicts.items(),
                    key=lambda kv: (kv[0][0], _rank(kv[0][1]), _rank(kv[0][2]), kv[0][3]),
                )
                if n
            ],
            weeks=[
                WeekCount(developer_id=dev, week=week, traces=n)
                for (dev, week), n in sorted(weeks.items())
                if n
            ],
        )

    @property
    def total(self) -> int:
        """How many traces were counted."""
        return sum(c.traces for c in self.verdicts)

    def by_status(self) -> dict[str, int]:
        """Traces per status (statuses with none left out)."""
        out: Counter[str] = Counter()
        for c in self.verdicts:
            out[c.status] += c.traces
        return dict(out)

    def by_score(self) -> dict[int | None, int]:
        """Traces per score; None counts the ungraded ones."""
        out: Counter[int | None] = Counter()
        for c in self.verdicts:
            out[c.score] += c.traces
        return dict(out)

    def by_validated(self) -> dict[bool | None, int]:
        """Traces per test verdict: validated, not validated, None (no verdict, could not test
        among them)."""
        out: Counter[bool | None] = Counter()
        for c in self.verdicts:
            out[c.validated] += c.traces
        return dict(out)

    def untested(self) -> int:
        """How many traces could not be tested (:attr:`Verdict.untested`)."""
        return sum(c.traces for c in self.verdicts if c.untested)


class Storage(ABC):
    """Durable home of traces. Every method is atomic: it changes all it says or nothing."""

    @abstractmethod
    def create(self, trace: Trace) -> Trace:
        """Store a new trace with its events; returns it with ``id``, ``seq`` and times assigned.

        ``status`` starts as ``open`` and ``result`` empty whatever the input says; a given
        ``created_at`` is kept (imports), otherwise it is now.
        """

    @abstractmethod
    def append_events(self, trace_id: str, events: Sequence[Event]) -> list[Event]:
        """Append a batch atomically, numbering the events (gap-free ``seq`` after the last).

        The given event objects get their ``seq`` set and are returned, so pass objects you own
        (``Collector.add_events`` passes freshly parsed ones).
        Raises ``TraceNotFound`` for an unknown id and ``InvalidTrace`` when the trace would exceed
        ``max_events_per_trace`` (nothing is stored then). Safe under concurrent appenders.
        """

    @abstractmethod
    def get(self, trace_id: str) -> Trace:
        """The stored trace with all its events in ``seq`` order; raises ``TraceNotFound``."""

    # -- idempotent writes (a client retrying what it got no answer to) --------------------------

    def create_with_id(self, trace: Trace, trace_id: str) -> tuple[Trace, bool]:
        """Store a new trace under ``trace_id`` (chosen by the client, :data:`ID_PATTERN`), as
        :meth:`create` would; returns it and True.

        When a trace with that id exists and ``trace`` is a repeat of its submission
        (:func:`same_submission`), nothing is stored and it is returned with False; a different
        trace under the id raises ``TraceIdConflict``. Atomic: two concurrent calls store once.
        Backends that cannot store under a given id raise ``NotImplementedError`` (the default).
        """
        raise NotImplementedError(f"{type(self).__name__} does not store client-chosen ids")

    def append_events_at(
        self, trace_id: str, events: Sequence[Event], after: int
    ) -> tuple[list[Event], bool]:
        """Append ``events`` only where the trace has exactly ``after`` events (numbered from
        ``after + 1``); returns them and True.

        When the trace already holds this batch there (events ``after + 1 ...`` say the same,
        :func:`same_events`: the batch was applied and the client did not hear back), nothing is
        stored and the stored events are returned with False. Otherwise raises
        ``AppendConflict`` with the trace's event count; ``TraceNotFound`` and ``InvalidTrace``
        as :meth:`append_events`.

        The default reads the trace and then appends: correct for one writer per trace, not
        atomic against another appender in between. Backends override it with a conditional
        write (the SQL one: ``UPDATE ... WHERE event_count = :after``).
        """
        from debugtrace.errors import AppendConflict

        current = self.get(trace_id)
        count = len(current.events)
        if count == after:
            return self.append_events(trace_id, events), True
        already = current.events[after : after + len(events)]
        if after <= count and same_events(already, events):
            return already, False
        raise AppendConflict(trace_id, after, count)

    @abstractmethod
    def list(self, query: TraceQuery) -> TracePage:
        """Trace summaries matching ``query``, newest first, one page at a time."""

    # -- reads with defaults built on the methods above (backends override them to go faster) --

    def get_summary(self, trace_id: str) -> TraceSummary:
        """The trace without its events (as :meth:`list` shows it); raises ``TraceNotFound``.

        The default reads the whole trace with :meth:`get`.
        """
        trace = self.get(trace_id)
        return TraceSummary.model_validate(
            {
                **trace.model_dump(include=set(TraceSummary.model_fields) - {"event_count"}),
                "event_count": len(trace.events),
            }
        )

    def verdicts(self, trace_ids: Collection[str]) -> dict[str, Verdict]:
        """The :class:`Verdict` (validated, score, untested) of each trace, by id, for a page
        of a listing; unknown ids are left out.

        The default reads each trace with :meth:`get` (events too): override it with a query
        that reads only the results.
        """
        from debugtrace.errors import TraceNotFound

        out: dict[str, Verdict] = {}
        for trace_id in dict.fromkeys(trace_ids):
            try:
                out[trace_id] = Verdict.of(self.get(trace_id).result)
            except TraceNotFound:  # unknown, or removed meanwhile
                continue
        return out

    def stats(self, developer_id: str | None = None) -> TraceStats:
        """Counts over every trace (of ``developer_id`` when given): by status and verdict, and
        by developer and week of creation (see :class:`TraceStats`).

        The default pages through :meth:`list` and :meth:`verdicts`, so it reads every trace:
        override it with aggregate queries. Traces stored meanwhile may be left out.
        """
        verdicts: Counter[tuple[TraceStatus, bool | None, int | None, bool]] = Counter()
        weeks: Counter[tuple[str, date]] = Counter()
        cursor: str | None = None
        while True:
            page = self.list(TraceQuery(developer_id=developer_id, limit=1000, cursor=cursor))
            found = self.verdicts([s.id for s in page.items])
            for summary in page.items:
                verdict = found.get(summary.id)
                if verdict is None:  # removed since the page was read
                    continue
                key = (summary.status, verdict.validated, verdict.score, verdict.untested)
                verdicts[key] += 1
                weeks[(summary.developer_id, week_of(summary.created_at))] += 1
            if page.next_cursor is None:
                return TraceStats.of(verdicts, weeks)
            cursor = page.next_cursor

    def iter_traces(self, query: ExportQuery) -> Iterator[Trace]:
        """Every trace matching ``query`` with its events and result, newest first (like
        :meth:`list`), read ``query.page_size`` at a time so memory does not grow with the store.

        This default pages through :meth:`list` and reads each trace with :meth:`get`; backends
        override it with something cheaper. Traces stored after the export started may be left out.
        """
        from debugtrace.errors import TraceNotFound

        cursor: str | None = None
        while True:
            page = self.list(
                TraceQuery(
                    developer_id=query.developer_id,
                    since=query.since,
                    limit=query.page_size,
                    cursor=cursor,
                )
            )
            for summary in page.items:
                try:
                    trace = self.get(summary.id)
                except TraceNotFound:  # removed since the page was read
                    continue
                if query.accepts(trace.result):
                    yield trace
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def count_traces(self, query: ExportQuery) -> int | None:
        """How many traces :meth:`iter_traces` would yield, when that is cheap to know (for a
        progress bar); None otherwise. The default does not know."""
        return None

    @abstractmethod
    def set_status(
        self, trace_id: str, status: TraceStatus, *, expect: Collection[TraceStatus] = ()
    ) -> bool:
        """Set the status; with ``expect``, only if the current one is in it (compare-and-set).

        Returns whether the status was changed. Raises ``TraceNotFound`` for an unknown id.
        """

    @abstractmethod
    def save_result(self, trace_id: str, result: TraceResult) -> None:
        """Replace the trace's finalize result (stages, edits, validation, grades)."""

    # -- jobs, tokens and sessions (the HTTP server and job executors need these; others may
    # skip them) --

    def create_job(self, trace_id: str, kind: str, options: dict[str, Any]) -> Job:
        """Queue a job, atomically with moving the trace to ``queued``.

        Raises ``JobConflict`` when a finalize of the trace is already queued or running, and
        ``TraceNotFound`` for an unknown id.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def claim_job(
        self, job_id: str, owner: str | None = None, lease_s: float = LEASE_S
    ) -> Job | None:
        """Move a queued job to ``running`` (attempts + 1) under a lease: ``owner`` (the runner's
        id) holds it until ``lease_s`` seconds from now unless it renews it. None if the job was
        not queued (someone else has it, or it ended)."""
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def renew_job(self, job_id: str, owner: str, lease_s: float = LEASE_S) -> bool:
        """Extend ``owner``'s lease on a running job to ``lease_s`` seconds from now; False when
        ``owner`` no longer holds it (the lease expired and the job was requeued, or it ended)."""
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def finish_job(
        self, job_id: str, state: str, error: str | None = None, owner: str | None = None
    ) -> Job:
        """Record how a running job ended (``done`` or ``failed``); returns it.

        With ``owner``, only while that runner still holds the job: a runner whose lease was
        taken over changes nothing (the job is returned as it is).
        """
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def get_job(self, job_id: str) -> Job:
        """The job; raises ``JobNotFound``."""
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def live_job(self, trace_id: str) -> Job | None:
        """The trace's job that is queued, or running under a lease that has not expired; None
        when no job holds the trace."""
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def requeue_jobs(
        self, gone: Callable[[str], bool] | None = None, *, all_queued: bool = True
    ) -> Sequence[Job]:
        """Put ``running`` jobs back to ``queued`` whose lease expired (their runner died or lost
        the database), or whose owner ``gone`` says is dead; the trace of a finalize goes back to
        ``queued`` with it. A job whose runner still renews its lease is left alone.

        Returns, oldest first, every queued job (``all_queued``), or only those requeued now,
        for the executor to run.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def create_token(self, developer_id: str) -> str:
        """Issue an API token for one developer; returns it (only its hash is stored).

        Also marks the store as secured for good (see :meth:`has_tokens`), in the same
        transaction.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support tokens")

    def token_developer(self, token: str) -> str | None:
        """The developer a valid (not revoked) token belongs to, or None."""
        info = self.find_token(token)
        return info.developer_id if info is not None else None

    def find_token(self, token: str) -> TokenInfo | None:
        """The stored token ``token`` is, when it is valid (not revoked); None otherwise."""
        raise NotImplementedError(f"{type(self).__name__} does not support tokens")

    def has_tokens(self) -> bool:
        """Whether this store ever issued a developer token.

        A persisted flag, set with the first token and never cleared (revoking or deleting
        tokens does not clear it): a server over a store that has it always requires a token.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support tokens")

    def list_tokens(self, developer_id: str | None = None) -> builtins.list[TokenInfo]:
        """Every token issued (of ``developer_id`` when given), revoked ones too, oldest first."""
        raise NotImplementedError(f"{type(self).__name__} does not support tokens")

    def revoke_token(self, token_id: str) -> TokenInfo | None:
        """Revoke a token by its id (it stops authenticating at once, and every dashboard
        session opened with it ends); returns it, or None for an unknown id. Revoking twice
        keeps the first revocation time."""
        raise NotImplementedError(f"{type(self).__name__} does not support tokens")

    def create_session(self, developer_id: str | None, token_id: str | None, ttl_s: float) -> str:
        """Open a dashboard session for the admin (``developer_id`` None) or a developer signed
        in with token ``token_id``; returns its key (random; only its hash is stored)."""
        raise NotImplementedError(f"{type(self).__name__} does not support sessions")

    def get_session(self, key: str) -> SessionInfo | None:
        """The session of ``key`` while it is valid: not ended, not expired, and its token (if
        any) not revoked. None otherwise."""
        raise NotImplementedError(f"{type(self).__name__} does not support sessions")

    def end_session(self, key: str) -> None:
        """End the session of ``key`` (sign-out); nothing happens for an unknown key."""
        raise NotImplementedError(f"{type(self).__name__} does not support sessions")

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections and files. The default does nothing."""


class ForwardingStorage(Storage):
    """Another storage seen through this one: the abstract methods, jobs, tokens and sessions
    go to ``inner``; every other read is the contract's default built on them (subclasses pass
    more through where they mean to). :meth:`close` leaves ``inner`` open: its owner closes it."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def create(self, trace: Trace) -> Trace:
        return self.inner.create(trace)

    def append_events(self, trace_id: str, events: Sequence[Event]) -> list[Event]:
        return self.inner.append_events(trace_id, events)

    def create_with_id(self, trace: Trace, trace_id: str) -> tuple[Trace, bool]:
        return self.inner.create_with_id(trace, trace_id)

    def append_events_at(
        self, trace_id: str, events: Sequence[Event], after: int
    ) -> tuple[list[Event], bool]:
        return self.inner.append_events_at(trace_id, events, after)

    def get(self, trace_id: str) -> Trace:
        return self.inner.get(trace_id)

    def list(self, query: TraceQuery) -> TracePage:
        return self.inner.list(query)

    def set_status(
        self, trace_id: str, status: TraceStatus, *, expect: Collection[TraceStatus] = ()
    ) -> bool:
        return self.inner.set_status(trace_id, status, expect=expect)

    def save_result(self, trace_id: str, result: TraceResult) -> None:
        self.inner.save_result(trace_id, result)

    def create_job(self, trace_id: str, kind: str, options: dict[str, Any]) -> Job:
        return self.inner.create_job(trace_id, kind, options)

    def claim_job(
        self, job_id: str, owner: str | None = None, lease_s: float = LEASE_S
    ) -> Job | None:
        return self.inner.claim_job(job_id, owner, lease_s)

    def renew_job(self, job_id: str, owner: str, lease_s: float = LEASE_S) -> bool:
        return self.inner.renew_job(job_id, owner, lease_s)

    def finish_job(
        self, job_id: str, state: str, error: str | None = None, owner: str | None = None
    ) -> Job:
        return self.inner.finish_job(job_id, state, error, owner)

    def get_job(self, job_id: str) -> Job:
        return self.inner.get_job(job_id)

    def live_job(self, trace_id: str) -> Job | None:
        return self.inner.live_job(trace_id)

    def requeue_jobs(
        self, gone: Callable[[str], bool] | None = None, *, all_queued: bool = True
    ) -> Sequence[Job]:
        return self.inner.requeue_jobs(gone, all_queued=all_queued)

    def create_token(self, developer_id: str) -> str:
        return self.inner.create_token(developer_id)

    def token_developer(self, token: str) -> str | None:
        return self.inner.token_developer(token)

    def find_token(self, token: str) -> TokenInfo | None:
        return self.inner.find_token(token)

    def has_tokens(self) -> bool:
        return self.inner.has_tokens()

    def list_tokens(self, developer_id: str | None = None) -> builtins.list[TokenInfo]:
        return self.inner.list_tokens(developer_id)

    def revoke_token(self, token_id: str) -> TokenInfo | None:
        return self.inner.revoke_token(token_id)

    def create_session(self, developer_id: str | None, token_id: str | None, ttl_s: float) -> str:
        return self.inner.create_session(developer_id, token_id, ttl_s)

    def get_session(self, key: str) -> SessionInfo | None:
        return self.inner.get_session(key)

    def end_session(self, key: str) -> None:
        self.inner.end_session(key)

    def close(self) -> None:
        """Leaves the inner storage open (its owner closes it)."""


class GuardedStorage(ForwardingStorage):
    """Another storage whose trace writes first call ``guard``, which raises to refuse them.

    :func:`debugtrace.jobs.run_job` runs a job over one whose guard checks the job's lease: a
    runner that lost its lease (it stalled, the job was requeued and someone else runs it now)
    can no longer write the trace's status or results, so two runs never both record theirs.
    Reads, jobs, tokens and sessions pass straight through; :meth:`close` leaves ``inner`` open.
    """

    def __init__(self, inner: Storage, guard: Callable[[], None]) -> None:
        super().__init__(inner)
        self.guard = guard

    # -- guarded writes --------------------------------------------------------------------------

    def create(self, trace: Trace) -> Trace:
        self.guard()
        return self.inner.create(trace)

    def append_events(self, trace_id: str, events: Sequence[Event]) -> list[Event]:
        self.guard()
        return self.inner.append_events(trace_id, events)

    def create_with_id(self, trace: Trace, trace_id: str) -> tuple[Trace, bool]:
        self.guard()
        return self.inner.create_with_id(trace, trace_id)

    def append_events_at(
        self, trace_id: str, events: Sequence[Event], after: int
    ) -> tuple[list[Event], bool]:
        self.guard()
        return self.inner.append_events_at(trace_id, events, after)

    def set_status(
        self, trace_id: str, status: TraceStatus, *, expect: Collection[TraceStatus] = ()
    ) -> bool:
        self.guard()
        return self.inner.set_status(trace_id, status, expect=expect)

    def save_result(self, trace_id: str, result: TraceResult) -> None:
        self.guard()
        self.inner.save_result(trace_id, result)

    def create_job(self, trace_id: str, kind: str, options: dict[str, Any]) -> Job:
        self.guard()
        return self.inner.create_job(trace_id, kind, options)

    # -- the inner storage's own (cheaper) reads -------------------------------------------------

    def get_summary(self, trace_id: str) -> TraceSummary:
        return self.inner.get_summary(trace_id)

    def verdicts(self, trace_ids: Collection[str]) -> dict[str, Verdict]:
        return self.inner.verdicts(trace_ids)

    def stats(self, developer_id: str | None = None) -> TraceStats:
        return self.inner.stats(developer_id)

    def iter_traces(self, query: ExportQuery) -> Iterator[Trace]:
        return self.inner.iter_traces(query)

    def count_traces(self, query: ExportQuery) -> int | None:
        return self.inner.count_traces(query)
