"""Finalize on real released code, in both sandboxes: the verdict must be the hand-verified one.

Each folder under ``tests/data/cases/`` is a bug fix between two consecutive releases of a real
package (``PROVENANCE.md`` says which, where from and how it was verified by hand): the old
release's tree (``base.tar.gz``), the upstream source fix (``fix.diff``, replayed as the trace's
edits) and the new release's regression test (``test.diff``, given as the held-out test patch with
the expected fail_to_pass ids, as SWE-bench does). Finalize must build the project's own test
environment (its dependencies, its pytest plugins, the checkout shadowing an installed copy of
itself; ``node_modules`` from its lockfile) and find exactly the ``fail_to_pass`` and
``pass_to_pass`` sets in ``case.json``, in the local sandbox and in the docker sandbox.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from debugtrace import Collector, Settings
from debugtrace.environments.pydeps import read_project_meta
from debugtrace.gitdiff import split_diff
from support import DATA
from support.calc_repo import git
from support.docker_engine import IMAGE, docker_engine  # noqa: F401 - the fixture is used by name

CASES = sorted(p.parent.name for p in (DATA / "cases").glob("*/case.json"))


def case_repo(case: Path, dest: Path) -> str:
    """The old release's tree as a one-commit git repository at ``dest``; returns the commit."""
    with tarfile.open(case / "base.tar.gz") as tar:
        tar.extractall(dest.parent / "extract", filter="data")
    (top,) = (dest.parent / "extract").iterdir()
    top.rename(dest)
    # what a clone of the repository would not have: an sdist's build metadata and the version
    # module a VCS build plugin wrote (finalize must cope without them)
    for built in [*dest.glob("*.egg-info"), *dest.glob("src/*.egg-info"), dest / "PKG-INFO"]:
        shutil.rmtree(built) if built.is_dir() else built.unlink(missing_ok=True)
    meta = read_project_meta(dest)
    if meta.version_file:
        (dest / meta.version_file).unlink(missing_ok=True)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", ".")
    git(dest, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "release")
    return git(dest, "rev-parse", "HEAD")


def case_trace(case: Path, repo: Path, base: str) -> dict[str, Any]:
    """The fix as a trace: one edit per file of ``fix.diff``, ``test.diff`` held out."""
    expected = json.loads((case / "case.json").read_text())
    edits = [
        {"type": "edit", "details": {"file": part.file, "diff": part.diff}}
        for part in split_diff((case / "fix.diff").read_text())
    ]
    return {
        "developer_id": f"case-{case.name}",
        "repo_url": str(repo),
        "base_commit": base,
        "bug_description": f"the fix of {case.name} (see PROVENANCE.md)",
        "events": [
            {
                "type": "reasoning",
                "details": {"text": "replaying the upstream fix", "type": "hypothesis"},
            },
            *edits,
        ],
        "held_out": {
            "test_patch": (case / "test.diff").read_text(),
            "fail_to_pass": expected["fail_to_pass"],
        },
    }


@pytest.fixture(scope="session")
def shared_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data directory for every case and worker: environments are built once, under locks."""
    path = tmp_path_factory.getbasetemp().parent / "real-cases-data"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(params=["local", "docker"])
def sandbox_name(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("docker_engine")
    return str(request.param)


@pytest.mark.parametrize("name", CASES)
def test_the_released_fix_gives_the_hand_verified_sets(
    name: str, sandbox_name: str, shared_data: Path, tmp_path: Path
) -> None:
    case = DATA / "cases" / name
    expected = json.loads((case / "case.json").read_text())
    repo = tmp_path / "repo"
    base = case_repo(case, repo)
    settings = Settings(
        data_dir=shared_data,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        load_plugins="",
        allow_local_repos=True,
        sandbox=sandbox_name,
        docker_image=IMAGE,
        grader="heuristic",
    )
    with Collector(settings=settings) as collector:
        trace = collector.submit(case_trace(case, repo, base))
        done = collector.finalize(str(trace.id))
        redactor = collector.redactor
    # where the sandbox's own interpreter makes some tests fail on both sides (case.json says
    # which and why, verified by hand), they are fail_to_fail there instead of pass_to_pass
    differs = expected.get("sandbox_differences", {}).get(sandbox_name, {})
    expected["fail_to_fail"] = differs.get("fail_to_fail", [])
    expected["pass_to_pass"] = [
        t for t in expected["pass_to_pass"] if t not in expected["fail_to_fail"]
    ]
    # stored test ids are redacted like any test output (packaging's have a URL password)
    for key in ("fail_to_pass", "pass_to_pass", "fail_to_fail"):
        if redactor is not None:
            expected[key] = [redactor.redact(t)[0] for t in expected[key]]
    stages = {s.name: (s.status, s.message) for s in done.result.stages}
    v = done.result.validation
    assert v is not None, stages
    assert v.could_not_test is None, (v.could_not_test, stages["tests"])
    assert v.fail_to_pass == expected["fail_to_pass"], stages["tests"]
    assert v.pass_to_pass == expected["pass_to_pass"]
    assert v.fail_to_fail == expected["fail_to_fail"]
    assert (v.pass_to_fail, v.missing_expected) == ([], [])
    assert v.fix_validated is True
    assert v.test_patch and v.environment
