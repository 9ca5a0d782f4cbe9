"""Finalize (and re-grade) as jobs with persisted state, run by an executor.

A job is a row: ``queued`` -> ``running`` -> ``done`` | ``failed``, with its attempts and error.
Executors only carry job ids; whoever runs a job claims it first (compare-and-set in storage), so
a job runs once even if it is delivered twice, and a restart loses nothing: jobs left ``running``
by a dead process are put back in the queue (:meth:`Collector.resume_jobs`).

The built-in executor ``local`` is an in-process thread pool (zero setup); the ``executor`` hook
lets a plugin run jobs elsewhere (``plugins/debugtrace-celery``: Celery with Redis or RabbitMQ).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from debugtrace.errors import DebugtraceError

if TYPE_CHECKING:
    from debugtrace.collector import Collector
    from debugtrace.config import Settings

__all__ = ["Executor", "Job", "JobConflict", "LocalExecutor", "run_job"]

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]
JobKind = Literal["finalize", "grade"]


class JobConflict(DebugtraceError):
    """The trace already has a finalize queued or running."""


class Job(BaseModel):
    """One run of finalize (or grade) for one trace."""

    id: str
    trace_id: str
    kind: JobKind
    state: JobState
    attempts: int = 0
    options: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    created_at: datetime
    updated_at: datetime


def run_job(collector: Collector, job_id: str) -> Job | None:
    """Claim the job and run it; returns it as it ended, or None if someone else had claimed it.

    Never raises for a failure of the work itself: that is recorded on the job (and, for
    finalize, as stage statuses on the trace).
    """
    from debugtrace.finalize.pipeline import FinalizeOptions

    storage = collector.storage
    job = storage.claim_job(job_id)
    if job is None:
        return None
    try:
        if job.kind == "finalize":
            # A second attempt follows a crash that left the trace marked as finalizing.
            options = FinalizeOptions(**{**job.options, "force": job.attempts > 1})
            collector.finalize(job.trace_id, options)
        else:
            collector.grade(job.trace_id, job.options.get("graders"))
    except Exception as exc:
        log.exception("job %s failed", job_id)
        return storage.finish_job(job_id, "failed", f"{type(exc).__name__}: {exc}"[:2000])
    return storage.finish_job(job_id, "done")


class Executor(ABC):
    """Runs queued jobs somewhere. ``submit`` must not block on the job itself."""

    @abstractmethod
    def submit(self, job_id: str) -> None:
        """Arrange for the job to run (soon, once); returns at once."""

    def close(self) -> None:  # noqa: B027 - optional
        """Stop taking jobs; wait for the running ones where that makes sense."""


class LocalExecutor(Executor):
    """An in-process thread pool, for the embedded setup (zero configuration)."""

    def __init__(self, settings: Settings) -> None:
        from debugtrace.collector import Collector

        self.collector = Collector(settings=settings)
        self.pool = ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="dt-job")

    def submit(self, job_id: str) -> None:
        self.pool.submit(run_job, self.collector, job_id)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)
        self.collector.close()
