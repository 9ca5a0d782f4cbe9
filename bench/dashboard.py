"""Dashboard benchmark: the overview and a repository-filtered list over 100,000 traces in SQLite,
against raw ``sqlite3`` queries giving the same numbers, in the same run.

The store is shaped like a real one: 40 developers and 300 repositories (a few busy, most quiet),
traces spread over 60 weeks with a hypothesis, a command and an edit each; 2 in 3 finalized with
a result as finalize writes it (stage logs, per-edit results, a test verdict over up to 300
tests, a heuristic grade with its rubric; some graded again or by a second grader), some whose
tests could not run, some queued, the rest open. Rows are bulk-inserted through debugtrace's own
schema (a migrated database), results and their verdict columns as ``save_result`` writes them.

Timed, each the median of ``--rounds`` interleaved runs:

- overview: ``Storage.stats`` (the two aggregate queries), ``views.overview`` (what the page
  computes) and ``GET /overview`` (the whole page: charts and template), against the baseline:
  three raw ``GROUP BY`` queries on the same columns (score; validated by finalized or not;
  developer and week) over a plain ``sqlite3`` connection. For reference also the same three
  queries over the stored result JSON (``json_extract``/``json_each``: what one would write
  without the columns, the numbers the issue measured against). Target: the page within 3x of
  the baseline. Every variant must give the same numbers (checked).
- the list filtered by repository (a busy one and a quiet one): ``GET /?repo=...`` and
  ``views.list_page`` against the raw ``SELECT ... WHERE repo_url = ? ORDER BY id DESC LIMIT 26``
  plus the page's verdicts; with the ``EXPLAIN QUERY PLAN`` of the query the storage sends.

Prints a table and writes bench/results/dashboard.json.

    python bench/dashboard.py [--traces 100000] [--rounds 5] [--db PATH (kept and reused)]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

TARGET = 3.0
PK_INDEX = "INDEXED BY sqlite_autoindex_traces_1"
DEVELOPERS = 40
REPOS = 300
WEEKS = 60
EVENT_US = 1_000_000  # events one second apart


def _zipf(rng: random.Random, n: int, s: float = 1.1) -> Callable[[], int]:
    weights = [1 / (i + 1) ** s for i in range(n)]
    population = list(range(n))
    return lambda: rng.choices(population, weights)[0]


def _results(rng: random.Random, n: int) -> list[Any]:
    """``n`` distinct finalize results of every kind (validated or not, graded once, again, or
    by two graders, tests that could not run, a finalize that failed at the clone)."""
    from debugtrace.results import EditResult, Grade, RubricScore, Stage, TraceResult, Validation

    criteria = (
        "hypothesis_quality",
        "evidence_gathering",
        "reproduction",
        "fix_minimality",
        "verification",
        "calibration",
    )

    def grade(grader: str, score: int) -> Grade:
        return Grade(
            score=score,
            summary=f"{grader} grade {score}/5: the fix {'validated' if score > 2 else 'failed'}.",
            strengths=["stated a specific hypothesis before editing", "reproduced the failure"],
            weaknesses=[] if score > 3 else ["did not re-run the tests after the edit"],
            recommendations=[] if score > 3 else ["run the failing test after each edit"],
            rubric={
                c: RubricScore(score=max(1, min(5, score + rng.randint(-1, 1))), reason=f"{c} ok")
                for c in criteria
            },
            grader=grader,
            grader_version="1",
            model="gpt-4o-mini" if grader == "openai" else None,
            rubric_version=f"{grader}-1",
            usage={"input_tokens": 5000, "output_tokens": 400} if grader == "openai" else {},
            duration_s=2.5 if grader == "openai" else 0.0001,
        )

    out = []
    for _ in range(n):
        tests = [f"tests/test_mod{i // 20}.py::test_case_{i}" for i in range(rng.randint(5, 300))]
        log = "\n".join(f"{t} {'PASSED' if rng.random() < 0.9 else 'FAILED'}" for t in tests[:120])
        log = log[:4000] + (
            f"\n... {len(log) - 4000} bytes left out ...\n" if len(log) > 4000 else ""
        )
        when = datetime(2025, 3, 2, 9, 30, tzinfo=UTC)
        kind = rng.random()
        stages = [
            Stage(name="workspace", status="ok", duration_s=1.2, message="cloned; checked out"),
            Stage(name="apply", status="ok", duration_s=0.05, message="2 of 2 edits applied"),
        ]
        edits = [
            EditResult(seq=3, file="src/mod.py", status="applied", method="git-apply"),
            EditResult(seq=5, file="src/util.py", status="applied", method="git-apply-3way"),
        ]
        if kind < 0.04:  # the clone failed: nothing else ran
            stages = [Stage(name="workspace", status="error", message="could not clone: timeout")]
            out.append(TraceResult(stages=stages, finalized_at=when))
            continue
        validation = None
        if kind < 0.16:  # the tests could not run; graded without a test verdict (or not)
            stages.append(
                Stage(
                    name="tests", status="error", duration_s=30.0, message="no tests ran", log=log
                )
            )
        else:
            validated = rng.random() < 0.55
            f2p = tests[:3] if validated else []
            validation = Validation(
                base_sha="0" * 40,
                test_command=["pytest", "-q", "-p", "no:cacheprovider"],
                fail_to_pass=f2p,
                pass_to_pass=tests[3:],
                fail_to_fail=[] if validated else tests[:2],
                fix_validated=validated,
            )
            message = f"fix {'validated' if validated else 'not validated'}: {len(f2p)} f2p"
            stages.append(
                Stage(name="tests", status="ok", duration_s=12.0, message=message, log=log)
            )
        grades: list[Grade] = []
        if rng.random() < 0.92:
            base = (
                rng.randint(3, 5) if validation and validation.fix_validated else rng.randint(1, 3)
            )
            grades.append(grade("heuristic", base))
            if rng.random() < 0.1:  # graded again: the latest counts
                grades.append(grade("heuristic", max(1, min(5, base + rng.choice((-1, 1))))))
            if rng.random() < 0.25:  # a second grader: the lower score counts
                grades.append(grade("openai", max(1, min(5, base + rng.randint(-2, 1)))))
        stages.append(
            Stage(
                name="grade",
                status="ok" if grades else "skipped",
                message=", ".join(f"{g.grader} {g.score}/5" for g in grades) or "no grader",
            )
        )
        out.append(
            TraceResult(
                stages=stages, edits=edits, validation=validation, grades=grades, finalized_at=when
            )
        )
    return out


def populate(db: Path, n: int, seed: int = 13) -> dict[str, Any]:
    """``n`` traces as described in the module docstring; returns facts the runs need."""
    from debugtrace.storage import Verdict
    from debugtrace.storage.sql.schema import traces
    from debugtrace.storage.sql.storage import SQLStorage

    rng = random.Random(seed)
    storage = SQLStorage(f"sqlite:///{db}")  # creates the schema through the migrations
    results = [(r.model_dump_json(), Verdict.of(r)) for r in _results(rng, 400)]
    developer, repo = _zipf(rng, DEVELOPERS), _zipf(rng, REPOS)
    end = datetime(2025, 6, 30, 18, tzinfo=UTC)
    span_s = WEEKS * 7 * 86400
    times = sorted(end - timedelta(seconds=rng.uniform(0, span_s)) for _ in range(n))
    hypothesis = json.dumps(
        {
            "text": "divide() has no guard for b == 0",
            "reasoning_type": "hypothesis",
            "confidence": "medium",
        }
    )
    diff = (
        "--- a/src/mod.py\n+++ b/src/mod.py\n@@ -10,6 +10,8 @@ def divide(a, b):\n"
        '     """Divide a by b."""\n+    if b == 0:\n'
        '+        raise ValueError("division by zero")\n'
        "     return a / b\n"
    )
    with storage.engine.begin() as conn:
        for start in range(0, n, 5_000):
            rows, events = [], []
            for i in range(start, min(start + 5_000, n)):
                created = times[i]
                ms = int(created.timestamp() * 1000)
                tid = f"{ms:012x}{rng.getrandbits(47):012x}"
                roll = rng.random()
                status = (
                    "finalized"
                    if roll < 0.66
                    else "queued"
                    if roll < 0.68
                    else "finalizing"
                    if roll < 0.70
                    else "open"
                )
                result, verdict = (None, Verdict())
                if status == "finalized" or (status == "open" and roll > 0.97):
                    result, verdict = rng.choice(results)  # open: a finalize that failed
                us = int(created.timestamp() * 1_000_000)
                command = json.dumps(
                    {
                        "command": f"pytest -x tests/test_mod{i % 7}.py",
                        "output": ("F" + "." * 60 + "\n") * rng.randint(1, 20),
                        "exit_code": 1,
                    }
                )
                edit = json.dumps({"file": "src/mod.py", "diff": diff})
                events += [
                    (tid, 1, "reasoning", us, hypothesis),
                    (tid, 2, "command", us + EVENT_US, command),
                    (tid, 3, "edit", us + 2 * EVENT_US, edit),
                ]
                rows.append(
                    {
                        "id": tid,
                        "developer_id": f"dev{developer():02d}",
                        "repo_url": f"https://github.com/example/project-{repo():03d}",
                        "bug_description": f"bug {i}: divide() crashes when b is zero",
                        "base_commit": "0" * 40,
                        "branch": "main",
                        "status": status,
                        "created_at": created,
                        "updated_at": created + timedelta(minutes=5),
                        "event_count": 3,
                        "metadata": '{"harness": "bench"}',
                        "result": result,
                        "validated": verdict.validated,
                        "score": verdict.score,
                    }
                )
            conn.execute(traces.insert(), rows)
            conn.exec_driver_sql(
                "INSERT INTO events (trace_id, seq, type, timestamp, details) "
                "VALUES (?, ?, ?, ?, ?)",
                events,
            )
        conn.exec_driver_sql("ANALYZE")
        per_repo = Counter(
            r for (r,) in conn.exec_driver_sql("SELECT repo_url FROM traces").all()
        ).most_common()
    storage.close()
    return {"busy_repo": per_repo[0], "quiet_repo": per_repo[-1]}


# -- the baseline: raw sqlite3 -----------------------------------------------------------------

RAW_COLUMNS = (
    "SELECT score, count(*) FROM traces GROUP BY score",
    "SELECT validated, status = 'finalized', count(*) FROM traces GROUP BY 1, 2",
    "SELECT developer_id, date(created_at, 'weekday 0', '-6 days') AS week, count(*) "
    "FROM traces GROUP BY developer_id, week",
)

# The score is the lowest of each grader's latest grade: a grade counts unless a later one (a
# higher array index) has the same grader.
RAW_JSON = (
    "SELECT (SELECT min(json_extract(g.value, '$.score')) FROM json_each(t.result, '$.grades') g"
    "  WHERE NOT EXISTS (SELECT 1 FROM json_each(t.result, '$.grades') h"
    "    WHERE h.key > g.key"
    "      AND json_extract(h.value, '$.grader') = json_extract(g.value, '$.grader'))) AS score,"
    " count(*) FROM traces t GROUP BY score",
    "SELECT json_extract(result, '$.validation.fix_validated'), status = 'finalized', count(*)"
    " FROM traces GROUP BY 1, 2",
    RAW_COLUMNS[2],
)


def raw_overview(conn: sqlite3.Connection, queries: tuple[str, ...]) -> dict[str, Any]:
    scores, validated, weeks = (conn.execute(q).fetchall() for q in queries)
    return _numbers(
        {s: n for s, n in scores},
        [(None if v is None else bool(v), bool(fin), n) for v, fin, n in validated],
        {(d, date.fromisoformat(w)): n for d, w, n in weeks},
    )


def _numbers(
    scores: dict[int | None, int],
    validated: list[tuple[bool | None, bool, int]],
    weeks: dict[tuple[str, date], int],
) -> dict[str, Any]:
    """The overview's numbers in one comparable shape."""
    share: Counter[str] = Counter()
    for v, finalized, n in validated:
        if v is None:
            share["no test verdict" if finalized else "not finalized"] += n
        else:
            share["validated" if v else "not validated"] += n
    return {
        "scores": {
            "ungraded" if k is None else str(k): n
            for k, n in sorted(scores.items(), key=lambda kv: kv[0] or 6)
        },
        "validated": dict(sorted(share.items())),
        "weeks": sorted((d, w.isoformat(), n) for (d, w), n in weeks.items()),
    }


