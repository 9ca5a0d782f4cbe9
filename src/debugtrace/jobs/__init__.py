"""Finalize (and re-grade) as jobs with persisted state, run by an executor.

A job is a row: ``queued`` -> ``running`` -> ``done`` | ``failed``, with its attempts and error.
Executors only carry job ids; whoever runs a job claims it first (compare-and-set in storage), so
a job runs once even if it is delivered twice.

A claimed job is held under a **lease**: the runner's id (``owner``) and an expiry, renewed by a
heartbeat thread while the job runs (:class:`Lease`). Only a job whose lease expired (its runner
died, froze, or lost the database for longer than the lease), or whose runner was a process of
this machine that is gone (:func:`runner_is_gone`), is put back in the queue
(:meth:`Collector.resume_jobs`, at a server's start and every half lease), so a second server
starting on the same store leaves the first one's jobs alone. The runner's writes to the trace
are fenced by the lease: once it is lost, the old runner can no longer record anything, so two
runs of one job never both store a result.

The built-in executor ``local`` is an in-process thread pool (zero setup); the ``executor`` hook
lets a plugin run jobs elsewhere (``plugins/debugtrace-celery``: Celery with Redis or RabbitMQ).
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from debugtrace.errors import JobConflict

__all__ = [
    "LEASE_S",
    "Executor",
    "Job",
    "JobKind",
    "JobRunner",
    "JobState",
    "JobStore",
    "Lease",
    "new_owner",
    "run_job",
    "runner_is_gone",
]

log = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]
JobKind = Literal["finalize", "grade"]

LEASE_S = 60.0
"""How long a claimed job stays its runner's without a renewal; the heartbeat renews it every
third of that. Runners' clocks must agree to within a fraction of it (NTP)."""


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
    lease_expires_at: datetime | None = None
    """While ``running``: until when its runner holds it (renewed as it runs)."""


class JobStore(Protocol):
    """What running a job needs from storage (every :class:`~debugtrace.storage.Storage` has it)."""

    def claim_job(
        self, job_id: str, owner: str | None = None, lease_s: float = LEASE_S
    ) -> Job | None: ...

    def renew_job(self, job_id: str, owner: str, lease_s: float = LEASE_S) -> bool: ...

    def finish_job(
        self, job_id: str, state: JobState, error: str | None = None, owner: str | None = None
    ) -> Job: ...

    def get_job(self, job_id: str) -> Job: ...


class JobRunner(Protocol):
    """What :func:`run_job` needs: the job store and the work (the Collector is one)."""

    @property
    def storage(self) -> JobStore: ...

    def guarded(self, guard: Callable[[], None]) -> JobRunner:
        """This runner, with every write to a trace calling ``guard`` first (which raises to
        refuse it)."""
        ...

    def finalize(self, trace_id: str, options: Mapping[str, Any]) -> object: ...

    def grade(self, trace_id: str, graders: list[str] | None = None) -> object: ...


@functools.cache
def _machine() -> str:
    """This process's host, boot and pid namespace: where its pids mean something. Empty when
    they cannot be known (then no runner is ever judged gone by its pid)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        pidns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    host = socket.gethostname().replace(":", "_").replace("/", "_")[:64]
    return f"{host}/{boot}/{pidns}"


def new_owner() -> str:
    """A runner id for a lease: machine, process and a random part (unique per claim)."""
    return f"{_machine() or socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(6)}"


def runner_is_gone(owner: str) -> bool:
    """Whether the runner ``owner`` was a process of this machine (same host, boot and pid
    namespace) that no longer exists: its jobs need not wait for their lease to expire. False
    whenever that cannot be told (another machine, or a pid now reused)."""
    machine, _, rest = owner.partition(":")
    pid, _, _ = rest.partition(":")
    if not _machine() or machine != _machine() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's)
        return False
    return False


class Lease:
    """A claimed job's lease, renewed by a daemon thread every ``lease_s / 3`` seconds.

    :meth:`check` is the fence every write of the job calls: it renews the lease on the spot,
    which also confirms the job is still ours, and raises ``JobConflict`` once it is not (it was
    requeued and claimed by another runner after this one stalled past the lease).
    """

    def __init__(self, store: JobStore, job_id: str, owner: str, lease_s: float = LEASE_S) -> None:
        self.store = store
        self.job_id = job_id
        self.owner = owner
        self.lease_s = lease_s
        self.lost = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._beat, name=f"dt-lease-{job_id[-8:]}", daemon=True
        )

    def start(self) -> Lease:
        """Start the heartbeat; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the heartbeat (the job ended, or was lost)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def renew(self) -> bool:
        """Renew now; False (and :attr:`lost`) once the job is not ours any more. A storage
        failure propagates: whether we still hold it is unknown then."""
        with self._lock:
            if self.lost:
                return False
            if self.store.renew_job(self.job_id, self.owner, self.lease_s):
                return True
            self.lost = True
            log.warning("job %s: lease lost (another runner took it over)", self.job_id)
            return False

    def check(self) -> None:
        """The fence: confirm (and extend) the lease, or raise ``JobConflict``. One small
        update per write of the job: a finalize writes once per stage."""
        if not self.lost:
            self.renew()
        if self.lost:
            raise JobConflict(f"job {self.job_id} lost its lease; another runner has it now")

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if not self.renew():
                    return
            except Exception as exc:  # the database is away: keep trying while the lease lasts
                log.warning("job %s: could not renew its lease: %s", self.job_id, exc)


def run_job(
    runner: JobRunner, job_id: str, *, lease_s: float = LEASE_S, owner: str | None = None
) -> Job | None:
    """Claim the job under a lease and run it; returns it as it ended, or None if someone else
    had claimed it.

    Never raises for a failure of the work itself: that is recorded on the job (and, for
    finalize, as stage statuses on the trace). While it runs, a heartbeat renews the lease; if
    the lease is lost anyway, the work is stopped at its next write and nothing is recorded
    (the job belongs to its new runner). Finalize never runs with ``force``: a job that died
    mid-run was handed back to the queue with its trace (:meth:`Storage.requeue_jobs`), so the
    trace's status lock stays the one thing that lets a finalize start.
    """
    storage = runner.storage
    owner = owner or new_owner()
    job = storage.claim_job(job_id, owner, lease_s)
    if job is None:
        return None
    lease = Lease(storage, job_id, owner, lease_s).start()
    try:
        work = runner.guarded(lease.check)
        if job.kind == "finalize":
            work.finalize(job.trace_id, {**job.options, "force": False})
        else:
            work.grade(job.trace_id, job.options.get("graders"))
    except Exception as exc:
        lease.stop()
        if lease.lost:
            log.warning("job %s: stopped, its lease went to another runner", job_id)
            return storage.get_job(job_id)
        log.exception("job %s failed", job_id)
        return storage.finish_job(job_id, "failed", f"{type(exc).__name__}: {exc}"[:2000], owner)
    lease.stop()
    return storage.finish_job(job_id, "done", None, owner)


class Executor(ABC):
    """Runs queued jobs somewhere. ``submit`` must not block on the job itself."""

    @abstractmethod
    def submit(self, job_id: str) -> None:
        """Arrange for the job to run (soon, once); returns at once."""

    def close(self) -> None:  # noqa: B027 - optional
        """Stop taking jobs; wait for the running ones where that makes sense."""
