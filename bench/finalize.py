"""Finalize overhead: debugtrace's finalize (local sandbox) vs the same work by hand, same run.

The repository has ~200 pytest tests, one of which fails until the trace's edit is applied. The
baseline is the shell script a person would write: ``git clone --local``, pytest on the base,
``git apply``, pytest again. Finalize does that plus mirrors, sandboxing, JUnit parsing,
classification and storage. Reported: the first finalize of the repository (mirror cache cold) and
the next ones (warm), each as a ratio to the baseline. Target: warm <= 1.2x.

    python bench/finalize.py [--rounds 3] [--tests 200]
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
# The same pytest as the sandbox runs: no plugin autoloading from this venv.
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
work=$(mktemp -d)
git clone -q --local "$1" "$work/repo"
cd "$work/repo"
{py} -m pytest -q -p no:cacheprovider >/dev/null || true
printf '%s' "$2" | git apply -
{py} -m pytest -q -p no:cacheprovider >/dev/null
rm -rf "$work"
"""


def baseline(repo: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["bash", "-c", BASELINE.format(py=sys.executable), "bench", str(repo), FIX], check=True
    )
    return time.perf_counter() - start


def finalize(collector: Collector, repo: Path) -> float:
    doc = {
        "developer_id": "bench",
        "repo_url": str(repo),
        "bug_description": "LIMIT is off by one",
        "events": [{"type": "edit", "details": {"file": "mod.py", "diff": FIX}}],
    }
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
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = root / "repo"
        make_repo(repo, args.tests)
        settings = Settings(
            data_dir=root / "data",
            database_url=f"sqlite:///{root / 'bench.db'}",
            sandbox="local",
            allow_local_repos=True,
            load_plugins="",
        )
        with Collector(settings=settings) as c:
            base0 = baseline(repo)
            cold = finalize(c, repo)  # first trace of this repository: the mirror is cloned
            base, warm = [base0], []
            for _ in range(args.rounds):
                base.append(baseline(repo))
                warm.append(finalize(c, repo))
    b = statistics.median(base)
    w = statistics.median(warm)
    result = {
        "tests": args.tests + 1,
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
    (out / "finalize.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