def stats_numbers(stats: Any) -> dict[str, Any]:
    return _numbers(
        stats.by_score(),
        [(c.validated, c.status == "finalized", c.traces) for c in stats.verdicts],
        {(w.developer_id, w.week): w.traces for w in stats.weeks},
    )


def page_numbers(data: Any) -> dict[str, Any]:
    """The overview page's score and validated numbers (the weekly chart keeps 26 weeks)."""
    return {
        "scores": {k: n for k, n in data.scores if n or k == "ungraded"},
        "validated": {k: n for k, n in data.validated if n},
    }


RAW_STATS = (
    "SELECT status, validated, score, count(*) FROM traces GROUP BY status, validated, score",
    RAW_COLUMNS[2],
)


def raw_stats(conn: sqlite3.Connection) -> int:
    """The two queries ``Storage.stats`` sends, over plain sqlite3."""
    return sum(len(conn.execute(q).fetchall()) for q in RAW_STATS)


def raw_list(conn: sqlite3.Connection, repo: str, index: str = "") -> list[tuple[Any, ...]]:
    """A page of the list filtered by ``repo`` and its verdicts; ``index`` forces a plan (the
    primary key's, newest first, is what the list had before ix_traces_repo_url)."""
    rows = conn.execute(
        "SELECT id, developer_id, repo_url, bug_description, base_commit, branch, status,"
        f" created_at, updated_at, event_count FROM traces {index} WHERE repo_url = ?"
        " ORDER BY id DESC LIMIT 26",
        (repo,),
    ).fetchall()
    marks = ",".join("?" * len(rows))
    verdicts = conn.execute(
        f"SELECT id, validated, score FROM traces WHERE id IN ({marks})", [r[0] for r in rows]
    ).fetchall()
    assert len(verdicts) == len(rows)
    return rows


