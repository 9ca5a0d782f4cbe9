"""Issue 14, item 6: the apply stage's host CPU is linear in the diff plus the files, and bounded.

3000 hunks carrying ``[REDACTED:...]`` against a 20k-line file cost minutes: every hunk re-read the
file and scanned it line by line for a place its redacted lines fit. Per the project's rule these
tests count work (file reads, line comparisons), never time; ``bench/apply_redacted.py`` times it.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from debugtrace.finalize import patching
from debugtrace.finalize.patching import apply_diff
from debugtrace.ingest import context
from debugtrace.ingest.redact import restore_context

HUNKS = 3000
LINES = 20_000
SOURCE = [f"line {i} = {i * 7}" for i in range(LINES)]


def hostile_diff(shape: str) -> str:
    out = ["--- a/big.py\n+++ b/big.py\n"]
    for h in range(HUNKS):
        at = 1 + (h * 5) % (LINES - 10)
        if shape == "anchored":  # an exact context line, and a redacted line that fits nowhere
            out.append(
                f"@@ -{at},2 +{at},2 @@\n line {at - 1} = {(at - 1) * 7}\n"
                f"-nope {h} = [REDACTED:generic-secret]\n+x\n"
            )
        elif shape == "prefix":  # a redacted line whose literal prefix matches no line
            out.append(f"@@ -{at},1 +{at},1 @@\n-nope {h} = [REDACTED:generic-secret]\n+x\n")
        else:  # bare placeholders: no index narrows them down, the work budget must
            out.append(f"@@ -{at},3 +{at},1 @@\n-[REDACTED:a]\n-[REDACTED:b]\n-\n+x\n")
    return "".join(out)


class Counter:
    def __init__(self, limit: int) -> None:
        self.calls = 0
        self.limit = limit

    def tick(self) -> None:
        self.calls += 1
        # Fail at once instead of burning minutes on quadratic code.
        assert self.calls <= self.limit, f"more than {self.limit} calls"


@pytest.mark.parametrize("shape", ["anchored", "prefix", "bare"])
def test_restoring_3000_redacted_hunks_reads_the_file_once_and_does_linear_work(
    monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    diff = hostile_diff(shape)
    source = SOURCE if shape != "bare" else [x for i in range(LINES // 2) for x in (f"l{i}", "")]
    reads = Counter(limit=1)
    # Linear: a few comparisons per line of the diff and of the file, whatever the hunks say.
    compares = Counter(limit=20 * (diff.count("\n") + LINES) + 10_000)
    real_fits = context._fits

    def counted_fits(parts: list[str], line: str) -> bool:
        compares.tick()
        return real_fits(parts, line)

    monkeypatch.setattr(context, "_fits", counted_fits)

    def read(path: str) -> list[str]:
        reads.tick()
        assert path == "big.py"
        return source

    out = restore_context(diff, read)
    assert reads.calls == 1
    assert out.count("\n") == diff.count("\n")  # nothing fits: the hunks are left as they are


def test_a_redacted_line_is_still_found_when_the_hunk_moved() -> None:
    """The index finds the same place the line-by-line scan found: the first that fits."""
    source = ["a", 'KEY = "s3cr3t-value-1"', "b", "c", 'KEY = "s3cr3t-value-2"', "b", "d"]
    diff = '--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n KEY = "[REDACTED:secret-assignment]"\n-b\n+B\n'
    out = restore_context(diff, lambda _: source)
    assert ' KEY = "s3cr3t-value-1"\n-b\n' in out


def make_big_repo(path: Path) -> Path:
    path.mkdir()
    (path / "big.py").write_text("".join(line + "\n" for line in SOURCE))
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "i"],
    ):
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)
    return path


def test_apply_diff_reads_each_file_once_per_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = make_big_repo(tmp_path / "r")
    reads = Counter(limit=1)
    real = patching._source_lines

    def counted(worktree: Path, path: str) -> list[str] | None:
        reads.tick()
        return real(worktree, path)

    monkeypatch.setattr(patching, "_source_lines", counted)
    outcome = apply_diff(tree, "big.py", hostile_diff("prefix"))
    assert outcome.status == "failed"
    assert reads.calls == 1


def test_apply_diff_past_its_deadline_fails_saying_so(tmp_path: Path) -> None:
    tree = make_big_repo(tmp_path / "r")
    diff = "--- a/big.py\n+++ b/big.py\n@@ -1 +1 @@\n-line 0 = 0\n+line 0 = 1\n"
    outcome = apply_diff(tree, "big.py", diff, deadline=time.monotonic() - 1)
    assert outcome.status == "failed"
    assert "time budget ran out" in outcome.message
    assert (tree / "big.py").read_text().startswith("line 0 = 0\n")


def test_the_apply_stage_stops_at_its_time_budget(settings: Settings, tmp_path: Path) -> None:
    repo = make_big_repo(tmp_path / "r")
    tight = settings.model_copy(
        update={
            "allow_local_repos": True,
            "sandbox": "local",
            "grader": "heuristic",
            "apply_timeout_s": 1e-9,
        }
    )
    c = Collector(settings=tight)
    diff = "--- a/big.py\n+++ b/big.py\n@@ -1 +1 @@\n-line 0 = 0\n+line 0 = 1\n"
    edit = {"type": "edit", "details": {"file": "big.py", "diff": diff}}
    trace = c.submit(
        {"developer_id": "d", "repo_url": str(repo), "bug_description": "b", "events": [edit] * 3}
    )
    done = c.finalize(str(trace.id))
    assert [e.status for e in done.result.edits] == ["failed"] * 3
    assert all("time budget" in e.message for e in done.result.edits)
    assert "DEBUGTRACE_APPLY_TIMEOUT_S" in done.result.edits[0].message
    stages = {s.name: s.status for s in done.result.stages}
    assert stages["apply"] == "failed" and stages["tests"] == "skipped"
