"""Wall time the pytest plugin adds to a 500-test suite (target: < 5% and < 150 ms fixed).

A throwaway git repository holds 500 small tests (10 files of 50), the adversarial case: the
tests take a fraction of a second, so little of the recorder's start-up hides behind them. Each
scenario runs `python -m pytest -q` in a subprocess; the scenarios run in this order round after
round (the order is the debugging session's, so each finds the state it needs), and each median
is compared with the baseline run that does not load the plugin at all:

- ``off``: the plugin is loaded (as when debugtrace is installed) but not enabled;
- ``green``: ``--debugtrace``, a passing run, no open trace: nothing to record;
- ``red-open``: a run with one failing test opens a trace;
- ``red``: the next failing run is recorded into it;
- ``red+edit``: the same after a one-line change to a source file (an edit event too);
- ``green-close``: a passing run records itself and closes the trace.

By default only the plugin under test is loaded (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1);
``--autoload`` loads every installed pytest plugin, as a developer's environment does.

    python bench/pytest_overhead.py [--runs 9] [--tests 500] [--autoload]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEST = """
from lib import value


def test_{i}():
    assert value({i}) == {i} + 1
"""


def make_repo(root: Path, tests: int) -> None:
    (root / "tests").mkdir(parents=True)
    (root / "lib.py").write_text("def value(x):\n    return x + 1\n")
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    per_file = 50
    for f in range(tests // per_file):
        body = "".join(TEST.format(i=f * per_file + i) for i in range(per_file))
        (root / "tests" / f"test_m{f}.py").write_text(body)
    (root / "tests" / "test_red.py").write_text(
        "import os\n\n\ndef test_red():\n    assert not os.environ.get('BENCH_RED')\n"
    )
    for args in (
        ["init", "-q", "-b", "main"],
        ["add", "."],
        ["-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-qm", "suite"],
    ):
        subprocess.run(["git", *args], cwd=root, check=True)


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=9)
    p.add_argument("--tests", type=int, default=500)
    p.add_argument("--autoload", action="store_true", help="load every installed pytest plugin")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="debugtrace-bench-") as tmp:
        root = Path(tmp) / "suite"
        make_repo(root, args.tests)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEBUGTRACE_")}
        env.update(
            DEBUGTRACE_DATA_DIR=str(Path(tmp) / "data"),
            DEBUGTRACE_LOAD_PLUGINS="",
            PYTHONDONTWRITEBYTECODE="1",
        )
        if not args.autoload:
            env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # only the plugin under test is loaded
        red_env = {**env, "BENCH_RED": "1"}
        pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        plugin = [] if args.autoload else ["-p", "debugtrace.capture.pytest_plugin"]
        without = ["-p", "no:debugtrace"] if args.autoload else []
        on = [*pytest, *plugin, "--debugtrace"]
        lib = root / "lib.py"

        def red_edit() -> float:
            lib.write_text(lib.read_text() + "# edited\n")
            return timed(on, root, red_env)

        scenarios = {
            "baseline": lambda: timed([*pytest, *without], root, env),
            "off": lambda: timed([*pytest, *plugin], root, env),
            "green": lambda: timed(on, root, env),
            "red-open": lambda: timed(on, root, red_env),
            "red": lambda: timed(on, root, red_env),
            "red+edit": red_edit,
            "green-close": lambda: timed(on, root, env),
        }
        for fn in scenarios.values():
            fn()  # warm the page cache (and create the database)
        times: dict[str, list[float]] = {name: [] for name in scenarios}
        for _ in range(args.runs):
            for name, fn in scenarios.items():
                times[name].append(fn())
        base_run = statistics.median(times["baseline"])
        result: dict[str, object] = {
            "tests": args.tests + 1,
            "runs": args.runs,
            "autoload": args.autoload,
            "baseline_s": round(base_run, 3),
        }
        print(f"{args.tests + 1} tests, median of {args.runs} runs; baseline {base_run:.3f} s")
        for name in list(scenarios)[1:]:
            med = statistics.median(times[name])
            added = med - base_run
            result[name] = {
                "median_s": round(med, 3),
                "added_ms": round(added * 1e3, 1),
                "added_pct": round(100 * added / base_run, 1),
            }
            print(
                f"  {name:<11} {med:.3f} s  {added * 1e3:+7.1f} ms  {100 * added / base_run:+5.1f}%"
            )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    name = "pytest_overhead_autoload.json" if args.autoload else "pytest_overhead.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
