"""Contract tests any backend must pass: storage, sandboxes (:mod:`.sandbox`), graders.

A plugin author reuses them like this::

    from debugtrace.testing import StorageContract

    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            s = MyStorage(...)
            yield s
            s.close()

Each test makes its own traces under a unique developer id, so a shared database is fine.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from debugtrace.errors import InvalidTrace, TraceNotFound
from debugtrace.grading import Grader
from debugtrace.model import (
    CommandEvent,
    EditEvent,
    HeldOut,
    ReasoningEvent,
    Trace,
    TraceStatus,
)
from debugtrace.results import Grade, Stage, TraceResult, Validation
from debugtrace.storage import (
    ExportQuery,
    ForwardingStorage,
    Storage,
    TraceQuery,
    TraceStats,
    Verdict,
    VerdictCount,
    WeekCount,
    is_id,
    week_of,
)

__all__ = [
    "UNTESTED_REASON",
    "DefaultReads",
    "GraderContract",
    "SandboxContract",
    "StorageContract",
    "example_validation",
    "sample_trace",
]


def sample_trace(developer_id: str | None = None, **fields: Any) -> Trace:
    """A small valid trace (hypothesis, failing command, edit) with a unique developer id."""
    base: dict[str, Any] = {
        "developer_id": developer_id or f"dev-{uuid.uuid4().hex[:12]}",
        "repo_url": "https://github.com/example/calc",
        "bug_description": "divide() crashes on zero",
        "events": [
            ReasoningEvent.new("no guard for b == 0", "hypothesis", "medium"),
            CommandEvent.new("pytest -x", output="FAILED test_divide_by_zero", exit_code=1),
            EditEvent.new("calc.py", "--- a/calc.py\n+++ b/calc.py\n@@ -1 +1,2 @@\n x\n+y\n"),
        ],
    }
    base.update(fields)
    return Trace.model_validate(base)


class DefaultReads(ForwardingStorage):
    """Another storage with only its abstract methods (and jobs and tokens): every other read
    is the contract's default built on them, as a backend that overrides nothing has it.
    Compare a backend's overrides with ``DefaultReads(backend)``."""


