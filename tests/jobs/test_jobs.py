"""Finalize as a job on the local executor: queued, run once, state persisted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from debugtrace.errors import JobConflict
from debugtrace.jobs import Job, run_job
from support.calc_repo import example_trace, make_calc_repo


def wait(collector: Collector, job: Job, deadline_s: float = 120) -> Job:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        job = collector.job(job.id)
        if job.state in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job.id} still {job.state}")


@pytest.fixture
def collector(settings: Settings, tmp_path: Path) -> Collector:
    return Collector(
        settings=settings.model_copy(update={"allow_local_repos": True, "sandbox": "local"})
    )


def test_enqueue_runs_finalize_in_the_background(collector: Collector, tmp_path: Path) -> None:
    make_calc_repo(tmp_path / "calc")
    tid = str(collector.submit(example_trace(tmp_path / "calc")).id)
    job = collector.enqueue(tid)
    assert job.state == "queued"
    with pytest.raises(JobConflict):
        collector.enqueue(tid)
    done = wait(collector, job)
    assert (done.state, done.attempts, done.error) == ("done", 1, None)
    trace = collector.get(tid)
    assert trace.status == "finalized"
    assert trace.result.validation is not None and trace.result.validation.fix_validated
    collector.close()


def test_a_failing_job_records_its_error_and_unlocks_the_trace(collector: Collector) -> None:
    tid = str(collector.submit({"developer_id": "d", "repo_url": "r", "bug_description": "b"}).id)
    job = collector.storage.create_job(tid, "grade", {"graders": ["no-such-grader"]})
    ended = run_job(collector, job.id)
    assert ended is not None and ended.state == "done"  # a grader failure is a stage status
    assert collector.get(tid).result.stages[-1].status == "failed"
    assert run_job(collector, job.id) is None  # already claimed: not run twice


def test_resume_requeues_what_a_dead_process_left_running(collector: Collector) -> None:
    tid = str(collector.submit({"developer_id": "d", "repo_url": "r", "bug_description": "b"}).id)
    job = collector.storage.create_job(tid, "grade", {})
    # The process that claimed it died here: nothing renews its lease, which expires.
    collector.storage.claim_job(job.id, "dead-runner", lease_s=0.05)
    time.sleep(0.1)
    assert collector.resume_jobs() == 1
    done = wait(collector, job)
    assert (done.state, done.attempts) == ("done", 2)
    collector.close()
