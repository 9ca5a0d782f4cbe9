"""``--format dpo``: preference pairs in TRL's conversational format, with provenance.

Read top to bottom: two agents on one bug, one fix validated and one not, make a pair; what makes
two traces the same bug; which traces never take a side; how many pairs a bug gives; the row as
TRL and OpenAI read it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from debugtrace.export import ExportOptions, export
from debugtrace.export.chat import SYSTEM_PROMPT
from debugtrace.export.preference import MAX_PER_SIDE, bug_key
from debugtrace.model import Trace
from debugtrace.results import Grade, TraceResult, Validation

BASE = "3f9e2c1d5b7a4e6f8091a2b3c4d5e6f708192a3b"
TEST = "tests/test_stats.py::test_moving_average_keeps_the_last_window"

FIX = '''\
--- a/stats.py
+++ b/stats.py
@@ -2,4 +2,4 @@ def moving_average(xs, n):
     """The mean of each window of n consecutive values."""
     if n <= 0:
         raise ValueError("n must be positive")
-    return [sum(xs[i:i + n]) / n for i in range(len(xs) - n)]
+    return [sum(xs[i:i + n]) / n for i in range(len(xs) - n + 1)]
'''

WRONG = FIX.replace("range(len(xs) - n + 1)", "range(len(xs) - n)").replace(
    "+    return [sum(xs[i:i + n])", "+    return [sum(xs[i:i + n + 1])"
)


def verdict(validated: bool | None, score: int = 3) -> TraceResult:
    """A finalize run: validated, tested and not validated, or could not test (None)."""
    if validated is None:
        v = Validation(base_sha=BASE, could_not_test="no test ran (collection errors)")
    else:
        v = Validation(
            base_sha=BASE,
            fix_validated=validated,
            fail_to_pass=[TEST] if validated else [],
            fail_to_fail=[] if validated else [TEST],
        )
    grade = Grade(score=score, grader="heuristic", rubric_version="heuristic-1")
    return TraceResult(validation=v, grades=[grade])


def attempt(
    tid: str,
    diff: str,
    result: TraceResult | None,
    *,
    minutes: int = 0,
    repo: str = "https://github.com/example/stats",
    bug: str = "moving_average drops the last window",
    base_commit: str | None = None,
) -> Trace:
    """One agent's session on the bug: reproduce, edit, run the tests, conclude."""
    t = Trace.model_validate(
        {
            "id": tid,
            "developer_id": f"agent-{tid}",
            "repo_url": repo,
            "bug_description": bug,
            "base_commit": base_commit,
            "created_at": datetime(2026, 12, 1, 9, tzinfo=UTC) + timedelta(minutes=minutes),
            "events": [
                {
                    "type": "reasoning",
                    "seq": 1,
                    "details": {
                        "text": "the last window is missing",
                        "reasoning_type": "hypothesis",
                    },
                },
                {
                    "type": "command",
                    "seq": 2,
                    "details": {"command": "pytest -q", "exit_code": 1, "output": "1 failed"},
                },
                {"type": "edit", "seq": 3, "details": {"file": "stats.py", "diff": diff}},
                {
                    "type": "command",
                    "seq": 4,
                    "details": {"command": "pytest -q", "exit_code": 0, "output": "3 passed"},
                },
                {
                    "type": "reasoning",
                    "seq": 5,
                    "details": {"text": "fixed", "reasoning_type": "conclusion"},
                },
            ],
        }
    )
    if result is not None:
        t.result = result
        t.status = "finalized"
    return t


def dpo(traces: Iterable[Trace], **options: Any) -> list[dict[str, Any]]:
    out = io.BytesIO()
    export(traces, "dpo", out, options=ExportOptions(**options))
    return [json.loads(line) for line in out.getvalue().splitlines()]


# -- two agents, one bug --------------------------------------------------------------------------


