"""debugtrace-celery: run debugtrace's finalize jobs on Celery workers (Redis or RabbitMQ).

Installing this distribution registers the executor ``celery`` through the ``debugtrace``
entry-point group. Select it with ``DEBUGTRACE_EXECUTOR=celery`` and point
``DEBUGTRACE_BROKER_URL`` at the broker (``redis://...`` or ``amqp://...``): the api then only
sends job ids to the broker, and workers started with ::

    celery -A debugtrace_celery worker --loglevel INFO

claim and run them against the same database (``DEBUGTRACE_DATABASE_URL``). Celery is imported
only when the executor is built or the worker app is looked up, so loading the plugin costs
nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from debugtrace.hookspecs import hookimpl  # the same marker as `debugtrace.hookimpl`

from .common import QUEUE_ENV, TASK_NAME, CelerySettings
from .executor import BrokerUnavailable, CeleryExecutor

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.registry import Register

__all__ = [
    "QUEUE_ENV",
    "TASK_NAME",
    "BrokerUnavailable",
    "CeleryExecutor",
    "CelerySettings",
    "app",
    "register_executors",
    "run_job",
]


def _factory(settings: Settings) -> CeleryExecutor:
    return CeleryExecutor(settings)


@hookimpl
def register_executors(register: Register) -> None:
    """Register the ``celery`` executor (needs the ``celery`` library)."""
    register(
        "celery",
        _factory,
        requires=("celery",),
        description="Celery workers behind a broker ($DEBUGTRACE_BROKER_URL, redis:// or amqp://)",
        install_hint="pip install debugtrace-celery",
    )


def __getattr__(name: str) -> Any:
    # `celery -A debugtrace_celery` looks up `debugtrace_celery.app`: build the worker app (and
    # import Celery) only then, not whenever debugtrace loads its plugins.
    if name in ("app", "run_job"):
        from . import worker

        return getattr(worker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
