"""HTTP benchmark: events/s through `debugtrace serve` vs a bare Starlette app, in the same run.

Ingest: a few concurrent clients (httpx.AsyncClient), each appending batches of 100 command events
to a trace of its own. The baseline is what a hand-written service would do: a Starlette app under
the same uvicorn (started by this script as a subprocess, access log on like `debugtrace serve`)
that parses the same JSON body and inserts the rows with raw sqlite3 (WAL, synchronous=NORMAL, next
seq from the table, one commit per batch). Target: debugtrace at least 0.5x the baseline's events/s.

Read: p50/p99 latency of GET /api/traces/{id} for a trace of 2,000 events.

debugtrace runs on SQLite and, when the local service answers, on PostgreSQL (a fresh database,
dropped afterwards). Prints a table and writes bench/results/http_ingest.json. Loopback only.

    python bench/http_ingest.py [--events 20000] [--clients 4] [--batch 100] [--gets 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from server_process import Server, free_port, server_env  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from ingest import make_events  # noqa: E402

TARGET = 0.5
PG_ADMIN_URL = os.environ.get(
    "DEBUGTRACE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


# -- the baseline: a bare Starlette app with raw sqlite3 ----------------------------------------


def baseline_app(db_path: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    db = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS events (trace_id TEXT, seq INTEGER, type TEXT,"
        " timestamp TEXT, details TEXT, PRIMARY KEY (trace_id, seq))"
    )

    async def add_events(request: Request) -> JSONResponse:
        trace_id = request.path_params["trace_id"]
        doc = json.loads(await request.body())
        events = doc["events"] if isinstance(doc, dict) else doc
        db.execute("BEGIN IMMEDIATE")
        (last,) = db.execute(
            "SELECT coalesce(max(seq), 0) FROM events WHERE trace_id = ?", (trace_id,)
        ).fetchone()
        rows = [
            (trace_id, last + i + 1, ev["type"], ev.get("timestamp"), json.dumps(ev["details"]))
            for i, ev in enumerate(events)
        ]
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        body = {"trace_id": trace_id, "count": len(rows), "first_seq": last + 1}
        return JSONResponse({**body, "last_seq": last + len(rows)}, status_code=201)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/api/traces/{trace_id}/events", add_events, methods=["POST"]),
        ]
    )


def serve_baseline(port: int, db_path: str) -> None:
    import uvicorn

    uvicorn.run(baseline_app(db_path), host="127.0.0.1", port=port, log_level="info")


class Baseline:
    """This script, run as ``--serve-baseline PORT DB``, in a subprocess."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (folder / "baseline.log").open("wb")
        cmd = [sys.executable, __file__, "--serve-baseline", str(self.port), str(folder / "b.db")]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("the baseline server did not start")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# -- the measurements ---------------------------------------------------------------------------


async def ingest(
    base_url: str, trace_ids: list[str], events: list[dict[str, Any]], batch: int
) -> float:
    """Each client appends all of ``events`` to its own trace; returns the wall time."""

    async def one(trace_id: str) -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as c:
            for i in range(0, len(events), batch):
                r = await c.post(f"/api/traces/{trace_id}/events", json=events[i : i + batch])
                assert r.status_code == 201, r.text

    start = time.perf_counter()
    await asyncio.gather(*(one(t) for t in trace_ids))
    return time.perf_counter() - start


def create_traces(client: httpx.Client, n: int) -> list[str]:
    doc = {"developer_id": "bench", "repo_url": "https://example.com/r.git", "bug_description": "b"}
    return [client.post("/api/traces?finalize=false", json=doc).json()["id"] for _ in range(n)]


def get_latency(client: httpx.Client, trace_id: str, gets: int) -> dict[str, float]:
    for _ in range(5):  # warm up
        client.get(f"/api/traces/{trace_id}")
    times = []
    for _ in range(gets):
        start = time.perf_counter()
        r = client.get(f"/api/traces/{trace_id}")
        times.append(time.perf_counter() - start)
        assert r.status_code == 200
    times.sort()
    return {
        "p50_ms": round(statistics.median(times) * 1000, 2),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 2),
        "bytes": len(r.content),
    }


