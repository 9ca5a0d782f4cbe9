"""Finalize on real code: a bug fix between two released sdists of a PyPI package.

tests/data/realworld/semver/ holds the semver 3.0.1 sources and test suite, and ``fix.diff``: what
3.0.2 changed in ``src/semver/version.py`` and ``tests/test_subclass.py``, the release whose
changelog says "Fix Version.replace method to use the derived class of an instance" and which
adds the regression test ``test_replace_from_subclass`` (SOURCE.md says how they were made).
The trace replays that fix; finalize must find the regression test going from fail to pass and
every one of the package's existing tests still passing.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from support import DATA
from support.calc_repo import git

CASE = DATA / "realworld" / "semver"
REGRESSION_TEST = "tests/test_subclass.py::test_replace_from_subclass"
CHANGELOG = (
    "semver 3.0.2, Bug Fixes, PR 426: Fix Version.replace method to use the derived class of an "
    "instance instead of Version class."
)
# What pytest printed for the regression test on 3.0.1 (the tail of the real run).
FAILING_OUTPUT = """\
        version = SemVerWithVPrefix.parse("v1.1.0")
        dev_version = version.replace(prerelease="dev.0")

>       assert str(dev_version) == "v1.1.0-dev.0"
E       AssertionError: assert '1.1.0-dev.0' == 'v1.1.0-dev.0'
E
E         - v1.1.0-dev.0
E         ? -
E         + 1.1.0-dev.0

tests/test_subclass.py:53: AssertionError
=========================== short test summary info ============================
FAILED tests/test_subclass.py::test_replace_from_subclass - AssertionError: a...
1 failed, 1 passed in 1.71s
"""


def file_diffs(diff: str) -> list[tuple[str, str]]:
    """``fix.diff`` split into (path, that file's diff), in order."""
    parts = re.split(r"^(?=diff --git )", diff, flags=re.M)
    out = []
    for part in filter(None, parts):
        path = re.search(r"^\+\+\+ b/(\S+)$", part, re.M)
        assert path, part[:200]
        out.append((path.group(1), part))
    return out


def semver_repo(path: Path) -> str:
    """The 3.0.1 tree as a one-commit git repository; returns the commit."""
    shutil.copytree(CASE / "tree", path)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", ".")
    git(path, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "3.0.1")
    return git(path, "rev-parse", "HEAD")


def semver_trace(repo: Path, base: str) -> dict[str, object]:
    edits = file_diffs((CASE / "fix.diff").read_text())
    assert [f for f, _ in edits] == ["src/semver/version.py", "tests/test_subclass.py"]
    return {
        "developer_id": "dev_semver",
        "repo_url": str(repo),
        "base_commit": base,
        "bug_description": CHANGELOG,
        "events": [
            {
                "type": "reasoning",
                "details": {
                    "text": "replace() on a subclass instance loses the subclass: it probably "
                    "builds the result with Version(...) instead of type(self)(...)",
                    "reasoning_type": "hypothesis",
                    "confidence": "high",
                },
            },
            {
                "type": "command",
                "details": {
                    "command": "python -m pytest -q tests/test_subclass.py",
                    "output": FAILING_OUTPUT,
                    "exit_code": 1,
                },
            },
            *({"type": "edit", "details": {"file": f, "diff": d}} for f, d in edits),
        ],
    }


@pytest.mark.slow
def test_finalize_validates_a_released_fix_of_semver(settings: Settings, tmp_path: Path) -> None:
    local = Collector(
        settings=settings.model_copy(update={"allow_local_repos": True, "sandbox": "local"})
    )
    repo = tmp_path / "semver"
    base = semver_repo(repo)
    trace = local.submit(semver_trace(repo, base))
    done = local.finalize(str(trace.id))

    stages = {s.name: s.status for s in done.result.stages}
    assert {k: stages[k] for k in ("workspace", "apply", "tests")} == {
        "workspace": "ok",
        "apply": "ok",
        "tests": "ok",
    }, [(s.name, s.message, s.log[-2000:]) for s in done.result.stages]
    assert [e.status for e in done.result.edits] == ["applied", "applied"]
    v = done.result.validation
    assert v is not None
    assert v.base_sha == base
    assert v.fail_to_pass == [REGRESSION_TEST]
    assert v.pass_to_fail == [] and v.fail_to_fail == []
    assert v.fix_validated
    assert v.added == [] and v.removed == []  # the regression test ran on both sides
    # The package's own suite (327 tests and doctests in 3.0.1) still passes, and the tests of
    # replace() the fix touched are among them.
    assert len(v.pass_to_pass) >= 300
    assert {
        "tests/test_replace.py::test_replace_raises_TypeError_for_invalid_keyword_arg",
        "tests/test_docstrings.py::test_fordocstrings[replace]",
        "tests/test_subclass.py::test_subclass_from_versioninfo",
    } <= set(v.pass_to_pass)
