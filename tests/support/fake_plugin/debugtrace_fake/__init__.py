"""A third-party plugin as an installed distribution would ship it (found via its entry point)."""

from __future__ import annotations

from typing import Any

import debugtrace
from debugtrace.storage import Storage

SEEN: list[tuple[str, Any]] = []


class MemoryStorage(Storage):
    """Just enough storage to prove a plugin backend is used."""

    def __init__(self) -> None:
        from debugtrace.storage.sql.storage import SQLStorage

        self._inner = SQLStorage("sqlite://")

    def create(self, trace):  # type: ignore[no-untyped-def]
        SEEN.append(("create", trace.developer_id))
        return self._inner.create(trace)

    def append_events(self, trace_id, events):  # type: ignore[no-untyped-def]
        return self._inner.append_events(trace_id, events)

    def get(self, trace_id):  # type: ignore[no-untyped-def]
        return self._inner.get(trace_id)

    def list(self, query):  # type: ignore[no-untyped-def]
        return self._inner.list(query)

    def set_status(self, trace_id, status, *, expect=()):  # type: ignore[no-untyped-def]
        return self._inner.set_status(trace_id, status, expect=expect)

    def save_result(self, trace_id, result):  # type: ignore[no-untyped-def]
        self._inner.save_result(trace_id, result)


@debugtrace.hookimpl
def register_storage(register):  # type: ignore[no-untyped-def]
    register("memory", lambda settings: MemoryStorage(), description="in-memory, for tests")


@debugtrace.hookimpl
def register_graders(register):  # type: ignore[no-untyped-def]
    register(
        "needs-missing-lib",
        lambda settings: None,
        requires=("a_module_that_is_not_installed",),
        install_hint="pip install debugtrace-fake[extra]",
    )


@debugtrace.hookimpl
def trace_submitted(trace):  # type: ignore[no-untyped-def]
    SEEN.append(("trace_submitted", trace.id))