def load_read_trace(client: httpx.Client, batch: int) -> str:
    (trace_id,) = create_traces(client, 1)
    big = make_events(2000, "read")
    for i in range(0, len(big), batch):
        assert client.post(f"/api/traces/{trace_id}/events", json=big[i : i + batch]).is_success
    return trace_id


def run(args: argparse.Namespace, folder: Path, pg_url: str | None) -> dict[str, Any]:
    """Start every server, then interleave the ingest rounds so machine noise hits all alike."""
    events = make_events(args.events // args.clients)
    total = len(events) * args.clients
    baseline = Baseline(folder)
    servers: dict[str, Server] = {}
    try:
        urls = {"sqlite": f"sqlite:///{folder / 'traces.db'}", "postgresql": pg_url}
        for key, url in urls.items():
            if url:
                env = server_env(folder / key, url)
                servers[key] = Server(env, folder / f"{key}.log").start()
        seconds: dict[str, list[float]] = {"baseline": [], **{k: [] for k in servers}}
        for round_ in range(args.rounds):
            names = [f"r{round_}c{i}" for i in range(args.clients)]
            seconds["baseline"].append(asyncio.run(ingest(baseline.url, names, events, args.batch)))
            for key, srv in servers.items():
                with srv.client() as c:
                    traces = create_traces(c, args.clients)
                seconds[key].append(asyncio.run(ingest(srv.url, traces, events, args.batch)))
                with srv.client() as c:
                    last = c.get(f"/api/traces/{traces[0]}").json()["events"][-1]["seq"]
                    assert last == len(events), last
        out: dict[str, Any] = {}
        for key, times in seconds.items():
            median = statistics.median(times)
            out[key] = {"seconds": round(median, 3), "events_per_s": round(total / median)}
        for key, srv in servers.items():
            with srv.client() as c:
                trace_id = load_read_trace(c, args.batch)
                out[key]["get_2000_events"] = get_latency(c, trace_id, args.gets)
        return out
    finally:
        baseline.close()
        for srv in servers.values():
            srv.stop()


def pg_database() -> tuple[str, str] | None:
    """A fresh PostgreSQL database (URL, name), or None when the service does not answer."""
    try:
        import psycopg

        name = f"dt_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        print(f"PostgreSQL skipped: {exc}".strip(), file=sys.stderr)
        return None
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", name


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=20_000, help="events per round, over all clients")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--gets", type=int, default=200)
    p.add_argument("--serve-baseline", nargs=2, metavar=("PORT", "DB"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_baseline:
        serve_baseline(int(args.serve_baseline[0]), args.serve_baseline[1])
        return

    total = args.events // args.clients * args.clients
    result: dict[str, Any] = {
        "events": total,
        "clients": args.clients,
        "batch": args.batch,
        "rounds": args.rounds,
        "gets": args.gets,
    }
    pg = pg_database()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result.update(run(args, Path(tmp), pg[0] if pg else None))
    finally:
        if pg:
            drop_pg_database(pg[1])
    base = result["baseline"]["events_per_s"]
    ratio = result["sqlite"]["events_per_s"] / base
    result.update(ratio=round(ratio, 3), target=TARGET, meets_target=ratio >= TARGET)

    print(f"{total} events/round, {args.clients} clients, batches of {args.batch}, ", end="")
    print(f"median of {args.rounds} interleaved rounds")
    print(f"{'':<30}{'events/s':>10}{'GET p50 ms':>12}{'GET p99 ms':>12}")
    print(f"{'bare Starlette + sqlite3':<30}{base:>10}")
    for key in ("sqlite", "postgresql"):
        if key in result:
            r = result[key]
            lat = r["get_2000_events"]
            label = f"debugtrace serve ({key})"
            print(f"{label:<30}{r['events_per_s']:>10}{lat['p50_ms']:>12}{lat['p99_ms']:>12}")
    print(f"ratio {ratio:.2f}x of the baseline (target >= {TARGET}x): ", end="")
    print("OK" if ratio >= TARGET else "MISSED")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "http_ingest.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
