"""The calc example of ../shared/examples as a real git repository, for finalize tests."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from support import DATA

CALC = "def divide(a, b):\n    return a / b\n"
TESTS = """import pytest

from calc import divide


def test_divide():
    assert divide(6, 3) == 2


def test_divide_by_zero():
    with pytest.raises(ValueError):
        divide(1, 0)
"""
EXAMPLE = DATA / "minimal-trace.json"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def make_calc_repo(path: Path) -> str:
    """Create the repository; returns the sha of its commit."""
    (path / "tests").mkdir(parents=True)
    (path / "calc.py").write_text(CALC)
    (path / "tests" / "test_calc.py").write_text(TESTS)
    (path / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "calc")
    return git(path, "rev-parse", "HEAD")


def example_trace(repo: Path, **changes: Any) -> dict[str, Any]:
    """The shared example trace, pointing at ``repo``."""
    doc: dict[str, Any] = json.loads(EXAMPLE.read_text())
    doc["repo_url"] = str(repo)
    doc.update(changes)
    return doc