def test_a_validated_and_a_failed_attempt_at_one_bug_make_a_pair() -> None:
    good = attempt("good", FIX, verdict(True, score=4), minutes=5)
    bad = attempt("bad", WRONG, verdict(False, score=2))
    [row] = dpo([good, bad])  # newest first, as storage streams them
    assert set(row) == {"prompt", "chosen", "rejected", "tools", "metadata"}

    # The prompt is the task: the system message and the user's, as in the jsonl rows.
    assert [m["role"] for m in row["prompt"]] == ["system", "user"]
    assert row["prompt"][0]["content"] == SYSTEM_PROMPT
    assert "moving_average drops the last window" in row["prompt"][1]["content"]

    # Each side is the rest of its session, as recorded: the chosen edit is the validated fix.
    def edit_diff(turns: list[dict[str, Any]]) -> str:
        calls = [c for m in turns for c in m.get("tool_calls", [])]
        [edit] = [c for c in calls if c["function"]["name"] == "edit_file"]
        return str(json.loads(edit["function"]["arguments"])["diff"])

    assert "range(len(xs) - n + 1)" in edit_diff(row["chosen"])
    assert "xs[i:i + n + 1]" in edit_diff(row["rejected"])
    for side in (row["chosen"], row["rejected"]):
        assert side[0]["role"] == "assistant" and side[-1]["role"] == "assistant"
    assert [t["function"]["name"] for t in row["tools"]] == ["run_command", "edit_file"]

    # Provenance: which traces, which events, what the tests and the graders said.
    meta = row["metadata"]
    assert meta["source"] == "same_bug"
    assert meta["repo_url"] == "https://github.com/example/stats"
    assert meta["base_commit"] == BASE  # the commit the tests ran on
    assert meta["user_messages_differ"] is False
    assert meta["chosen"]["trace_id"] == "good" and meta["rejected"]["trace_id"] == "bad"
    assert meta["chosen"]["fix_validated"] is True and meta["rejected"]["fix_validated"] is False
    assert (meta["chosen"]["score"], meta["rejected"]["score"]) == (4, 2)
    assert meta["chosen"]["fail_to_pass"] == [TEST]
    assert meta["chosen"]["seqs"] == [1, 5] and meta["chosen"]["edit_seqs"] == [3]


def test_the_same_repository_and_bug_however_spelled() -> None:
    good = attempt("good", FIX, verdict(True), repo="https://github.com/example/stats.git/")
    bad = attempt("bad", WRONG, verdict(False), bug="moving_average  drops the\nlast window ")
    assert bug_key(good) == bug_key(bad)
    [row] = dpo([good, bad])
    # The user messages differ in the spelling: the chosen trace's is the prompt, and the
    # metadata says the rejected one read differently.
    assert "stats.git/" in row["prompt"][1]["content"]
    assert row["metadata"]["user_messages_differ"] is True


def test_attempts_on_different_commits_or_bugs_do_not_pair() -> None:
    on_other_commit = verdict(False)
    assert on_other_commit.validation is not None
    on_other_commit.validation.base_sha = "0" * 40
    assert dpo([attempt("good", FIX, verdict(True)), attempt("bad", WRONG, on_other_commit)]) == []
    other_bug = attempt("bad", WRONG, verdict(False), bug="moving_average is slow")
    assert dpo([attempt("good", FIX, verdict(True)), other_bug]) == []
    other_repo = attempt("bad", WRONG, verdict(False), repo="https://github.com/fork/stats")
    assert dpo([attempt("good", FIX, verdict(True)), other_repo]) == []


def test_only_a_tested_verdict_takes_a_side() -> None:
    good = attempt("good", FIX, verdict(True))
    # A fix the tests could not judge, and one never finalized, are not failures.
    untested = attempt("untested", WRONG, verdict(None))
    unfinalized = attempt("open", WRONG, None)
    assert dpo([good, untested, unfinalized]) == []
    # Two validated attempts are no preference either.
    assert dpo([good, attempt("also-good", FIX.replace("n + 1", "1 + n"), verdict(True))]) == []


def test_the_same_turns_validated_once_and_failed_once_are_no_lesson() -> None:
    # Flaky tests: identical sessions, opposite verdicts.
    assert dpo([attempt("a", FIX, verdict(True)), attempt("b", FIX, verdict(False))]) == []
    # ... and the same change with turns that differ only in what a command printed
    noisy = attempt("c", FIX, verdict(False))
    noisy.events[1].details.output = "1 failed in 0.31s"
    assert dpo([attempt("a", FIX, verdict(True)), noisy]) == []


