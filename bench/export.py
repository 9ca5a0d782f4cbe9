"""Export benchmark: ``Collector.export("jsonl")`` of 10,000 and 100,000 traces from SQLite.

Each trace is small and finalized (a hypothesis, a failing command with 200 bytes of output, an
edit; a validation and a grade). Exported with token counts (tiktoken installed: the default)
and with ``tokens=False``. Every size is exported in a fresh process, so its peak RSS
(VmHWM) is the export's own: flat memory means the 100,000-trace peak is that of 10,000.
The baseline, in the same run, is a hand-written dump: raw ``sqlite3`` reading the same rows in
pages and writing one ``json.dumps`` line per trace (no validation, no chat shape). Prints a table
and writes bench/results/export.json.

    python bench/export.py [--sizes 10000,100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def populate(db: Path, n: int) -> None:
    """``n`` finalized traces, stored the way debugtrace stores them (through its schema)."""
    from debugtrace.results import Grade, TraceResult
    from debugtrace.storage.sql.schema import traces
    from debugtrace.storage.sql.storage import SQLStorage
    from debugtrace.testing import example_validation

    storage = SQLStorage(f"sqlite:///{db}")
    now = datetime(2025, 3, 2, tzinfo=UTC)
    result = TraceResult(
        validation=example_validation(True),
        grades=[Grade(score=4, grader="heuristic", summary="ok", rubric_version="heuristic-1")],
    ).model_dump_json()
    us = 1_740_873_600_000_000
    details = [
        (
            "reasoning",
            '{"text":"divide() has no guard for b == 0","reasoning_type":"hypothesis",'
            '"confidence":"medium"}',
        ),
        (
            "command",
            json.dumps(
                {"command": "pytest -x tests/test_calc.py", "output": "F" * 200, "exit_code": 1}
            ),
        ),
        (
            "edit",
            json.dumps(
                {
                    "file": "calc.py",
                    "diff": "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,4 @@\n def divide(a, b):\n"
                    '+    if b == 0:\n+        raise ValueError("division by zero")\n'
                    "     return a / b\n",
                }
            ),
        ),
    ]
    with storage.engine.begin() as conn:
        for start in range(0, n, 10_000):
            ids = [f"{i:024x}" for i in range(start, min(start + 10_000, n))]
            conn.execute(
                traces.insert(),
                [
                    {
                        "id": tid,
                        "developer_id": "bench",
                        "repo_url": "https://github.com/example/calc",
                        "bug_description": "divide() crashes on zero",
                        "status": "finalized",
                        "created_at": now,
                        "updated_at": now,
                        "event_count": 3,
                        "metadata": "{}",
                        "result": result,
                    }
                    for tid in ids
                ],
            )
            conn.exec_driver_sql(
                "INSERT INTO events (trace_id, seq, type, timestamp, details) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (tid, seq, kind, us + seq, text)
                    for tid in ids
                    for seq, (kind, text) in enumerate(details, start=1)
                ],
            )
    storage.close()


def child_debugtrace(db: str, tokens: bool = True) -> dict[str, Any]:
    from debugtrace import Collector

    with Collector(database_url=f"sqlite:///{db}") as c, open("/dev/null", "wb") as out:
        start = time.perf_counter()
        n = c.export("jsonl", out, tokens=tokens)
        took = time.perf_counter() - start
    return {"traces": n, "s": took}


def child_raw(db: str) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    start = time.perf_counter()
    n = 0
    last = None
    with open("/dev/null", "w") as out:
        while True:
            rows = conn.execute(
                "SELECT id, developer_id, repo_url, bug_description, result FROM traces "
                + ("WHERE id < ? " if last else "")
                + "ORDER BY id DESC LIMIT 200",
                (last,) if last else (),
            ).fetchall()
            if not rows:
                break
            last = rows[-1][0]
            marks = ",".join("?" * len(rows))
            evs: dict[str, list[Any]] = {}
            for tid, seq, kind, ts, details in conn.execute(
                "SELECT trace_id, seq, type, timestamp, details FROM events "
                f"WHERE trace_id IN ({marks}) ORDER BY trace_id, seq",
                [r[0] for r in rows],
            ):
                evs.setdefault(tid, []).append(
                    {"seq": seq, "type": kind, "timestamp": ts, "details": json.loads(details)}
                )
            for tid, dev, repo, bug, result in rows:
                doc = {
                    "id": tid,
                    "developer_id": dev,
                    "repo_url": repo,
                    "bug_description": bug,
                    "events": evs.get(tid, []),
                    "result": json.loads(result) if result else None,
                }
                out.write(json.dumps(doc) + "\n")
                n += 1
    return {"traces": n, "s": time.perf_counter() - start}


def _peak_rss_kb() -> int:
    """This process's peak RSS. Linux: VmHWM (ru_maxrss would include the parent's, as a child
    keeps the high-water mark of the process it was forked from across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def run_child(kind: str, db: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(db)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(proc.stdout))


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--sizes", default="10000,100000")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", nargs=2, metavar=("KIND", "DB"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, db = args.child
        tokens = kind == "debugtrace"
        res = child_raw(db) if kind == "raw" else child_debugtrace(db, tokens=tokens)
        res["peak_rss_mb"] = round(_peak_rss_kb() / 1024, 1)
        print(json.dumps(res))
        return
    results = []
    print(f"{'traces':>8} {'what':<22}{'median s':>10}{'traces/s':>10}{'peak RSS MB':>13}")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "bench.db"
            populate(db, n)
            runs: dict[str, list[dict[str, Any]]] = {"raw": [], "debugtrace": [], "no-tokens": []}
            for _ in range(args.rounds):  # interleaved so machine noise hits both alike
                for kind in runs:
                    runs[kind].append(run_child(kind, db))
        row: dict[str, Any] = {"traces": n}
        for kind, label in (
            ("raw", "raw sqlite3 + json"),
            ("debugtrace", "debugtrace export"),
            ("no-tokens", "  with --no-tokens"),
        ):
            assert all(r["traces"] == n for r in runs[kind])
            s = statistics.median(r["s"] for r in runs[kind])
            rss = max(r["peak_rss_mb"] for r in runs[kind])
            row[kind] = {"median_s": round(s, 3), "traces_per_s": round(n / s), "peak_rss_mb": rss}
            print(f"{n:>8} {label:<22}{s:>10.2f}{n / s:>10.0f}{rss:>13.1f}")
        row["ratio"] = round(row["debugtrace"]["median_s"] / row["raw"]["median_s"], 2)
        row["ratio_no_tokens"] = round(row["no-tokens"]["median_s"] / row["raw"]["median_s"], 2)
        results.append(row)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "export.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