class StorageContract:
    """Behaviour every :class:`~debugtrace.storage.Storage` must have. Provide a ``storage``
    fixture in a subclass; the tests below then run against it."""

    @pytest.fixture
    def storage(self) -> Storage:
        raise NotImplementedError("subclasses provide a `storage` fixture")

    def test_create_assigns_id_seq_and_times(self, storage: Storage) -> None:
        stored = storage.create(sample_trace())
        assert stored.id
        assert [e.seq for e in stored.events] == [1, 2, 3]
        assert stored.status == "open"
        assert stored.created_at is not None and stored.created_at.tzinfo is not None

    def test_get_returns_what_create_returned(self, storage: Storage) -> None:
        stored = storage.create(sample_trace(metadata={"harness": "x", "n": [1, 2]}))
        assert storage.get(str(stored.id)) == stored

    def test_create_keeps_a_given_created_at(self, storage: Storage) -> None:
        when = datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        stored = storage.create(sample_trace(created_at=when))
        assert storage.get(str(stored.id)).created_at == when

    def test_create_ignores_server_managed_fields(self, storage: Storage) -> None:
        trace = sample_trace(status="finalized", result={"grades": [{"score": 5}]})
        stored = storage.get(str(storage.create(trace).id))
        assert stored.status == "open"
        assert stored.result == TraceResult()

    def test_unknown_id_is_trace_not_found(self, storage: Storage) -> None:
        with pytest.raises(TraceNotFound):
            storage.get("no-such-trace")
        with pytest.raises(TraceNotFound):
            storage.append_events("no-such-trace", [ReasoningEvent.new("x")])
        with pytest.raises(TraceNotFound):
            storage.set_status("no-such-trace", "queued")
        with pytest.raises(TraceNotFound):
            storage.save_result("no-such-trace", TraceResult())

    def test_append_continues_the_sequence(self, storage: Storage) -> None:
        tid = str(storage.create(sample_trace()).id)
        first = storage.append_events(tid, [ReasoningEvent.new("a"), ReasoningEvent.new("b")])
        second = storage.append_events(tid, [CommandEvent.new("ls")])
        assert [e.seq for e in first + second] == [4, 5, 6]
        assert [e.seq for e in storage.get(tid).events] == [1, 2, 3, 4, 5, 6]

    def test_append_empty_batch_is_a_no_op(self, storage: Storage) -> None:
        tid = str(storage.create(sample_trace()).id)
        assert storage.append_events(tid, []) == []
        assert len(storage.get(tid).events) == 3

    def test_extra_details_keys_round_trip(self, storage: Storage) -> None:
        tid = str(storage.create(sample_trace(events=[])).id)
        ev = CommandEvent.new("make", output="ok", tool="bash", nested={"a": [1, 2.5, None]})
        storage.append_events(tid, [ev])
        got = storage.get(tid).events[0]
        assert got.details.model_extra == {"tool": "bash", "nested": {"a": [1, 2.5, None]}}

    def test_events_per_trace_limit_rejects_whole_batch(self, storage: Storage) -> None:
        limits = getattr(storage, "limits", None)
        if limits is None:
            pytest.skip("backend does not expose its limits")
        tid = str(storage.create(sample_trace(events=[])).id)
        room = limits.max_events_per_trace
        if room > 10_000:
            pytest.skip("limit too large to reach quickly")
        storage.append_events(tid, [ReasoningEvent.new("x") for _ in range(room - 1)])
        with pytest.raises(InvalidTrace):
            storage.append_events(tid, [ReasoningEvent.new("y") for _ in range(2)])
        assert len(storage.get(tid).events) == room - 1

    def test_concurrent_appends_from_threads_are_gap_free(self, storage: Storage) -> None:
        tid = str(storage.create(sample_trace(events=[])).id)
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(10):
                    storage.append_events(
                        tid, [ReasoningEvent.new(f"w{n}-{i}-{j}") for j in range(3)]
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        evs = storage.get(tid).events
        assert [e.seq for e in evs] == list(range(1, 121))
        texts = [e.details.text for e in evs if isinstance(e, ReasoningEvent)]
        assert len(set(texts)) == 120
        # Each batch landed contiguously and in order.
        for n in range(4):
            mine = [t for t in texts if t.startswith(f"w{n}-")]
            assert mine == [f"w{n}-{i}-{j}" for i in range(10) for j in range(3)]

    def test_list_filters_and_pages_newest_first(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:12]}"
        ids = [str(storage.create(sample_trace(dev)).id) for _ in range(5)]
        other = storage.create(sample_trace(repo_url="https://example.org/other", developer_id=dev))
        page = storage.list(TraceQuery(developer_id=dev, limit=2))
        seen = [s.id for s in page.items]
        while page.next_cursor:
            page = storage.list(TraceQuery(developer_id=dev, limit=2, cursor=page.next_cursor))
            seen += [s.id for s in page.items]
        assert seen == [other.id, *reversed(ids)]
        repo_only = storage.list(TraceQuery(developer_id=dev, repo_url="https://example.org/other"))
        assert [s.id for s in repo_only.items] == [other.id]
        assert repo_only.items[0].event_count == 3

    def test_list_by_status_and_since(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:12]}"
        a = str(storage.create(sample_trace(dev)).id)
        storage.create(sample_trace(dev))
        storage.set_status(a, "finalized")
        done = storage.list(TraceQuery(developer_id=dev, status="finalized"))
        assert [s.id for s in done.items] == [a]
        future = datetime.now(UTC) + timedelta(days=1)
        assert storage.list(TraceQuery(developer_id=dev, since=future)).items == []

    def test_set_status_compare_and_set(self, storage: Storage) -> None:
        tid = str(storage.create(sample_trace()).id)
        assert storage.set_status(tid, "finalizing", expect=["open", "queued"]) is True
        assert storage.set_status(tid, "finalizing", expect=["open", "queued"]) is False
        assert storage.get(tid).status == "finalizing"

    def test_a_job_runs_once_and_locks_the_trace_meanwhile(self, storage: Storage) -> None:
        from debugtrace.errors import JobConflict

        tid = str(storage.create(sample_trace()).id)
        job = storage.create_job(tid, "finalize", {"repeat": 2})
        assert (job.state, job.attempts, job.options) == ("queued", 0, {"repeat": 2})
        assert storage.get(tid).status == "queued"
        with pytest.raises(JobConflict):
            storage.create_job(tid, "finalize", {})
        claimed = storage.claim_job(job.id)
        assert claimed is not None and (claimed.state, claimed.attempts) == ("running", 1)
        assert storage.claim_job(job.id) is None  # a second delivery does not run it again
        done = storage.finish_job(job.id, "done")
        assert done.state == "done"
        assert storage.get(tid).status == "finalized"
        assert storage.create_job(tid, "finalize", {}).state == "queued"  # may run again now

    def test_jobs_whose_lease_expired_are_requeued_with_their_trace(self, storage: Storage) -> None:
        tid = str(storage.create(sample_trace()).id)
        job = storage.create_job(tid, "finalize", {})
        claimed = storage.claim_job(job.id, "dead-runner", lease_s=0.05)
        assert claimed is not None and claimed.lease_expires_at is not None
        storage.set_status(tid, "finalizing")  # ... the run started, then the process died
        time.sleep(0.1)
        requeued = [j.id for j in storage.requeue_jobs()]
        assert job.id in requeued
        assert storage.get(tid).status == "queued"  # the next run takes the ordinary lock
        assert storage.renew_job(job.id, "dead-runner") is False  # the old runner lost it
        again = storage.claim_job(job.id, "new-runner")
        assert again is not None and again.attempts == 2
        # The old runner cannot record an end any more; the new one can.
        assert storage.finish_job(job.id, "failed", "late", owner="dead-runner").state == (
            "running"
        )
        assert storage.finish_job(job.id, "done", owner="new-runner").state == "done"

    def test_a_job_whose_runner_renews_its_lease_is_not_requeued(self, storage: Storage) -> None:
        tid = str(storage.create(sample_trace()).id)
        job = storage.create_job(tid, "finalize", {})
        storage.claim_job(job.id, "live-runner", lease_s=60)
        storage.set_status(tid, "finalizing")
        assert storage.renew_job(job.id, "live-runner", lease_s=60) is True
        assert storage.renew_job(job.id, "someone-else", lease_s=60) is False
        assert job.id not in [j.id for j in storage.requeue_jobs()]  # a second server starts
        assert storage.get_job(job.id).state == "running"
        assert storage.get(tid).status == "finalizing"
        live = storage.live_job(tid)
        assert live is not None and live.id == job.id
        storage.finish_job(job.id, "done", owner="live-runner")
        assert storage.live_job(tid) is None

    def test_a_job_whose_runner_is_gone_is_requeued_before_its_lease_ends(
        self, storage: Storage
    ) -> None:
        tid = str(storage.create(sample_trace()).id)
        job = storage.create_job(tid, "grade", {})
        storage.claim_job(job.id, "killed-runner", lease_s=60)
        other = storage.create_job(str(storage.create(sample_trace()).id), "grade", {})
        storage.claim_job(other.id, "live-runner", lease_s=60)
        requeued = storage.requeue_jobs(lambda owner: owner == "killed-runner", all_queued=False)
        assert [j.id for j in requeued] == [job.id]  # only those requeued now
        assert storage.get_job(other.id).state == "running"

    def test_unknown_job_and_trace(self, storage: Storage) -> None:
        from debugtrace.errors import JobNotFound

        with pytest.raises(JobNotFound):
            storage.get_job("nope")
        with pytest.raises(JobNotFound):
            storage.get_job("ab\x00cd")  # text a database may refuse is simply unknown
        with pytest.raises(TraceNotFound):
            storage.create_job("nope", "finalize", {})
        with pytest.raises(TraceNotFound):
            storage.get("ab\x00cd")
        assert storage.claim_job("0" * 24) is None

    def test_ids_have_the_documented_form(self, storage: Storage) -> None:
        tid = str(storage.create(sample_trace()).id)
        job = storage.create_job(tid, "finalize", {})
        token = storage.create_token(f"dev-{uuid.uuid4().hex[:8]}")
        info = storage.find_token(token)
        assert info is not None
        assert is_id(tid) and is_id(job.id) and is_id(info.id)

    def test_tokens_are_stored_hashed_and_name_their_developer(self, storage: Storage) -> None:
        token = storage.create_token("alice")
        assert token.startswith("dt_") and len(token) > 30
        assert storage.token_developer(token) == "alice"
        assert storage.token_developer(token + "x") is None
        assert storage.has_tokens()

    def test_tokens_are_listed_and_revoked(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:8]}"
        first, second = storage.create_token(dev), storage.create_token(dev)
        listed = storage.list_tokens(dev)
        assert [t.developer_id for t in listed] == [dev, dev]
        assert all(t.active for t in listed)
        info = storage.find_token(first)
        assert info is not None and info.id in [t.id for t in listed]
        assert all(first not in t.model_dump_json() for t in listed)  # never the token itself
        revoked = storage.revoke_token(info.id)
        assert revoked is not None and revoked.revoked_at is not None
        assert storage.token_developer(first) is None  # at once
        assert storage.token_developer(second) == dev
        again = storage.revoke_token(info.id)
        assert again is not None and again.revoked_at == revoked.revoked_at
        assert storage.revoke_token("0" * 24) is None
        assert [t.active for t in storage.list_tokens(dev)] == [False, True]
        # Revoking every token leaves the store secured: a server over it still wants a token.
        for t in storage.list_tokens(dev):
            storage.revoke_token(t.id)
        assert storage.has_tokens()

    def test_sessions_end_on_sign_out_revocation_and_expiry(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:8]}"
        token = storage.create_token(dev)
        info = storage.find_token(token)
        assert info is not None
        key = storage.create_session(dev, info.id, ttl_s=60)
        found = storage.get_session(key)
        assert found is not None and (found.developer_id, found.token_id) == (dev, info.id)
        assert storage.get_session(key + "x") is None
        admin = storage.create_session(None, None, ttl_s=60)
        admin_session = storage.get_session(admin)
        assert admin_session is not None and admin_session.developer_id is None
        storage.end_session(admin)  # sign-out
        assert storage.get_session(admin) is None
        other = storage.create_session(dev, info.id, ttl_s=60)
        storage.revoke_token(info.id)  # revocation ends every session of the token
        assert storage.get_session(key) is None and storage.get_session(other) is None
        short = storage.create_session(None, None, ttl_s=0.05)
        time.sleep(0.1)
        assert storage.get_session(short) is None

    def test_held_out_round_trips(self, storage: Storage) -> None:
        held = HeldOut(
            test_patch=(
                "--- a/tests/test_calc.py\n+++ b/tests/test_calc.py\n@@ -1 +1,2 @@\n x\n+y\n"
            ),
            fail_to_pass=["tests/test_calc.py::test_divide_by_zero", "tests/test_calc.py::ü[1]"],
        )
        dev = f"dev-{uuid.uuid4().hex[:12]}"
        with_it = storage.create(sample_trace(dev, held_out=held))
        without = storage.create(sample_trace(dev))
        assert with_it.held_out == held
        assert storage.get(str(with_it.id)).held_out == held
        assert storage.get(str(without.id)).held_out is None
        assert DefaultReads(storage).get(str(with_it.id)).held_out == held
        exported = {t.id: t.held_out for t in storage.iter_traces(ExportQuery(developer_id=dev))}
        assert exported == {with_it.id: held, without.id: None}
        # A result saved later leaves it alone.
        storage.save_result(str(with_it.id), TraceResult(validation=example_validation(None)))
        assert storage.get(str(with_it.id)).held_out == held

    def test_save_result_round_trips(self, storage: Storage) -> None:
        tid = str(storage.create(sample_trace()).id)
        result = TraceResult(
            stages=[Stage(name="workspace", status="ok", duration_s=0.5, message="cloned")],
            validation=Validation(fail_to_pass=["t::a"], fix_validated=True),
        )
        storage.save_result(tid, result)
        assert storage.get(tid).result == result
        # Could not test, held-out checks, the environment and earlier runs come back too.
        untested = example_validation(None).model_copy(
            update={"expected_fail_to_pass": ["t::a"], "missing_expected": ["t::a"]}
        )
        again = TraceResult(validation=untested).with_run(
            TraceResult(stages=[Stage(name="workspace", status="failed", message="gone")])
        )
        storage.save_result(tid, result.with_run(again))
        assert storage.get(tid).result == result.with_run(again)

    # -- streaming for export ---------------------------------------------------------------

    def test_iter_traces_streams_whole_traces_newest_first(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:12]}"
        ids = [str(storage.create(sample_trace(dev)).id) for _ in range(5)]
        storage.append_events(ids[1], [CommandEvent.new("ls", output="a\nb", exit_code=0)])
        storage.save_result(ids[2], TraceResult(validation=example_validation(True)))
        # Pages smaller than the data: every trace once, in the order `list` gives.
        streamed = list(storage.iter_traces(ExportQuery(developer_id=dev, page_size=2)))
        assert [t.id for t in streamed] == list(reversed(ids))
        assert streamed == [storage.get(t) for t in reversed(ids)]
        assert [len(t.events) for t in streamed] == [3, 3, 3, 4, 3]

    def test_iter_traces_filters_by_developer_and_since(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:12]}"
        old = storage.create(sample_trace(dev, created_at=datetime(2024, 1, 1, tzinfo=UTC)))
        new = storage.create(sample_trace(dev))
        storage.create(sample_trace())  # someone else's

        def ids(**filters: Any) -> list[str | None]:
            return [t.id for t in storage.iter_traces(ExportQuery(developer_id=dev, **filters))]

        assert ids() == [new.id, old.id]
        assert ids(since=datetime(2025, 1, 1, tzinfo=UTC)) == [new.id]
        assert ids(since=datetime(2023, 12, 31, 23, 0, tzinfo=UTC)) == [new.id, old.id]
        assert ids(since=datetime.now(UTC) + timedelta(days=1)) == []

    def test_iter_traces_filters_on_the_result(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:12]}"

        def stored(result: TraceResult | None) -> str:
            tid = str(storage.create(sample_trace(dev)).id)
            if result is not None:
                storage.save_result(tid, result)
            return tid

        def grade(grader: str, score: int) -> Grade:
            return Grade(score=score, grader=grader, summary="s", rubric_version="r1")

        # Validated; two graders disagree (its score is the lower, 2).
        a = stored(
            TraceResult(
                validation=example_validation(True),
                grades=[grade("heuristic", 4), grade("openai", 2)],
            )
        )
        # Not validated; graded twice by one grader: the latest grade (5) counts.
        b = stored(
            TraceResult(
                validation=example_validation(False),
                grades=[grade("heuristic", 1), grade("heuristic", 5)],
            )
        )
        stored(None)  # never finalized: no verdict, no score
        # Could not test, graded high: neither validated nor scored for the filters.
        c = stored(TraceResult(validation=example_validation(None), grades=[grade("heuristic", 5)]))
        # Validated, then finalized again without reaching the tests (repository gone); the
        # failed run's result JSON holds no "fix_validated":true of its own.
        d = stored(
            TraceResult(
                stages=[Stage(name="workspace", status="failed", message="clone failed")],
                history=[TraceResult(validation=example_validation(True))],
            )
        )
        # Not validated now, validated in an earlier run: the latest complete run counts.
        stored(
            TraceResult(
                validation=example_validation(False),
                history=[TraceResult(validation=example_validation(True))],
            )
        )

        def ids(**filters: Any) -> list[str | None]:
            return [t.id for t in storage.iter_traces(ExportQuery(developer_id=dev, **filters))]

        assert ids(validated_only=True) == [d, a]
        assert ids(min_score=3) == [b]
        assert ids(min_score=2) == [b, a]
        assert ids(min_score=3, grader="heuristic") == [b, a]
        assert ids(grader="openai") == [a]
        assert ids(grader="heuristic") == [c, b, a]  # a grader alone keeps untested ones
        assert ids(validated_only=True, min_score=3) == []
        assert ids(min_score=6) == []
        assert ids(grader="nobody") == []

    def test_iter_traces_agrees_with_the_default_built_on_list_and_get(
        self, storage: Storage
    ) -> None:
        dev = f"dev-{uuid.uuid4().hex[:12]}"
        for i in range(4):
            tid = str(storage.create(sample_trace(dev)).id)
            v = example_validation(i % 2 == 0)
            g = Grade(score=i + 2, grader="heuristic", summary="s", rubric_version="r1")
            storage.save_result(tid, TraceResult(validation=v, grades=[g]))
        for query in (
            ExportQuery(developer_id=dev, page_size=3),
            ExportQuery(developer_id=dev, validated_only=True, page_size=1),
            ExportQuery(developer_id=dev, min_score=4, grader="heuristic"),
        ):
            assert list(storage.iter_traces(query)) == list(Storage.iter_traces(storage, query))

    def test_count_traces_is_exact_or_unknown(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:12]}"
        for _ in range(3):
            storage.create(sample_trace(dev))
        for query in (
            ExportQuery(developer_id=dev),
            ExportQuery(developer_id=dev, since=datetime.now(UTC) + timedelta(days=1)),
            ExportQuery(developer_id=dev, validated_only=True),
        ):
            count = storage.count_traces(query)
            assert count is None or count == len(list(storage.iter_traces(query)))

    # -- what the dashboard reads: summaries, verdicts, counts ------------------------------

    def test_get_summary_is_the_trace_without_its_events(self, storage: Storage) -> None:
        stored = storage.create(sample_trace(branch="fix/zero", base_commit="a" * 40))
        tid = str(stored.id)
        storage.append_events(tid, [ReasoningEvent.new("more")])
        summary = storage.get_summary(tid)
        trace = storage.get(tid)
        assert summary.id == tid
        assert (summary.developer_id, summary.repo_url, summary.branch) == (
            trace.developer_id,
            trace.repo_url,
            "fix/zero",
        )
        assert (summary.status, summary.event_count) == ("open", 4)
        assert (summary.created_at, summary.updated_at) == (trace.created_at, trace.updated_at)
        assert summary == DefaultReads(storage).get_summary(tid)  # the default agrees
        listed = storage.list(TraceQuery(developer_id=trace.developer_id)).items
        assert listed == [summary]
        with pytest.raises(TraceNotFound):
            storage.get_summary("no-such-trace")

    def _verdict_cases(self, storage: Storage, dev: str) -> dict[str, Verdict]:
        """Traces of ``dev`` with every kind of result, and the verdict each must have."""

        def stored(result: TraceResult | None, status: TraceStatus = "open") -> str:
            tid = str(storage.create(sample_trace(dev)).id)
            if result is not None:
                storage.save_result(tid, result)
            if status != "open":
                storage.set_status(tid, status)
            return tid

        def graded(validated: bool | None, *grades: tuple[str, int]) -> TraceResult:
            return TraceResult(
                validation=None if validated is None else example_validation(validated),
                grades=[
                    Grade(score=score, grader=grader, summary="s", rubric_version="r1")
                    for grader, score in grades
                ],
            )

        done: TraceStatus = "finalized"
        return {
            stored(None): Verdict(),
            stored(None, "queued"): Verdict(),
            # Two graders disagree: the lower counts.
            stored(graded(True, ("heuristic", 4), ("openai", 2)), done): Verdict(
                validated=True, score=2
            ),
            # Graded twice by one grader: the latest counts.
            stored(graded(False, ("heuristic", 1), ("heuristic", 5)), done): Verdict(
                validated=False, score=5
            ),
            # Tests ran, nobody graded; graded without a test verdict.
            stored(graded(True), done): Verdict(validated=True),
            stored(graded(None, ("heuristic", 3)), done): Verdict(score=3),
            # A finalize that failed early: a result, but no verdict.
            stored(TraceResult(stages=[Stage(name="workspace", status="error")])): Verdict(),
            # Could not test (an import error): no verdict, its own category, still graded.
            stored(
                graded(True, ("heuristic", 4)).model_copy(
                    update={"validation": example_validation(None)}
                ),
                done,
            ): Verdict(score=4, untested=True),
            # ... also as results recorded before `could_not_test` said it: a failed tests stage.
            stored(
                TraceResult(stages=[Stage(name="tests", status="failed", message="no tests ran")]),
                done,
            ): Verdict(untested=True),
            # A later run failed before the tests (repository gone): the earlier complete run
            # in its history stays the verdict.
            stored(
                TraceResult(
                    stages=[Stage(name="workspace", status="failed", message="clone failed")],
                    history=[graded(True, ("heuristic", 3))],
                ),
                done,
            ): Verdict(validated=True, score=3),
        }

    def test_verdicts_follow_the_stored_result(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:12]}"
        expected = self._verdict_cases(storage, dev)
        ids = list(expected)
        assert storage.verdicts([*ids, "no-such-trace"]) == expected
        assert storage.verdicts(ids) == DefaultReads(storage).verdicts(ids)  # the default agrees
        assert storage.verdicts([]) == {}
        for tid in ids:
            assert expected[tid] == Verdict.of(storage.get(tid).result)
        # A new result replaces the verdict.
        storage.save_result(ids[2], TraceResult(validation=example_validation(False)))
        assert storage.verdicts([ids[2]]) == {ids[2]: Verdict(validated=False)}

    def test_stats_count_by_status_verdict_and_week(self, storage: Storage) -> None:
        dev = f"dev-{uuid.uuid4().hex[:12]}"
        expected = self._verdict_cases(storage, dev)
        # Weeks start on Monday, in UTC: Sunday 23:30 at UTC-2 is Monday 01:30 UTC.
        minus_two = timezone(timedelta(hours=-2))
        dated = [
            datetime(2024, 1, 7, 23, 30, tzinfo=minus_two),  # week of Monday 2024-01-08
            datetime(2024, 1, 14, 23, 59, 59, tzinfo=UTC),  # Sunday: the same week
            datetime(2024, 1, 7, 12, 0, tzinfo=UTC),  # Sunday: week of Monday 2024-01-01
        ]
        ids = list(expected) + [
            str(storage.create(sample_trace(dev, created_at=w)).id) for w in dated
        ]
        stats = storage.stats(dev)
        assert stats.total == len(ids)
        assert stats.by_status() == {"open": 5, "queued": 1, "finalized": 7}
        assert stats.by_score() == {None: 8, 2: 1, 3: 2, 4: 1, 5: 1}
        assert stats.by_validated() == {None: 9, True: 3, False: 1}
        assert stats.untested() == 2
        assert VerdictCount(status="open", validated=None, score=None, traces=5) in stats.verdicts
        assert (
            VerdictCount(status="finalized", validated=None, score=4, untested=True, traces=1)
            in stats.verdicts
        )
        weeks = {w.week: w.traces for w in stats.weeks}
        assert (weeks[date(2024, 1, 1)], weeks[date(2024, 1, 8)]) == (1, 2)
        assert weeks == Counter(week_of(storage.get_summary(t).created_at) for t in ids)
        assert {w.developer_id for w in stats.weeks} == {dev}
        assert stats == DefaultReads(storage).stats(dev)  # the default agrees
        assert storage.stats(f"dev-{uuid.uuid4().hex[:12]}") == TraceStats()

    def test_stats_of_everyone_include_each_developer(self, storage: Storage) -> None:
        devs = [f"dev-{uuid.uuid4().hex[:12]}" for _ in range(2)]
        when = datetime(2023, 5, 17, tzinfo=UTC)
        for dev in devs:
            self._verdict_cases(storage, dev)
            storage.create(sample_trace(dev, created_at=when))
        everyone = storage.stats()
        for dev in devs:
            own = storage.stats(dev)
            assert [w for w in everyone.weeks if w.developer_id == dev] == own.weeks
            assert WeekCount(developer_id=dev, week=date(2023, 5, 15), traces=1) in own.weeks
            for count in own.verdicts:  # others' traces of the same kind add to these
                mine = next(
                    c
                    for c in everyone.verdicts
                    if (c.status, c.validated, c.score, c.untested)
                    == (count.status, count.validated, count.score, count.untested)
                )
                assert mine.traces >= count.traces
        assert everyone.total >= 2 * 11


