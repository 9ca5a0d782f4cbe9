"""``debugtrace demo``: a newcomer's first run, end to end on the embedded defaults.

Creates a small git repository with a real bug and a failing test, records a trace of fixing it
through the public :meth:`Collector.record` API, stores it (and finalizes it when the pipeline is
available), and returns the stored trace.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from debugtrace.collector import Collector
from debugtrace.model import Trace
from debugtrace.results import Stage

__all__ = ["make_demo_repo", "run_demo"]

CALC = """def add(a, b):
    return a + b


def divide(a, b):
    return a / b
"""

CALC_FIXED = """def add(a, b):
    return a + b


def divide(a, b):
    if b == 0:
        raise ValueError("division by zero")
    return a / b
"""

TESTS = """import unittest

from calc import add, divide


class CalcTest(unittest.TestCase):
    def test_add(self):
        self.assertEqual(add(2, 3), 5)

    def test_divide(self):
        self.assertEqual(divide(6, 3), 2)

    def test_divide_by_zero(self):
        with self.assertRaises(ValueError):
            divide(1, 0)


if __name__ == "__main__":
    unittest.main()
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_demo_repo(path: Path) -> str:
    """Create the demo repository (calc.py with a bug, its tests) at ``path``.

    Returns the sha of its only commit.
    """
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q", "-b", "main")
    _git(path, "config", "user.email", "demo@debugtrace.invalid")
    _git(path, "config", "user.name", "debugtrace demo")
    (path / "calc.py").write_text(CALC)
    (path / "test_calc.py").write_text(TESTS)
    (path / ".gitignore").write_text("__pycache__/\n.pytest_cache/\n")
    _git(path, "add", ".")
    _git(path, "commit", "-qm", "calc: add and divide")
    return _git(path, "rev-parse", "HEAD")


def run_demo(
    collector: Collector,
    workdir: Path,
    *,
    finalize: bool = True,
    progress: Callable[[Stage], None] | None = None,
) -> Trace:
    """Record fixing the demo bug in a repository under ``workdir``, then finalize it; returns the
    stored trace. The collector must allow local repositories (``allow_local_repos``) for the
    finalize to clone it."""
    repo = workdir / "calc"
    base = make_demo_repo(repo)
    test_cmd = [sys.executable, "-m", "unittest", "-v", "test_calc"]
    with collector.record(
        developer_id="demo",
        repo_url=str(repo),
        bug_description="divide() crashes with ZeroDivisionError instead of raising ValueError",
        base_commit=base,
        metadata={"source": "debugtrace demo"},
    ) as rec:
        rec.reason(
            "The traceback ends in divide(), so it has no guard for b == 0",
            type="hypothesis",
            confidence="medium",
        )
        rec.run(test_cmd, cwd=repo)
        rec.reason("test_divide_by_zero fails; add the guard and nothing else", type="plan")
        (repo / "calc.py").write_text(CALC_FIXED)
        rec.capture_diff(repo)
        rec.run(test_cmd, cwd=repo)
        rec.reason(
            "All three tests pass; the guard fixed the crash without touching add()",
            type="conclusion",
            confidence="high",
        )
    if not finalize:
        return collector.get(rec.trace_id)
    return collector.finalize(rec.trace_id, progress=progress)
