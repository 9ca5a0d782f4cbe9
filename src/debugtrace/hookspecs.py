"""Every pluggy hook debugtrace calls. Plugins implement them with :data:`debugtrace.hookimpl`.

Built-in backends (``debugtrace.default_plugins``) implement these exactly like third-party plugins,
which are found through the entry-point group ``debugtrace``. Hooks may grow keyword arguments over
time; pluggy passes an implementation only the arguments it names, so old plugins keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from debugtrace.ingest.redact import Finding
    from debugtrace.model import Event, Trace
    from debugtrace.registry import Register
    from debugtrace.sandbox import ProjectSpec

PROJECT = "debugtrace"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_storage(register: Register) -> None:
    """Register storage backends.

    Called once, the first time a storage backend is looked up by name (``DEBUGTRACE_STORAGE``).
    Call ``register(name, factory, requires=(...), description=..., install_hint=...)`` for each
    backend; ``factory(settings)`` must return a :class:`debugtrace.storage.Storage` and should
    import its heavy dependencies only when called. ``requires`` names the importable modules it
    needs, so ``debugtrace plugins`` can say whether they are installed. Returns nothing.
    """


@hookspec
def register_sandboxes(register: Register) -> None:
    """Register sandbox backends (where the tests of a trace run).

    Called once, the first time a sandbox is looked up by name (``DEBUGTRACE_SANDBOX``). Same
    ``register`` signature as :func:`register_storage`; ``factory(settings)`` returns a
    ``debugtrace.sandbox.Sandbox``. Returns nothing.
    """


@hookspec
def register_graders(register: Register) -> None:
    """Register graders (what scores the debugging quality of a trace).

    Called once, the first time a grader is looked up by name (``DEBUGTRACE_GRADER``). Same
    ``register`` signature as :func:`register_storage`; ``factory(settings)`` returns a
    ``debugtrace.grading.Grader``. Returns nothing.
    """


@hookspec
def register_executors(register: Register) -> None:
    """Register job executors (where queued finalize jobs run).

    Called once, the first time an executor is looked up by name (``DEBUGTRACE_EXECUTOR``). Same
    ``register`` signature as :func:`register_storage`; ``factory(settings)`` returns a
    ``debugtrace.jobs.Executor``. Returns nothing.
    """


@hookspec(firstresult=True)
def detect_project(path: Path) -> ProjectSpec | None:
    """Say what kind of project is checked out at ``path`` and how to run its tests.

    Called by finalize's tests stage with the checkout (edits applied). Returns a
    :class:`debugtrace.sandbox.ProjectSpec`, or None to let the next implementation decide; the
    first non-None result wins, so mark an implementation ``tryfirst=True`` to override the
    built-in detection (Python, Node, Go, Rust, Maven, make).
    """


@hookspec
def redact(text: str) -> list[Finding] | None:
    """Find more secrets in a string of an incoming trace (a command, an output, a diff, ...).

    Called at ingestion, before anything is stored, for each string when at least one plugin
    implements it. Returns the secrets as :class:`debugtrace.ingest.redact.Finding` (``start``,
    ``end``, ``kind``: offsets in ``text``), or None; each is replaced by ``[REDACTED:kind]`` and
    counted on the event's ``details.redacted``.
    """


@hookspec
def trace_submitted(trace: Trace) -> None:
    """Notification: a new trace was stored.

    Called after the trace and its events are committed, with the stored trace (``id`` and event
    ``seq`` assigned). Exceptions propagate to the caller of ``Collector.submit``. Returns nothing.
    """


@hookspec
def events_added(trace_id: str, events: list[Event]) -> None:
    """Notification: a batch of events was appended to a trace.

    Called after the batch is committed, with the events as stored (``seq`` assigned, in order).
    Returns nothing.
    """


@hookspec
def trace_finalized(trace: Trace) -> None:
    """Notification: finalize finished for a trace.

    Called after the results (stages, validation, grades) are stored, with the whole stored trace.
    Returns nothing.
    """
