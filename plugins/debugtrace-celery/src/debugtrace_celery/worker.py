"""The worker side: the Celery app ``debugtrace_celery.app`` and its task ``debugtrace.run_job``.

Configured from the environment, like every debugtrace process: ``DEBUGTRACE_BROKER_URL`` (the
broker the api sends to), ``DEBUGTRACE_DATABASE_URL`` (the api's database: PostgreSQL when api
and workers are separate machines), ``DEBUGTRACE_CELERY_QUEUE`` and every other ``DEBUGTRACE_*``
setting finalize reads (sandbox, grader, timeouts). Start it with::

    celery -A debugtrace_celery worker --loglevel INFO
"""

from __future__ import annotations

import threading
from typing import Any

from celery import signals
from celery.utils.log import get_task_logger
from debugtrace import Collector, Settings
from debugtrace import jobs as _jobs
from debugtrace.errors import StorageError
from sqlalchemy.exc import OperationalError

from .common import TASK_NAME, CelerySettings, make_app

__all__ = ["app", "collector", "run_job"]

log = get_task_logger(__name__)


def _broker_url() -> str:
    url = Settings().broker_url
    if not url:
        raise RuntimeError(
            "debugtrace_celery: set DEBUGTRACE_BROKER_URL (the broker the api sends jobs to), "
            "for example redis://127.0.0.1:6379/0"
        )
    return url


app = make_app(_broker_url(), CelerySettings().queue)

_collector: Collector | None = None
_lock = threading.Lock()


def collector() -> Collector:
    """This worker process's Collector (built from the environment on first use, then reused)."""
    global _collector
    with _lock:
        if _collector is None:
            _collector = Collector()
        return _collector


@signals.worker_process_init.connect
def _forked(**_: Any) -> None:
    # A pool child must not share the parent's database connections: build its own.
    global _collector
    _collector = None


@signals.worker_process_shutdown.connect
@signals.worker_shutdown.connect
def _close(**_: Any) -> None:
    global _collector
    with _lock:
        if _collector is not None:
            _collector.close()
            _collector = None


@app.task(
    name=TASK_NAME,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # The database was unreachable (before the job was claimed, or while recording its end):
    # try again later instead of dropping the message.
    autoretry_for=(StorageError, OperationalError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=10,
)
def run_job(job_id: str) -> str | None:
    """Claim and run one debugtrace job; returns its final state (None: someone else had it)."""
    job = _jobs.run_job(collector(), job_id)
    if job is None:
        log.info("job %s: already claimed elsewhere, skipped", job_id)
        return None
    log.info("job %s (%s of trace %s): %s", job_id, job.kind, job.trace_id, job.state)
    return job.state