def test_a_bug_gives_at_most_max_per_side_squared_pairs_from_its_newest_attempts() -> None:
    n = MAX_PER_SIDE + 2
    goods = [attempt(f"good{i}", FIX, verdict(True), minutes=100 - i) for i in range(n)]
    bads = [attempt(f"bad{i}", WRONG, verdict(False), minutes=50 - i) for i in range(n)]
    rows = dpo([*goods, *bads])  # newest first
    assert len(rows) == MAX_PER_SIDE**2
    kept = {
        (r["metadata"]["chosen"]["trace_id"], r["metadata"]["rejected"]["trace_id"]) for r in rows
    }
    assert kept == {
        (f"good{i}", f"bad{j}") for i in range(MAX_PER_SIDE) for j in range(MAX_PER_SIDE)
    }


def test_pairs_of_many_bugs_are_written_when_the_export_ends() -> None:
    traces = []
    for b in range(50):
        bug = f"bug {b}: moving_average drops the last window"
        traces += [attempt(f"g{b}", FIX, verdict(True), bug=bug)]
        traces += [attempt(f"r{b}", WRONG, verdict(False), bug=bug)]
        traces += [attempt(f"u{b}", WRONG, verdict(None), bug=bug)]
    rows = dpo(traces)
    assert [r["metadata"]["chosen"]["trace_id"] for r in rows] == [f"g{b}" for b in range(50)]


# -- the row as trainers read it ------------------------------------------------------------------


def test_without_metadata_the_row_is_trls_columns_only() -> None:
    [row] = dpo(
        [attempt("good", FIX, verdict(True)), attempt("bad", WRONG, verdict(False))], metadata=False
    )
    assert set(row) == {"prompt", "chosen", "rejected", "tools"}


def test_tools_cover_the_calls_of_both_sides() -> None:
    # Each attempt's schema of an agent tool lists the argument names it used: the pair's has
    # those of both.
    def with_tool(t: Trace, args: dict[str, Any]) -> Trace:
        t.events[1].details = t.events[1].details.model_validate(
            {"command": "Read", "output": "...", "tool": "Read", "arguments": args}
        )
        return t

    good = with_tool(attempt("good", FIX, verdict(True)), {"file_path": "stats.py"})
    bad = with_tool(attempt("bad", WRONG, verdict(False)), {"file_path": "stats.py", "limit": 20})
    [row] = dpo([good, bad])
    [read] = [t for t in row["tools"] if t["function"]["name"] == "Read"]
    assert set(read["function"]["parameters"]["properties"]) == {"file_path", "limit"}


def test_a_pair_cut_down_to_openais_single_message_shape() -> None:
    # OpenAI's preference fine-tuning takes one assistant message per side: the first turn of
    # each attempt. (Here both first turns run the same command: such a pair teaches nothing,
    # which is why the rows keep whole attempts.)
    [row] = dpo([attempt("good", FIX, verdict(True)), attempt("bad", WRONG, verdict(False))])
    openai = {
        "input": {"messages": row["prompt"], "tools": row["tools"]},
        "preferred_output": row["chosen"][:1],
        "non_preferred_output": row["rejected"][:1],
    }
    assert openai["preferred_output"] == openai["non_preferred_output"]


class _Discard(io.BytesIO):
    """A binary stream that keeps nothing."""

    def write(self, data: Any, /) -> int:
        return len(data)


def test_memory_holds_no_attempt_and_no_bug_description() -> None:
    # 2,000 bugs with a 20 kB description each, one tested attempt each: none pairs, so all
    # stay candidates to the end. Their conversations wait on disk and each bug costs a digest
    # and two offsets: the writer's memory stays far below the 40 MB of descriptions.
    import tracemalloc

    def stream() -> Iterable[Trace]:
        for b in range(2000):
            yield attempt(f"t{b}", FIX, verdict(b % 2 == 0), bug=f"bug {b} " + "x" * 20_000)

    tracemalloc.start()
    try:
        export(stream(), "dpo", _Discard())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000, peak
