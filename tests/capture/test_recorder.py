"""`Collector.record()`: recording a session step by step, as an agent harness would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from debugtrace import Collector, CommandEvent, EditEvent, ReasoningEvent


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "calc"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "t")
    (path / "calc.py").write_text("def divide(a, b):\n    return a / b\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "init")
    return path


def test_every_step_is_stored_as_it_happens(collector: Collector) -> None:
    with collector.record(
        developer_id="agent-1", repo_url="https://x/calc", bug_description="b"
    ) as rec:
        rec.reason("divide has no zero guard", type="hypothesis", confidence="medium")
        assert len(collector.get(rec.trace_id).events) == 1  # already durable
        ran = rec.run([sys.executable, "-c", "print('hi'); raise SystemExit(3)"])
        rec.edit("calc.py", "--- a/calc.py\n+++ b/calc.py\n")
    trace = collector.get(rec.trace_id)
    assert [type(e) for e in trace.events] == [ReasoningEvent, CommandEvent, EditEvent]
    assert ran.details.exit_code == 3
    assert ran.details.output == "hi\n"
    assert ran.details.duration_s is not None and ran.details.duration_s > 0
    assert ran.seq == 2


def test_a_string_command_runs_through_the_shell(collector: Collector, tmp_path: Path) -> None:
    with collector.record(developer_id="d", repo_url="r", bug_description="b") as rec:
        ev = rec.run("echo one; echo two >&2 | cat; exit 1", cwd=tmp_path)
    assert ev.details.exit_code == 1
    assert "one" in ev.details.output and "two" in ev.details.output
    assert ev.details.cwd == str(tmp_path.resolve())


def test_a_command_that_hangs_is_killed_with_its_children(collector: Collector) -> None:
    with collector.record(developer_id="d", repo_url="r", bug_description="b") as rec:
        ev = rec.run("sleep 30 & sleep 30; echo never", timeout=0.5)
    assert ev.details.model_extra == {"timed_out": True}
    assert ev.details.duration_s is not None and ev.details.duration_s < 10
    assert "never" not in ev.details.output


def test_huge_output_keeps_head_and_tail(collector: Collector) -> None:
    with collector.record(developer_id="d", repo_url="r", bug_description="b") as rec:
        ev = rec.run([sys.executable, "-c", "print('START'); print('x' * 3_000_000); print('END')"])
    out = ev.details.output
    assert out.startswith("START") and out.rstrip().endswith("END")
    assert "output cut" in out
    assert len(out.encode()) <= collector.settings.limits.max_output_bytes


def test_capture_diff_records_each_change_once_without_touching_the_index(
    collector: Collector, repo: Path
) -> None:
    (repo / "staged.txt").write_text("user's staged work\n")
    git(repo, "add", "staged.txt")
    index_before = (repo / ".git" / "index").read_bytes()
    with collector.record(developer_id="d", repo_url=str(repo), bug_description="b") as rec:
        (repo / "calc.py").write_text(
            "def divide(a, b):\n    if b == 0:\n        raise ValueError\n    return a / b\n"
        )
        (repo / "debug.log").write_text("ignored by .gitignore\n")
        first = rec.capture_diff(repo)
        assert rec.capture_diff(repo) == []  # nothing new since the last capture
        (repo / "new_test.py").write_text("def test_x():\n    pass\n")
        second = rec.capture_diff(repo)
    assert sorted(e.details.file for e in first) == ["calc.py", "staged.txt"]
    assert "+    if b == 0:" in next(e for e in first if e.details.file == "calc.py").details.diff
    assert [e.details.file for e in second] == ["new_test.py"]
    assert (repo / ".git" / "index").read_bytes() == index_before
    assert "A  staged.txt" in git(repo, "status", "--porcelain").splitlines()


def test_captured_diffs_apply_in_order_to_the_base(
    collector: Collector, repo: Path, tmp_path: Path
) -> None:
    base = git(repo, "rev-parse", "HEAD").strip()
    with collector.record(developer_id="d", repo_url=str(repo), bug_description="b") as rec:
        (repo / "calc.py").write_text("v2\n")
        rec.capture_diff(repo)
        (repo / "calc.py").write_text("v3\n")
        rec.capture_diff(repo)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    git(clone, "checkout", "-q", base)
    for ev in collector.get(rec.trace_id).events:
        assert isinstance(ev, EditEvent)
        subprocess.run(
            ["git", "-C", str(clone), "apply", "-"], input=ev.details.diff, text=True, check=True
        )
    assert (clone / "calc.py").read_text() == "v3\n"
