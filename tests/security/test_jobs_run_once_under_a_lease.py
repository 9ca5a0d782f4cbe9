"""Issue 14, item 10: jobs ran twice.

Before, a second server process starting on the same store put every ``running`` job back in the
queue (there was no owner, lease or heartbeat) and ran it again, with ``force=True``, which let
the second finalize past the trace's lock while the first one was still running. Now:

- a claimed job has a lease (owner, expiry) that a heartbeat renews while it runs; only a job
  whose lease expired, or whose runner was a process of this machine that is gone, is requeued;
- a runner that lost its lease anyway (it stalled, and the job went to another runner) can no
  longer write the trace, and records nothing on the job;
- ``force`` never starts a finalize beside a job that holds the trace.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from debugtrace import Collector, Settings
from debugtrace.errors import FinalizeConflict
from debugtrace.jobs import Job, run_job
from debugtrace.results import Stage, TraceResult

REPO = "https://example.com/r.git"


class BlockingGrades(Collector):
    """A Collector whose grade job waits for the test, then stores a result (as grading does)."""

    started = threading.Event()
    release = threading.Event()
    runs: list[str] = []

    def grade(self, trace_id: str, graders: list[str] | None = None) -> Any:
        type(self).runs.append(trace_id)
        type(self).started.set()
        type(self).release.wait(30)
        result = TraceResult(stages=[Stage(name="grade", status="ok", message="graded")])
        self.storage.save_result(trace_id, result)
        return self.get(trace_id)


@pytest.fixture
def store(settings: Settings) -> Iterator[Settings]:
    BlockingGrades.started, BlockingGrades.release = threading.Event(), threading.Event()
    BlockingGrades.runs = []
    yield settings.model_copy(update={"sandbox": "local", "grader": "heuristic"})
    BlockingGrades.release.set()


def running(collector: Collector, job: Job) -> Job:
    for _ in range(200):
        current = collector.job(job.id)
        if current.state == "running":
            return current
        time.sleep(0.05)
    raise AssertionError(f"job {job.id} never ran")


def test_a_second_server_leaves_a_running_job_to_its_runner(store: Settings) -> None:
    first = BlockingGrades(settings=store)
    tid = str(first.submit({"developer_id": "d", "repo_url": REPO, "bug_description": "b"}).id)
    job = first.storage.create_job(tid, "grade", {})
    worker = threading.Thread(target=run_job, args=(first, job.id))
    worker.start()
    assert BlockingGrades.started.wait(10)
    running(first, job)

    with Collector(settings=store) as second:  # another server starting on the same store
        assert second.resume_jobs() == 0
        time.sleep(0.5)  # its executor would have run a requeued job by now
        assert second.job(job.id).state == "running"

    BlockingGrades.release.set()
    worker.join(30)
    done = first.job(job.id)
    assert (done.state, done.attempts) == ("done", 1)
    assert BlockingGrades.runs == [tid]  # ran once
    first.close()


def test_a_runner_that_lost_its_lease_records_nothing(store: Settings) -> None:
    stalled = BlockingGrades(settings=store)
    tid = str(stalled.submit({"developer_id": "d", "repo_url": REPO, "bug_description": "b"}).id)
    job = stalled.storage.create_job(tid, "grade", {})
    ended: list[Job | None] = []
    worker = threading.Thread(
        target=lambda: ended.append(run_job(stalled, job.id, owner="stalled-runner"))
    )
    worker.start()
    assert BlockingGrades.started.wait(10)
    running(stalled, job)

    # The runner stalls past its lease; the job goes back to the queue and to another runner.
    with Collector(settings=store) as other:
        requeued = other.storage.requeue_jobs(lambda owner: owner == "stalled-runner")
        assert [j.id for j in requeued] == [job.id]
        assert other.storage.claim_job(job.id, "new-runner") is not None

        BlockingGrades.release.set()  # the stalled runner wakes up and tries to store its result
        worker.join(30)
        assert other.get(tid).result.stages == []  # its write was refused
        after = other.job(job.id)
        assert (after.state, after.attempts) == ("running", 2)  # still the new runner's
        assert ended and ended[0] is not None and ended[0].state == "running"
        other.storage.finish_job(job.id, "done", owner="new-runner")
    stalled.close()


def test_force_never_starts_a_second_finalize_beside_a_live_job(store: Settings) -> None:
    collector = Collector(settings=store)
    tid = str(collector.submit({"developer_id": "d", "repo_url": REPO, "bug_description": "b"}).id)
    job = collector.storage.create_job(tid, "finalize", {})
    collector.storage.claim_job(job.id)  # claimed by this (live) process, under a fresh lease
    collector.storage.set_status(tid, "finalizing")  # the live job's finalize is under way
    with pytest.raises(FinalizeConflict, match=job.id):
        collector.finalize(tid, {"force": True})
    assert collector.get(tid).status == "finalizing"
    assert collector.get(tid).result.stages == []  # nothing of a second run was stored
    collector.close()


def test_a_job_that_died_mid_finalize_runs_again_through_the_ordinary_lock(
    store: Settings,
) -> None:
    collector = Collector(settings=store)
    tid = str(collector.submit({"developer_id": "d", "repo_url": REPO, "bug_description": "b"}).id)
    job = collector.storage.create_job(tid, "finalize", {"force": True})
    collector.storage.claim_job(job.id, "dead-runner", lease_s=0.05)
    collector.storage.set_status(tid, "finalizing")
    time.sleep(0.1)  # nothing renews the dead runner's lease
    seen: list[Any] = []
    original = collector.finalize

    def record(trace_id: str, options: Any = None, progress: Any = None) -> Any:
        seen.append((collector.get(trace_id).status, dict(options or {})))
        return original(trace_id, options, progress)

    collector.finalize = record  # type: ignore[method-assign]
    [again] = collector.storage.requeue_jobs()
    assert again.id == job.id
    ended = run_job(collector, job.id)
    assert ended is not None and ended.attempts == 2
    # Never forced: the trace went back to "queued" with its job, and the run took the lock.
    assert seen == [("queued", {"force": False})]
    collector.close()
