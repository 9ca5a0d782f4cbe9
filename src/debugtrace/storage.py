"""The storage contract every backend implements (the SQL built-in, or a plugin's).

``debugtrace.testing.StorageContract`` runs the same behaviour tests against any implementation.
"""

from __future__ import annotations

import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .model import Event, Trace, TraceStatus
from .results import TraceResult

if TYPE_CHECKING:
    from .jobs import Job

__all__ = ["Storage", "TracePage", "TraceQuery", "TraceSummary", "new_trace_id"]


def new_trace_id() -> str:
    """A new trace id: 12 hex digits of milliseconds then 12 random ones, so ids sort by age."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(6)}"


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
