"""Test environment builds: debugtrace's builder vs the same environment made by hand, same run.

For real projects (the cases under tests/data/cases/: their old release's tree), three timings
of ``build_environment`` and of the by-hand baseline a person would type, ``uv venv`` then ``uv
pip install --compile-bytecode`` of the same requirements (what the project's dependency files
declare, plus pytest; uv resolves them in both):

- cold: an empty uv cache (``UV_CACHE_DIR`` fresh) for both: downloads included;
- warm cache: uv's cache filled, no environment yet (a new project whose packages are cached);
- reuse: the environment exists (a later finalize of the same project); the baseline is nothing
  at all, so this is reported in milliseconds.

    python bench/environments.py [--cases py-srclayout-croniter,py-plugin-platformdirs] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from debugtrace import Settings
from debugtrace.environments.build import build_environment
from debugtrace.environments.python import find_uv
from debugtrace.sandbox.projects import detect_project

CASES = Path(__file__).resolve().parent.parent / "tests" / "data" / "cases"


def tree(case: str, dest: Path) -> Path:
    with tarfile.open(CASES / case / "base.tar.gz") as tar:
        tar.extractall(dest, filter="data")
    (top,) = dest.iterdir()
    return top


def requirements(root: Path) -> list[str]:
    """What the dependency files declare (as the builder reads them), plus pytest."""
    from debugtrace.environments.pydeps import read_dependencies

    spec = detect_project(root)
    assert spec is not None
    reqs = read_dependencies(root, spec.dependency_files).requirements
    return (
        reqs
        if any(r.startswith("pytest") and r[6:7] in "<>=!~ ;[" for r in reqs)
        else [
            *reqs,
            "pytest",
        ]
    )


def ours(root: Path, data: Path, cache: Path) -> tuple[float, list[str]]:
    os.environ["UV_CACHE_DIR"] = str(cache)
    spec = detect_project(root)
    assert spec is not None
    start = time.perf_counter()
    env = build_environment(root, spec, Settings(data_dir=data, load_plugins=""))
    elapsed = time.perf_counter() - start
    assert env is not None
    return elapsed, list(env.pins)


def by_hand(reqs: list[str], venv: Path, cache: Path) -> float:
    uv = find_uv()
    assert uv, "uv is needed: pip install uv"
    req = venv.parent / f"{venv.name}-requirements.txt"
    req.write_text("".join(f"{r}\n" for r in reqs))
    env = {**os.environ, "UV_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--compile-bytecode",
            "--python",
            str(venv / "bin" / "python"),
            "-r",
            str(req),
        ],
        check=True,
        env=env,
    )
    return time.perf_counter() - start


def measure(case: str, rounds: int, tmp: Path) -> dict[str, object]:
    root = tree(case, tmp / f"{case}-tree")
    rows: dict[str, list[float]] = {k: [] for k in ("cold", "cold_hand", "warm", "warm_hand")}
    reuse: list[float] = []
    pins: list[str] = []
    wanted = requirements(root)
    for r in range(rounds):
        cold = tmp / f"cache-cold-{case}-{r}"
        hand_cold = tmp / f"cache-hand-{case}-{r}"
        data = tmp / f"data-{case}-{r}"
        t, pins = ours(root, data, cold)
        rows["cold"].append(t)
        rows["cold_hand"].append(by_hand(wanted, tmp / f"venv-cold-{case}-{r}", hand_cold))
        # the same caches, now full; fresh environments
        shutil.rmtree(data)
        rows["warm"].append(ours(root, data, cold)[0])
        rows["warm_hand"].append(by_hand(wanted, tmp / f"venv-warm-{case}-{r}", hand_cold))
        reuse.append(ours(root, data, cold)[0])
        for path in (cold, hand_cold):
            shutil.rmtree(path, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    return {
        "case": case,
        "packages": len(pins),
        "cold_s": round(med["cold"], 2),
        "cold_by_hand_s": round(med["cold_hand"], 2),
        "cold_ratio": round(med["cold"] / med["cold_hand"], 2),
        "warm_cache_s": round(med["warm"], 2),
        "warm_cache_by_hand_s": round(med["warm_hand"], 2),
        "warm_cache_ratio": round(med["warm"] / med["warm_hand"], 2),
        "reuse_ms": round(statistics.median(reuse) * 1000, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="py-srclayout-croniter,py-plugin-platformdirs")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            res = measure(case, args.rounds, Path(tmp))
            results.append(res)
            print(
                f"{case}: {res['packages']} packages; cold {res['cold_s']}s vs by hand "
                f"{res['cold_by_hand_s']}s ({res['cold_ratio']}x); warm cache "
                f"{res['warm_cache_s']}s vs {res['warm_cache_by_hand_s']}s "
                f"({res['warm_cache_ratio']}x); reuse {res['reuse_ms']} ms"
            )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "environments.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
