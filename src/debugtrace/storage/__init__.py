"""The storage contract every backend implements (the SQL built-in, or a plugin's).

``debugtrace.testing.StorageContract`` runs the same behaviour tests against any implementation.
"""

from __future__ import annotations

import secrets
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from debugtrace.model import Event, Trace, TraceStatus, UtcDatetime
from debugtrace.results import TraceResult

if TYPE_CHECKING:
    from debugtrace.jobs import Job

__all__ = ["ExportQuery", "Storage", "TracePage", "TraceQuery", "TraceSummary", "new_trace_id"]


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


class ExportQuery(BaseModel):
    """Which traces to stream for an export (:meth:`Storage.iter_traces`), newest first.

    ``developer_id`` and ``since`` select on the trace; ``validated_only``, ``min_score`` and
    ``grader`` on its finalize result (see :meth:`accepts`).
    """

    model_config = ConfigDict(extra="forbid")

    developer_id: str | None = None
    since: UtcDatetime | None = None
    """Only traces created at or after this time (naive means UTC)."""
    validated_only: bool = False
    """Only traces whose fix validated (finalize found fail_to_pass tests and no pass_to_fail)."""
    min_score: int | None = None
    """Only traces whose score (:meth:`TraceResult.score`) is at least this; ungraded ones never."""
    grader: str | None = None
    """Score by this grader alone, and only traces it graded."""
    page_size: int = Field(200, ge=1, le=1000)
    """How many traces a backend reads at a time: memory against round trips."""

    @property
    def filters_results(self) -> bool:
        """Whether a filter needs the finalize result (not only the trace's own columns)."""
        return self.validated_only or self.min_score is not None or self.grader is not None

    def accepts(self, result: TraceResult) -> bool:
        """Whether a trace with this finalize result passes the result filters."""
        if self.validated_only and not (result.validation and result.validation.fix_validated):
            return False
        if self.min_score is None and self.grader is None:
            return True
        score = result.score(self.grader)
        return score is not None and (self.min_score is None or score >= self.min_score)


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

    @abstractmethod
    def list(self, query: TraceQuery) -> TracePage:
        """Trace summaries matching ``query``, newest first, one page at a time."""

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

    # -- jobs and tokens (the HTTP server and job executors need these; others may skip them) --

    def create_job(self, trace_id: str, kind: str, options: dict[str, Any]) -> Job:
        """Queue a job, atomically with moving the trace to ``queued``.

        Raises ``JobConflict`` when a finalize of the trace is already queued or running, and
        ``TraceNotFound`` for an unknown id.
        """
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def claim_job(self, job_id: str) -> Job | None:
        """Move a queued job to ``running`` (attempts + 1); None if it was not queued."""
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def finish_job(self, job_id: str, state: str, error: str | None = None) -> Job:
        """Record how a running job ended (``done`` or ``failed``); returns it."""
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def get_job(self, job_id: str) -> Job:
        """The job; raises ``JobNotFound``."""
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def requeue_jobs(self) -> Sequence[Job]:
        """Put jobs left ``running`` (by a process that died) back to ``queued``; returns every
        queued job, oldest first, for the executor to run again."""
        raise NotImplementedError(f"{type(self).__name__} does not support jobs")

    def create_token(self, developer_id: str) -> str:
        """Issue an API token for one developer; returns it (only its hash is stored)."""
        raise NotImplementedError(f"{type(self).__name__} does not support tokens")

    def token_developer(self, token: str) -> str | None:
        """The developer a valid (not revoked) token belongs to, or None."""
        raise NotImplementedError(f"{type(self).__name__} does not support tokens")

    def has_tokens(self) -> bool:
        """Whether any developer token has been issued."""
        raise NotImplementedError(f"{type(self).__name__} does not support tokens")

    def close(self) -> None:  # noqa: B027 - optional for backends without resources
        """Release connections and files. The default does nothing."""