# -- timing ------------------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def list_plan(collector: Any, repo: str) -> list[str]:
    """EXPLAIN QUERY PLAN of the SQL the storage sends for the list filtered by ``repo``."""
    from sqlalchemy import event

    sent: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM traces" in statement and "ORDER BY traces.id DESC" in statement:
            sent.append((statement, params))

    engine = collector.storage.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        collector.traces(repo_url=repo, limit=25)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    statement, params = sent[0]
    with engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
    return [str(row[-1]) for row in plan]


def run(db: Path, facts: dict[str, Any], rounds: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from debugtrace import Collector, Settings
    from debugtrace.server.app import create_app
    from debugtrace.server.auth import ADMIN
    from debugtrace.server.dashboard import views

    settings = Settings(database_url=f"sqlite:///{db}", load_plugins="", data_dir=db.parent)
    raw = sqlite3.connect(db)
    times: dict[str, list[float]] = {}
    busy, quiet = facts["busy_repo"][0], facts["quiet_repo"][0]
    with (
        Collector(settings=settings) as collector,
        TestClient(create_app(collector=collector), base_url="http://127.0.0.1") as client,
    ):
        storage = collector.storage
        cases: dict[str, Callable[[], Any]] = {
            "raw JSON GROUP BYs": lambda: raw_overview(raw, RAW_JSON),
            "raw GROUP BYs (baseline)": lambda: raw_overview(raw, RAW_COLUMNS),
            "raw: Storage.stats' 2 queries": lambda: raw_stats(raw),
            "Storage.stats": lambda: storage.stats(),
            "views.overview": lambda: views.overview(collector, ADMIN),
            "GET /overview": lambda: client.get("/overview"),
            "raw list, busy repo": lambda: raw_list(raw, busy),
            "views.list_page, busy repo": lambda: views.list_page(
                collector, ADMIN, views.Filters(repo=busy)
            ),
            "GET /?repo=busy": lambda: client.get("/", params={"repo": busy}),
            "raw list, quiet repo": lambda: raw_list(raw, quiet),
            "raw list, quiet, no repo index": lambda: raw_list(raw, quiet, PK_INDEX),
            "views.list_page, quiet repo": lambda: views.list_page(
                collector, ADMIN, views.Filters(repo=quiet)
            ),
            "GET /?repo=quiet": lambda: client.get("/", params={"repo": quiet}),
        }
        values: dict[str, Any] = {}
        for name, fn in cases.items():  # warm up (and keep one answer of each)
            values[name] = fn()
        for _ in range(rounds):  # interleaved so machine noise hits every case alike
            for name, fn in cases.items():
                times.setdefault(name, []).append(timed(fn)[0])
        # The same numbers everywhere.
        expected = values["raw GROUP BYs (baseline)"]
        assert values["raw JSON GROUP BYs"] == expected, "the JSON baseline disagrees"
        assert stats_numbers(values["Storage.stats"]) == expected, "Storage.stats disagrees"
        shown = page_numbers(values["views.overview"])
        assert shown["scores"] == {k: v for k, v in expected["scores"].items() if v}
        assert shown["validated"] == expected["validated"]
        for name in ("GET /overview", "GET /?repo=busy", "GET /?repo=quiet"):
            assert values[name].status_code == 200, name
        assert [r.summary.id for r in values["views.list_page, busy repo"].rows] == [
            r[0] for r in values["raw list, busy repo"][:25]
        ]
        plan = list_plan(collector, busy)
    raw.close()
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {
        "traces": values["Storage.stats"].total,
        "median_s": {k: round(v, 5) for k, v in medians.items()},
        "overview_page_ratio": round(
            medians["GET /overview"] / medians["raw GROUP BYs (baseline)"], 2
        ),
        "list_plan": plan,
        "busy_repo_traces": facts["busy_repo"][1],
        "quiet_repo_traces": facts["quiet_repo"][1],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--traces", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--db", type=Path, help="keep the database here (reused when it exists)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "bench.db"
        facts_file = db.with_suffix(".facts.json")
        took = 0.0
        if db.exists() and facts_file.exists():
            facts = json.loads(facts_file.read_text())
        else:
            took, facts = timed(lambda: populate(db, args.traces))
            facts_file.write_text(json.dumps(facts))
        result = run(db, facts, args.rounds)
    result["populate_s"] = round(took, 1)
    base = result["median_s"]["raw GROUP BYs (baseline)"]
    print(f"{result['traces']:,} traces (generated in {took:.0f} s); median of {args.rounds}")
    print(f"{'':<30}{'ms':>9}{'x baseline':>12}")
    for name, s in result["median_s"].items():
        ref = None if "list" in name or "repo" in name else base
        ratio = f"{s / ref:>12.2f}" if ref else ""
        print(f"{name:<30}{s * 1000:>9.1f}{ratio}")
    ok = result["overview_page_ratio"] <= TARGET
    print(
        f"overview page {result['overview_page_ratio']:.2f}x the raw GROUP BYs "
        f"(target <= {TARGET}x): {'OK' if ok else 'MISSED'}"
    )
    print(
        f"busy repo {result['busy_repo_traces']} traces, quiet repo {result['quiet_repo_traces']}"
    )
    print("list query plan:", "; ".join(result["list_plan"]))
    result["target"] = TARGET
    result["meets_target"] = ok
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "dashboard.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
