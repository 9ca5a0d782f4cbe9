"""The Collector: the one public entry point every front end (Python, CLI, HTTP, pytest) uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .config import Settings
from .errors import InvalidTrace
from .ingest import parse_events, parse_trace
from .model import Event, Trace, TraceStatus
from .plugins import Plugins
from .storage import Storage, TracePage, TraceQuery

if TYPE_CHECKING:
    from collections.abc import Callable

    from .jobs import Executor, Job
    from .pipeline import FinalizeOptions
    from .recorder import Recorder
    from .results import Stage

__all__ = ["Collector"]


class Collector:
    """Validate, store and finalize traces.

    ``Collector()`` uses the embedded defaults (a SQLite file in the user data dir);
    ``Collector(database_url="postgresql://...")`` any SQLAlchemy URL. Backends are built lazily, on
    first use, from the plugins registered under the configured names. Use it as a context manager,
    or call :meth:`close`, to release database connections.
    """

    def __init__(
        self,
        database_url: str | None = None,
        sandbox: str | None = None,
        grader: str | None = None,
        settings: Settings | None = None,
        *,
        storage: Storage | None = None,
    ) -> None:
        settings = settings or Settings()
        updates: dict[str, Any] = {}
        if database_url is not None:
            updates["database_url"] = database_url
        if sandbox is not None:
            updates["sandbox"] = sandbox
        if grader is not None:
            updates["grader"] = grader
        self.settings = settings.model_copy(update=updates) if updates else settings
        self._storage = storage
        self._plugins: Plugins | None = None
        self._executor: Executor | None = None

    # -- wiring -------------------------------------------------------------------------------

    @property
    def plugins(self) -> Plugins:
        """The plugin manager wrapper (built on first use)."""
        if self._plugins is None:
            self._plugins = Plugins(self.settings)
        return self._plugins

    @property
    def storage(self) -> Storage:
        """The storage backend (built on first use from ``settings.storage``)."""
        if self._storage is None:
            self._storage = self.plugins.create("storage", self.settings.storage)
        return self._storage

    @property
    def executor(self) -> Executor:
        """The job executor (built on first use from ``settings.executor``)."""
        if self._executor is None:
            self._executor = self.plugins.create("executor", self.settings.executor)
        return self._executor

    def close(self) -> None:
        """Stop the job executor (waiting for running jobs) and release storage connections."""
        if self._executor is not None:
            self._executor.close()
            self._executor = None
        if self._storage is not None:
            self._storage.close()
            self._storage = None

    def __enter__(self) -> Collector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the API ------------------------------------------------------------------------------

    def submit(
        self, trace: Trace | Mapping[str, Any] | str | bytes, *, finalize: bool = False
    ) -> Trace:
        """Validate and store a trace (a model, dict or JSON text); returns it with its ``id``.

        Raises ``InvalidTrace`` (nothing is stored) or ``StorageError``. ``finalize=True`` runs the
        finalize pipeline right after storing.
        """
        parsed = parse_trace(trace, self.settings.limits)
        stored = self.storage.create(parsed)
        self.plugins.trace_submitted(stored)
        if finalize:
            return self.finalize(str(stored.id))
        return stored

    def add_events(
        self,
        trace_id: str,
        events: Sequence[Event | Mapping[str, Any]] | Mapping[str, Any] | str | bytes,
    ) -> list[Event]:
        """Append a batch of events atomically; returns them with their sequence numbers.

        Accepts models, dicts, a ``{"events": [...]}`` document or JSON text. Raises
        ``InvalidTrace`` (nothing is stored), ``TraceNotFound`` or ``StorageError``.
        """
        batch = parse_events(events, self.settings.limits)
        stored = self.storage.append_events(trace_id, batch)
        if stored:
            self.plugins.events_added(trace_id, stored)
        return stored

    def get(self, trace_id: str) -> Trace:
        """The stored trace with its events and results; raises ``TraceNotFound``."""
        return self.storage.get(trace_id)

    def traces(
        self,
        *,
        developer_id: str | None = None,
        repo_url: str | None = None,
        status: TraceStatus | None = None,
        since: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> TracePage:
        """One page of trace summaries, newest first; pass ``next_cursor`` back for the next."""
        try:
            query = TraceQuery(
                developer_id=developer_id,
                repo_url=repo_url,
                status=status,
                since=since,
                limit=limit,
                cursor=cursor,
            )
        except ValidationError as exc:
            raise InvalidTrace.from_pydantic(exc.errors()) from None
        return self.storage.list(query)

    def finalize(
        self,
        trace_id: str,
        options: FinalizeOptions | None = None,
        progress: Callable[[Stage], None] | None = None,
    ) -> Trace:
        """Validate the trace's fix: clone, apply the edits, run the tests before and after in a
        sandbox, grade, and store what each stage found. Returns the trace with its results.

        ``progress`` is called with each stage as it starts and ends. Raises ``TraceNotFound``, or
        ``FinalizeConflict`` when the trace is being finalized already; every other failure is
        recorded as the status of the stage where it happened.
        """
        from .pipeline import finalize

        return finalize(self, trace_id, options, progress)

    def enqueue(
        self, trace_id: str, kind: str = "finalize", options: dict[str, Any] | None = None
    ) -> Job:
        """Queue a finalize (or ``grade``) job for the trace and hand it to the executor.

        Returns the job at once (state ``queued``). Raises ``JobConflict`` when the trace is
        already queued or being finalized, ``TraceNotFound`` for an unknown id.
        """
        job = self.storage.create_job(trace_id, kind, dict(options or {}))
        self.executor.submit(job.id)
        return job

    def job(self, job_id: str) -> Job:
        """A job's current state; raises ``JobNotFound``."""
        return self.storage.get_job(job_id)

    def resume_jobs(self) -> int:
        """After a restart: requeue jobs a dead process left running and resubmit every queued
        job to the executor; returns how many were resubmitted."""
        queued = self.storage.requeue_jobs()
        for job in queued:
            self.executor.submit(job.id)
        return len(queued)

    def grade(self, trace_id: str, graders: list[str] | None = None) -> Trace:
        """Grade a stored trace again with its stored test verdict, without re-running the tests.

        ``graders`` names the graders (default: ``DEBUGTRACE_GRADER``, else ``openai`` when an
        API key is set, else ``heuristic``). Returns the trace with its grades replaced.
        """
        from .pipeline import regrade

        return regrade(self, trace_id, graders)

    def record(
        self,
        *,
        developer_id: str,
        repo_url: str,
        bug_description: str,
        base_commit: str | None = None,
        branch: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        finalize: bool = False,
    ) -> Recorder:
        """A context manager that records a debugging session as it happens (for agent harnesses).

        The trace is stored when the block starts and each ``rec.reason/run/edit/capture_diff``
        call is appended at once, so a crash keeps everything recorded so far. With
        ``finalize=True`` the trace is finalized when the block ends without an exception.
        """
        from .recorder import Recorder

        trace = Trace(
            developer_id=developer_id,
            repo_url=repo_url,
            bug_description=bug_description,
            base_commit=base_commit,
            branch=branch,
            metadata=dict(metadata or {}),
        )
        return Recorder(self, trace, finalize=finalize)
