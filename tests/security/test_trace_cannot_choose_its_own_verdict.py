"""A trace's author cannot choose the command whose report decides its verdict.

Threat: ``metadata.test_command`` is the trace's; with ``{junit}`` in it the command writes the
report finalize reads, so it can name the operator's held-out tests as passing without running
them (the outside review's forged held-out verdict). It runs only where trusted (the CLI and the
pytest plugin: the user's own traces) and never when held-out tests are given.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from debugtrace import Collector, Settings
from support.calc_repo import example_trace, make_calc_repo

FORGER = (
    "{python} -c \"open('{junit}', 'w').write('<testsuites><testsuite>"
    '<testcase classname=\\"\\" name=\\"t\\" file=\\"tests/test_zero.py\\"/>'
    "</testsuite></testsuites>')\""
)
HELD_OUT = {
    "test_patch": (
        "diff --git a/tests/test_zero.py b/tests/test_zero.py\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/tests/test_zero.py\n@@ -0,0 +1,5 @@\n+import pytest\n"
        "+from calc import divide\n+def test_zero():\n+    with pytest.raises(KeyError):\n"
        "+        divide(1, 0)\n"
    ),
    "fail_to_pass": ["tests/test_zero.py::test_zero"],
}


def collector_with(settings: Settings, trust: bool) -> Collector:
    return Collector(
        settings=settings.model_copy(
            update={
                "allow_local_repos": True,
                "sandbox": "local",
                "trust_trace_test_command": trust,
            }
        )
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    make_calc_repo(tmp_path / "calc")
    return tmp_path / "calc"


@pytest.mark.parametrize("trust", [False, True])
def test_held_out_tests_always_run_the_detected_command(
    settings: Settings, repo: Path, trust: bool
) -> None:
    with collector_with(settings, trust) as c:
        doc = example_trace(repo, metadata={"test_command": FORGER}, held_out=HELD_OUT)
        done = c.finalize(str(c.submit(doc).id))
    v = done.result.validation
    assert v is not None and "pytest" in " ".join(v.test_command)
    # the held-out test expects a KeyError the fix never raises: it fails after the fix too
    assert v.missing_expected == ["tests/test_zero.py::test_zero"]
    assert v.fix_validated is False


def test_an_untrusted_traces_command_is_not_run(settings: Settings, repo: Path) -> None:
    with collector_with(settings, trust=False) as c:
        done = c.finalize(str(c.submit(example_trace(repo, metadata={"test_command": FORGER})).id))
    tests = next(s for s in done.result.stages if s.name == "tests")
    v = done.result.validation
    assert v is not None and "pytest" in " ".join(v.test_command)
    assert "metadata.test_command was not run" in tests.log
