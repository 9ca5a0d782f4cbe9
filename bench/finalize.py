"""Finalize overhead: debugtrace's finalize (local sandbox) vs the same work by hand, same run.

Two repositories:

- synthetic (default): ~200 pytest tests, one of which fails until the trace's edit is applied;
- ``--case NAME``: a real released project from tests/data/cases/ (its old release, the upstream
  fix as the trace's edits, the regression test as the held-out test patch).

The baseline is the shell script a person would write, in a virtual environment made beforehand
with the same packages (not timed, as finalize's environment is reused when warm): ``git clone
--local``, the test patch applied, pytest on the base, ``git apply`` of the fix, pytest again.
Finalize does that plus mirrors, the environment lookup, sandboxing, JUnit parsing,
classification and storage. Reported: the first finalize of the repository (mirror and
environment cold) and the next ones (warm), each as a ratio to the baseline. Target: warm <= 1.2x.

    python bench/finalize.py [--rounds 3] [--tests 200] [--case py-srclayout-croniter]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from debugtrace import Collector, Settings

TARGET = 1.2
CASES = Path(__file__).resolve().parent.parent / "tests" / "data" / "cases"
FIX = "--- a/mod.py\n+++ b/mod.py\n@@ -1 +1 @@\n-LIMIT = 1\n+LIMIT = 2\n"


def make_repo(path: Path, n_tests: int) -> None:
    path.mkdir()
    (path / "mod.py").write_text("LIMIT = 1\n")
    (path / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    tests = path / "tests"
    tests.mkdir()
    per_file = 20
    for f in range(max(n_tests // per_file, 1)):
        body = ["from mod import LIMIT\n"]
        for t in range(per_file):
            body.append(f"\ndef test_{f}_{t}():\n    assert {t} * 2 == {t} + {t}\n")
        if f == 0:
            body.append("\ndef test_limit():\n    assert LIMIT == 2\n")
        (tests / f"test_{f}.py").write_text("".join(body))
    run = ["git", "-C", str(path)]
    subprocess.run([*run, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*run, "add", "."], check=True)
    subprocess.run(
        [*run, "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-qm", "init"],
        check=True,
    )


BASELINE = """set -e
work=$(mktemp -d)
git clone -q --local "$1" "$work/repo"
cd "$work/repo"
if [ -n "$3" ]; then printf '%s' "$3" | git apply -; fi
export PYTHONPATH="$work/repo/$4"
{py} -m pytest -q -p no:cacheprovider >/dev/null || true
printf '%s' "$2" | git apply -
{py} -m pytest -q -p no:cacheprovider >/dev/null || true
rm -rf "$work"
"""


def baseline(repo: Path, python: str, fix: str, test_patch: str = "", root: str = ".") -> float:
    start = time.perf_counter()
    subprocess.run(
        ["bash", "-c", BASELINE.format(py=python), "bench", str(repo), fix, test_patch, root],
        check=True,
    )
    return time.perf_counter() - start


def hand_venv(pins: list[str], path: Path) -> str:
    """The baseline's environment: the same packages, made with uv (not timed)."""
    from debugtrace.environments.python import find_uv

    uv = find_uv()
    assert uv, "uv is needed: pip install uv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(path)], check=True)
    python = str(path / "bin" / "python")
    subprocess.run(
        [uv, "pip", "install", "-q", "--compile-bytecode", "--python", python, *pins], check=True
    )
    return python


def case_repo(name: str, root: Path) -> tuple[Path, str, str, str]:
    """The case's old release as a git repository; (repo, fix, test patch, import root)."""
    import tarfile

    from debugtrace.environments.pydeps import read_project_meta

    case = CASES / name
    with tarfile.open(case / "base.tar.gz") as tar:
        tar.extractall(root / "extract", filter="data")
    (top,) = (root / "extract").iterdir()
    repo = top.rename(root / "repo")
    run = ["git", "-C", str(repo)]
    subprocess.run([*run, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*run, "add", "."], check=True)
    subprocess.run(
        [*run, "-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-qm", "init"],
        check=True,
    )
    fix = (case / "fix.diff").read_text()
    return repo, fix, (case / "test.diff").read_text(), read_project_meta(repo).import_root


def finalize(collector: Collector, repo: Path, fix: str, test_patch: str = "") -> float:
    from debugtrace.gitdiff import split_diff

    doc: dict[str, object] = {
        "developer_id": "bench",
        "repo_url": str(repo),
        "bug_description": "the bug the fix fixes",
        "events": [
            {"type": "edit", "details": {"file": part.file, "diff": part.diff}}
            for part in split_diff(fix)
        ],
    }
    if test_patch:
        doc["held_out"] = {"test_patch": test_patch}
    tid = str(collector.submit(doc).id)
    start = time.perf_counter()
    done = collector.finalize(tid)
    elapsed = time.perf_counter() - start
    v = done.result.validation
    assert v is not None and v.fix_validated, [s.message for s in done.result.stages]
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tests", type=int, default=200)
    p.add_argument("--case", help="a real project from tests/data/cases (default: synthetic)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.case:
            repo, fix, test_patch, import_root = case_repo(args.case, root)
        else:
            repo, fix, test_patch, import_root = root / "repo", FIX, "", "."
            make_repo(repo, args.tests)
        settings = Settings(
            data_dir=root / "data",
            database_url=f"sqlite:///{root / 'bench.db'}",
            sandbox="local",
            allow_local_repos=True,
            load_plugins="",
            grader="heuristic",
        )
        with Collector(settings=settings) as c:
            cold = finalize(c, repo, fix, test_patch)  # mirror cloned, environment built
            env = next(iter((root / "data" / "envs" / "python").glob("*/.debugtrace-complete")))
            pins = json.loads(env.read_text())["pins"]
            python = hand_venv(pins, root / "venv")
            base, warm = [], []
            for _ in range(args.rounds):
                base.append(baseline(repo, python, fix, test_patch, import_root))
                warm.append(finalize(c, repo, fix, test_patch))
    b = statistics.median(base)
    w = statistics.median(warm)
    result = {
        "repository": args.case or f"synthetic, {args.tests + 1} tests",
        "rounds": args.rounds,
        "baseline_s": round(b, 3),
        "finalize_cold_s": round(cold, 3),
        "finalize_warm_s": round(w, 3),
        "ratio_cold": round(cold / b, 3),
        "ratio_warm": round(w / b, 3),
        "target": TARGET,
        "meets_target": w / b <= TARGET,
    }
    print(f"baseline (clone, pytest, apply, pytest)  {b:.3f}s")
    print(f"finalize, first of this repo (cold)      {cold:.3f}s  {cold / b:.2f}x")
    print(f"finalize, next ones (warm)               {w:.3f}s  {w / b:.2f}x (target <= {TARGET}x)")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = f"finalize-{args.case}.json" if args.case else "finalize.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
