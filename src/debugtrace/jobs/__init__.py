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
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

__all__ = ["Executor", "Job", "JobKind", "JobRunner", "JobState", "JobStore", "run_job"]

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]
JobKind = Literal["finalize", "grade"]


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


class JobStore(Protocol):
    """What running a job needs from storage (every :class:`~debugtrace.storage.Storage` has it)."""

    def claim_job(self, job_id: str) -> Job | None: ...

    def finish_job(self, job_id: str, state: JobState, error: str | None = None) -> Job: ...


class JobRunner(Protocol):
    """What :func:`run_job` needs: the job store and the work (the Collector is one)."""

    @property
    def storage(self) -> JobStore: ...

    def finalize(self, trace_id: str, options: Mapping[str, Any]) -> object: ...

    def grade(self, trace_id: str, graders: list[str] | None = None) -> object: ...


def run_job(runner: JobRunner, job_id: str) -> Job | None:
    """Claim the job and run it; returns it as it ended, or None if someone else had claimed it.

    Never raises for a failure of the work itself: that is recorded on the job (and, for
    finalize, as stage statuses on the trace).
    """
    storage = runner.storage
    job = storage.claim_job(job_id)
    if job is None:
        return None
    try:
        if job.kind == "finalize":
            # A second attempt follows a crash that left the trace marked as finalizing.
            runner.finalize(job.trace_id, {**job.options, "force": job.attempts > 1})
        else:
            runner.grade(job.trace_id, job.options.get("graders"))
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
