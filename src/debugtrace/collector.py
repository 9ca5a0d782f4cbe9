"""The Collector: the one public entry point every front end (Python, CLI, HTTP, pytest) uses."""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from debugtrace.config import Settings
from debugtrace.errors import ErrorDetail, ExportError, InvalidTrace
from debugtrace.ingest import parse_events, parse_trace
from debugtrace.ingest.redact import Redactor
from debugtrace.model import Event, Trace, TraceStatus
from debugtrace.plugins import Plugins
from debugtrace.storage import (
    GuardedStorage,
    SessionInfo,
    Storage,
    TokenInfo,
    TracePage,
    TraceQuery,
    TraceStats,
    TraceSummary,
    Verdict,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from debugtrace.capture.recorder import Recorder
    from debugtrace.finalize import FinalizeOptions
    from debugtrace.jobs import Executor, Job
    from debugtrace.results import Stage
    from debugtrace.storage import ExportQuery

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
        self._redactor: Redactor | None = None

    # -- wiring -------------------------------------------------------------------------------

    @property
    def plugins(self) -> Plugins:
        """The plugin manager wrapper (built on first use)."""
        if self._plugins is None:
            self._plugins = Plugins(self.settings)
        return self._plugins

    @property
    def redactor(self) -> Redactor | None:
        """The secret redactor applied to everything submitted (None when turned off with
        ``DEBUGTRACE_REDACT=0``); built on first use."""
        if self._redactor is None and self.settings.redact:
            self._redactor = Redactor(
                self.settings.redact_patterns,
                self.plugins.redact_hook(),
                detect_secrets=self.settings.redact_detect_secrets,
            )
        return self._redactor

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
        self,
        trace: Trace | Mapping[str, Any] | str | bytes,
        *,
        finalize: bool = False,
        untrusted: bool = False,
    ) -> Trace:
        """Validate and store a trace (a model, dict or JSON text); returns it with its ``id``.

        Raises ``InvalidTrace`` (nothing is stored) or ``StorageError``. ``finalize=True`` runs the
        finalize pipeline right after storing. ``untrusted=True`` (the HTTP server) also refuses,
        before storing, a ``repo_url`` that finalize would never clone under these settings: only
        https and ssh, local paths only with ``allow_local_repos``.
        """
        parsed = parse_trace(trace, self.settings.limits, self.redactor)
        if untrusted:
            self.check_repo_url(parsed.repo_url)
        stored = self.storage.create(parsed)
        self.plugins.trace_submitted(stored)
        if finalize:
            return self.finalize(str(stored.id))
        return stored

    def submit_once(
        self, trace: Trace | Mapping[str, Any] | str | bytes, *, untrusted: bool = False
    ) -> tuple[Trace, bool]:
        """Store a trace under its own ``id`` (chosen by the client before sending, 24
        lowercase hex digits, see :func:`~debugtrace.storage.new_trace_id`); returns the
        stored trace and whether it was stored now.

        A repeat of the same submission (the client never heard back) stores nothing and
        returns the stored trace with False; a different trace under that id raises
        ``TraceIdConflict``. ``untrusted`` as for :meth:`submit`. Raises ``InvalidTrace`` when
        the id is missing or malformed.
        """
        from debugtrace.errors import ErrorDetail
        from debugtrace.storage import is_id

        parsed = parse_trace(trace, self.settings.limits, self.redactor)
        if parsed.id is None or not is_id(parsed.id):
            raise InvalidTrace([ErrorDetail(("id",), "must be 24 lowercase hex digits")])
        if untrusted:
            self.check_repo_url(parsed.repo_url)
        stored, created = self.storage.create_with_id(parsed, parsed.id)
        if created:
            self.plugins.trace_submitted(stored)
        return stored, created

    def submit_many(self, traces: Sequence[Trace | Mapping[str, Any] | str | bytes]) -> list[Trace]:
        """Validate every trace first, then store them all (an import of many files).

        Raises ``InvalidTrace`` for the first invalid one, its position in the location, before
        anything is stored.
        """
        parsed: list[Trace] = []
        for i, doc in enumerate(traces):
            try:
                parsed.append(parse_trace(doc, self.settings.limits, self.redactor))
            except InvalidTrace as exc:
                raise InvalidTrace([replace(e, loc=(i, *e.loc)) for e in exc.errors]) from None
        return [self.submit(trace) for trace in parsed]

    def check_repo_url(self, url: str) -> None:
        """Raise ``InvalidTrace`` (field ``repo_url``) when finalize would refuse to clone ``url``
        under these settings; the message says why."""
        from debugtrace.errors import ErrorDetail, RepoError
        from debugtrace.finalize.workspace import check_repo_url

        try:
            check_repo_url(url, self.settings.allow_local_repos)
        except RepoError as exc:
            raise InvalidTrace([ErrorDetail(("repo_url",), str(exc))]) from None

    def add_events(
        self,
        trace_id: str,
        events: Sequence[Event | Mapping[str, Any]] | Mapping[str, Any] | str | bytes,
        *,
        after: int | None = None,
    ) -> list[Event]:
        """Append a batch of events atomically; returns them with their sequence numbers.

        Accepts models, dicts, a ``{"events": [...]}`` document or JSON text. Raises
        ``InvalidTrace`` (nothing is stored), ``TraceNotFound`` or ``StorageError``.

        ``after=N`` makes the append idempotent (a client retrying a batch it got no answer
        to): it appends only when the trace has exactly ``N`` events; when it already holds this
        batch at ``N`` it stores nothing and returns the stored events (same ``seq``); else it
        raises ``AppendConflict`` with the trace's event count.
        """
        batch = parse_events(events, self.settings.limits, self.redactor)
        if after is None:
            stored = self.storage.append_events(trace_id, batch)
        else:
            if after < 0:
                raise InvalidTrace("after: must be 0 or more")
            stored, appended = self.storage.append_events_at(trace_id, batch, after)
            if not appended:
                return stored  # a repeat: the hooks saw these events the first time
        if stored:
            self.plugins.events_added(trace_id, stored)
        return stored

    def get(self, trace_id: str) -> Trace:
        """The stored trace with its events and results; raises ``TraceNotFound``."""
        return self.storage.get(trace_id)

    def summary(self, trace_id: str) -> TraceSummary:
        """The trace without its events (id, developer, repository, status, counts); raises
        ``TraceNotFound``. Cheaper than :meth:`get` for a trace with many events."""
        return self.storage.get_summary(trace_id)

    def verdicts(self, trace_ids: Collection[str]) -> dict[str, Verdict]:
        """Validated and score of each of these traces, by id (unknown ids left out)."""
        return self.storage.verdicts(trace_ids)

    def stats(self, developer_id: str | None = None) -> TraceStats:
        """Counts over every trace (of ``developer_id`` when given): by status, verdict and
        score, and by developer and week."""
        return self.storage.stats(developer_id)

    def traces(
        self,
        *,
        developer_id: str | None = None,
        repo_url: str | None = None,
        status: TraceStatus | None = None,
        since: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        text: str | None = None,
        repo_contains: str | None = None,
        order: Literal["id", "created"] = "id",
    ) -> TracePage:
        """One page of trace summaries, newest first; pass ``next_cursor`` back for the next.
        ``text`` and ``repo_contains`` search (:class:`~debugtrace.storage.TraceQuery`)."""
        try:
            query = TraceQuery(
                developer_id=developer_id,
                repo_url=repo_url,
                status=status,
                since=since,
                limit=limit,
                cursor=cursor,
                text=text,
                repo_contains=repo_contains,
                order=order,
            )
        except ValidationError as exc:
            raise InvalidTrace.from_pydantic(exc.errors()) from None
        return self.storage.list(query)

    def export_query(
        self,
        *,
        min_score: int | None = None,
        validated_only: bool = False,
        developer_id: str | None = None,
        since: datetime | None = None,
        grader: str | None = None,
        include_untested: bool = False,
    ) -> ExportQuery:
        """The :class:`~debugtrace.storage.ExportQuery` for these filters (see :meth:`export`);
        raises ``InvalidTrace`` for a bad value."""
        from debugtrace.storage import ExportQuery

        try:
            return ExportQuery(
                min_score=min_score,
                validated_only=validated_only,
                developer_id=developer_id,
                since=since,
                grader=grader,
                include_untested=include_untested,
            )
        except ValidationError as exc:
            raise InvalidTrace.from_pydantic(exc.errors()) from None

    def iter_traces(
        self,
        *,
        min_score: int | None = None,
        validated_only: bool = False,
        developer_id: str | None = None,
        since: datetime | None = None,
        grader: str | None = None,
        include_untested: bool = False,
    ) -> Iterator[Trace]:
        """Every stored trace matching the filters, with events and results, newest first.

        Streamed from storage a page at a time, so memory stays flat however many there are. The
        filters are those of :meth:`export`.
        """
        query = self.export_query(
            min_score=min_score,
            validated_only=validated_only,
            developer_id=developer_id,
            since=since,
            grader=grader,
            include_untested=include_untested,
        )
        return self.storage.iter_traces(query)

    def export(
        self,
        format: str = "jsonl",
        output: IO[Any] | str | os.PathLike[str] | None = None,
        *,
        min_score: int | None = None,
        validated_only: bool = False,
        developer_id: str | None = None,
        since: datetime | None = None,
        grader: str | None = None,
        include_untested: bool = False,
        repo: str | None = None,
        source: str | None = None,
        model: str | None = None,
        dedup: bool = False,
        limit: int | None = None,
        layout: Literal["file", "hf"] = "file",
        split_by: Literal["repo", "source"] = "repo",
        test_fraction: float = 0.1,
        metadata: bool = True,
        max_output_bytes: int = 8000,
        tokens: bool = True,
        progress: Callable[[int], None] | None = None,
        duplicates: list[str] | None = None,
    ) -> int:
        """Write the matching traces to ``output`` in ``format``; returns how many were written.

        Formats (:data:`debugtrace.export.FORMATS`): ``jsonl`` (one chat fine-tuning row per
        trace: ``{"messages", "tools", "metadata"}``), ``parquet`` (one row per trace; extra
        ``parquet``), ``dpo`` (preference pairs), ``otel`` (OpenTelemetry GenAI spans) and
        ``atif``. ``output`` is a binary (or, for the text formats, text) stream, or a path,
        replaced only when the export succeeds; default: standard output. ``layout="hf"`` writes
        ``output`` as a Hugging Face dataset folder instead (train and test split by
        ``split_by``, a dataset card; :mod:`debugtrace.export.hf`).

        Filters: ``developer_id``; ``since`` (created at or after); ``validated_only`` (the fix
        validated); ``min_score`` (score at least this; traces that could not be tested only
        with ``include_untested``); ``grader`` (only traces that grader graded, scored by it);
        ``repo`` (the repository contains this), ``source`` (recorded or imported by: pytest,
        shell, claude-code, swe-agent...), ``model`` (the agent's model contains this);
        ``dedup`` (the newest of traces with the same bug and net change,
        :func:`debugtrace.export.select.fix_key`); ``limit``. A trace's score is ``grader``'s
        latest grade, else the lowest of every grader's latest (``TraceResult.score``).
        ``metadata=False`` leaves jsonl rows in the strict OpenAI upload shape; command outputs
        keep ``max_output_bytes`` (head and tail); ``tokens=False`` skips the rows' token counts
        (:mod:`debugtrace.export.tokens`). ``progress`` is called with the running
        count; ``duplicates`` receives the ids ``dedup`` left out. Traces are streamed from
        storage, so memory stays flat. Raises ``ExportError`` (unknown format, missing
        dependency, bad layout) before writing anything, and ``InvalidTrace`` for a bad filter.
        """
        import sys

        from debugtrace.export import ExportOptions, export, get_format, open_output
        from debugtrace.export.select import Selection

        fmt = get_format(format)
        if limit is not None and limit < 1:
            raise InvalidTrace([ErrorDetail(("limit",), "must be at least 1")])
        selection = Selection(
            repo=repo,
            source=source,
            model=model,
            dedup=dedup,
            limit=limit,
            duplicates=duplicates if duplicates is not None else [],
        )
        traces = selection.apply(
            self.iter_traces(
                min_score=min_score,
                validated_only=validated_only,
                developer_id=developer_id,
                since=since,
                grader=grader,
                include_untested=include_untested,
            )
        )
        options = ExportOptions(
            grader=grader, metadata=metadata, max_output_bytes=max_output_bytes, tokens=tokens
        )
        if layout == "hf":
            from debugtrace.export.hf import export_hf

            if output is None or not isinstance(output, str | os.PathLike):
                raise ExportError("--layout hf writes a folder: give its path as the output")
            stats = export_hf(
                traces,
                fmt.name,
                output,
                options=options,
                split_by=split_by,
                test_fraction=test_fraction,
                progress=progress,
            )
            return sum(s.rows for s in stats.values())
        if output is None:
            output = sys.stdout
        if isinstance(output, str | os.PathLike):
            with open_output(output) as f:
                n = export(traces, fmt.name, f, options=options, progress=progress)
        else:
            n = export(traces, fmt.name, output, options=options, progress=progress)
        return n

    def finalize(
        self,
        trace_id: str,
        options: FinalizeOptions | Mapping[str, Any] | None = None,
        progress: Callable[[Stage], None] | None = None,
    ) -> Trace:
        """Validate the trace's fix: clone, apply the edits, run the tests before and after in a
        sandbox, grade, and store what each stage found. Returns the trace with its results.

        ``options`` is a :class:`~debugtrace.finalize.FinalizeOptions` or a dict of its fields
        (as a job stores them: ``fail_to_pass`` may be a list; see :meth:`finalize_request`).
        ``progress`` is called with each stage as it starts and ends. Raises ``TraceNotFound``,
        ``InvalidTrace`` for an unknown option, or ``FinalizeConflict`` when the trace is being
        finalized already; every other failure is recorded as the status
        of the stage where it happened.
        """
        from debugtrace.finalize import FinalizeOptions
        from debugtrace.finalize.pipeline import finalize

        if options is not None and not isinstance(options, FinalizeOptions):
            fields = dict(options)
            if fields.get("fail_to_pass") is not None:  # a JSON list in a job's options
                fields["fail_to_pass"] = tuple(fields["fail_to_pass"])
            try:
                options = FinalizeOptions(**fields)
            except TypeError as exc:
                raise InvalidTrace(f"finalize options: {exc}") from None
        if options is not None and options.force:
            self._refuse_force_over_a_live_job(trace_id)
        return finalize(self, trace_id, options, progress)

    def finalize_request(self, body: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
        """The finalize options an untrusted request gives (held-out ``test_patch`` and
        ``fail_to_pass``), checked, bounded and redacted like a trace's ``held_out``, as a dict
        for :meth:`enqueue`; raises ``InvalidTrace`` naming the field."""
        from debugtrace.ingest import parse_finalize_request

        return parse_finalize_request(body, self.settings.limits, self.redactor)

    def _refuse_force_over_a_live_job(self, trace_id: str) -> None:
        """``force`` is for a run that crashed: never beside a job that is queued or whose
        runner still renews its lease (that would be two runs of one trace at once)."""
        from debugtrace.errors import FinalizeConflict

        try:
            job = self.storage.live_job(trace_id)
        except NotImplementedError:  # a backend without jobs has no job to collide with
            return
        if job is not None:
            raise FinalizeConflict(
                f"trace {trace_id} is held by job {job.id} ({job.state}"
                + (
                    f", lease renewed until {job.lease_expires_at:%H:%M:%S} UTC"
                    if job.lease_expires_at
                    else ""
                )
                + "); --force only takes over a run that crashed"
            )

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

    def resume_jobs(self, *, all_queued: bool = True) -> int:
        """Requeue running jobs whose runner died (its lease expired, or it was a process of
        this machine that is gone) and hand them to the executor, with every other queued job
        unless ``all_queued`` is False (a periodic sweep); returns how many were submitted. Jobs
        whose runner is alive (another server on the same store) are left to it."""
        from debugtrace.jobs import runner_is_gone

        queued = self.storage.requeue_jobs(runner_is_gone, all_queued=all_queued)
        for job in queued:
            self.executor.submit(job.id)
        return len(queued)

    def grade(self, trace_id: str, graders: list[str] | None = None) -> Trace:
        """Grade a stored trace again with its stored test verdict, without re-running the tests.

        ``graders`` names the graders (default: ``DEBUGTRACE_GRADER``, else ``openai`` when an
        API key is set, else ``heuristic``). Returns the trace with its grades replaced.
        """
        from debugtrace.finalize.pipeline import regrade

        return regrade(self, trace_id, graders)

    def count_traces(self, query: ExportQuery) -> int | None:
        """How many traces :meth:`iter_traces` would yield for ``query`` (from
        :meth:`export_query`), when the storage knows it cheaply (for a progress bar); else None."""
        return self.storage.count_traces(query)

    def guarded(self, guard: Callable[[], None]) -> Collector:
        """A view of this Collector (same settings, plugins and store) whose writes to traces
        first call ``guard``, which raises to refuse them. :func:`debugtrace.jobs.run_job` runs
        each job through one whose guard checks the job's lease."""
        import copy

        view = copy.copy(self)
        view._storage = GuardedStorage(self.storage, guard)
        view._executor = None  # the view never queues or closes anything of its own
        view._plugins = self.plugins
        return view

    # -- API tokens and dashboard sessions (the HTTP server's developers) ----------------------

    def create_token(self, developer_id: str) -> str:
        """Issue an API token for one developer; returns it (only its hash is stored). From then
        on a server over this store always requires a token (:meth:`has_tokens`)."""
        return self.storage.create_token(developer_id)

    def token_developer(self, token: str) -> str | None:
        """The developer a valid (not revoked) token belongs to, or None."""
        return self.storage.token_developer(token)

    def token_info(self, token: str) -> TokenInfo | None:
        """The stored token (id, developer, dates) ``token`` is, while it is valid; else None."""
        return self.storage.find_token(token)

    def tokens(self, developer_id: str | None = None) -> list[TokenInfo]:
        """Every token issued (of ``developer_id`` when given), revoked ones too, oldest first;
        never the tokens themselves (only their hashes are stored)."""
        return self.storage.list_tokens(developer_id)

    def revoke_token(self, token_id: str) -> TokenInfo | None:
        """Revoke a token by id: it stops working at once, on every server, and the dashboard
        sessions opened with it end. Returns it, or None for an unknown id."""
        return self.storage.revoke_token(token_id)

    def has_tokens(self) -> bool:
        """Whether this store ever issued a developer token (then a server over it always
        requires a token, even after every token was revoked)."""
        return self.storage.has_tokens()

    def open_session(self, developer_id: str | None, token_id: str | None, ttl_s: float) -> str:
        """Open a dashboard session (the admin: ``developer_id`` None); returns its secret key."""
        return self.storage.create_session(developer_id, token_id, ttl_s)

    def session(self, key: str) -> SessionInfo | None:
        """The session of ``key`` while valid (not signed out, expired, or its token revoked)."""
        return self.storage.get_session(key)

    def end_session(self, key: str) -> None:
        """Sign out: end the session of ``key``."""
        self.storage.end_session(key)

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

        The trace is stored when the block starts and each ``rec.reason/run/command/edit/
        capture_diff`` call is appended at once, so a crash keeps everything recorded so far. The
        block's end closes the recording with its outcome (``rec.close(...)``, or the exception
        that ended it). With ``finalize=True`` the trace is finalized when the block ends without
        an exception. A bad field raises ``InvalidTrace``.
        """
        from debugtrace.capture.recorder import Recorder

        return Recorder.new(
            self,
            developer_id=developer_id,
            repo_url=repo_url,
            bug_description=bug_description,
            base_commit=base_commit,
            branch=branch,
            metadata=metadata,
            finalize=finalize,
        )
