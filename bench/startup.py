"""Start-up cost: `python -X importtime -c "import debugtrace"` and `debugtrace --help` wall time.

Each is measured against a bare `python -c pass` in the same run (the interpreter's own start-up).

    python bench/startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_time_us(module_code: str) -> int:
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", module_code],
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    # Sum of the top-level cumulative times (lines whose name has no leading indentation).
    total = 0
    for line in err.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if m and not m.group(2).startswith(" "):
            total += int(m.group(1))
    return total


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=20)
    args = p.parse_args()
    cli = str(Path(sys.executable).parent / "debugtrace")
    base = wall([sys.executable, "-c", "pass"], args.runs)
    imp = wall([sys.executable, "-c", "import debugtrace"], args.runs)
    api = wall([sys.executable, "-c", "from debugtrace import Collector"], args.runs)
    helpw = wall([cli, "--help"], args.runs)
    result = {
        "python_startup_ms": round(base * 1e3, 1),
        "import_debugtrace_ms": round(imp * 1e3, 1),
        "import_collector_ms": round(api * 1e3, 1),
        "cli_help_ms": round(helpw * 1e3, 1),
        "importtime_debugtrace_us": import_time_us("import debugtrace"),
        "importtime_collector_us": import_time_us("from debugtrace import Collector"),
    }
    for k, v in result.items():
        print(f"{k:<28} {v}")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "startup.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
