"""Built-in executor ``local``: finalize jobs in an in-process thread pool."""

from __future__ import annotations

from typing import TYPE_CHECKING

from debugtrace.hookspecs import hookimpl

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.jobs import Executor
    from debugtrace.registry import Register


def _local(settings: Settings) -> Executor:
    from debugtrace.jobs.local import LocalExecutor

    return LocalExecutor(settings)


@hookimpl
def register_executors(register: Register) -> None:
    """Register ``local``."""
    register("local", _local, description="in-process thread pool (DEBUGTRACE_WORKERS threads)")