UNTESTED_REASON = "collection errors: ModuleNotFoundError: No module named 'dateutil'"
"""Why :func:`example_validation` ``(None)`` could not test."""


def example_validation(validated: bool | None = True) -> Validation:
    """A test verdict for :func:`sample_trace`: the fix validated (or not); None: the tests
    could not give a verdict (``could_not_test`` is :data:`UNTESTED_REASON`)."""
    if validated is None:
        return Validation(
            base_sha="0" * 40,
            fix_validated=None,
            could_not_test=UNTESTED_REASON,
            environment="python 3.12.3 (/usr/bin/python3.12); env py-1a2b3c (built)",
        )
    return Validation(
        base_sha="0" * 40,
        fail_to_pass=["tests/test_calc.py::test_divide_by_zero"] if validated else [],
        pass_to_pass=["tests/test_calc.py::test_divide"],
        fail_to_fail=[] if validated else ["tests/test_calc.py::test_divide_by_zero"],
        fix_validated=validated,
        environment="python 3.12.3 (/usr/bin/python3.12); env py-1a2b3c (reused)",
    )


class GraderContract:
    """Behaviour every :class:`~debugtrace.grading.Grader` must have. Provide a ``grader`` fixture
    in a subclass."""

    @pytest.fixture
    def grader(self) -> Grader:
        raise NotImplementedError("subclasses provide a `grader` fixture")

    def check(self, grader: Grader, grade: Grade) -> None:
        assert 1 <= grade.score <= 5
        assert grade.grader == grader.name
        assert grade.summary.strip()
        assert grade.rubric_version
        for item in grade.rubric.values():
            assert 1 <= item.score <= 5

    def test_grades_a_validated_fix(self, grader: Grader) -> None:
        self.check(grader, grader.grade(sample_trace(), example_validation(True)))

    def test_grades_a_failed_fix(self, grader: Grader) -> None:
        self.check(grader, grader.grade(sample_trace(), example_validation(False)))

    def test_grades_without_a_test_verdict(self, grader: Grader) -> None:
        self.check(grader, grader.grade(sample_trace(), None))

    def test_grades_a_fix_that_could_not_be_tested(self, grader: Grader) -> None:
        self.check(grader, grader.grade(sample_trace(), example_validation(None)))

    def test_grades_an_empty_trace(self, grader: Grader) -> None:
        self.check(grader, grader.grade(sample_trace(events=[]), None))


from debugtrace.testing.sandbox import SandboxContract  # noqa: E402 - re-exported here
