"""Docker sandbox overhead: one DockerSandbox.run of ``true`` vs ``docker run --rm IMAGE true``.

Both measured in the same run against the engine at DOCKER_HOST (start one with
``scripts/dockerd.sh start``), with the sandbox image (``debugtrace sandbox build``).

    python bench/docker_run.py [--runs 10] [--image debugtrace-python:3.11]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from debugtrace import Settings
from debugtrace.sandbox import ProjectSpec, ResourceLimits
from debugtrace.sandbox.docker.sandbox import DockerSandbox


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--image", default="debugtrace-python:3.11")
    args = p.parse_args()
    docker = shutil.which("docker") or "docker"
    cli, ours, prep = [], [], []
    sandbox = DockerSandbox(Settings(docker_image=args.image))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "x.txt").write_text("x")
        for _ in range(args.runs):  # interleaved so machine noise hits both alike
            start = time.perf_counter()
            subprocess.run(
                [docker, "run", "--rm", "--network", "none", args.image, "true"], check=True
            )
            cli.append(time.perf_counter() - start)
            start = time.perf_counter()
            handle = sandbox.prepare(Path(tmp), ProjectSpec(kind="bench", test_command=("true",)))
            prep.append(time.perf_counter() - start)
            try:
                start = time.perf_counter()
                r = sandbox.run(handle, ["true"], ResourceLimits())
                ours.append(time.perf_counter() - start)
                assert r.exit_code == 0, r.output
            finally:
                sandbox.close(handle)
    c, o, pr = statistics.median(cli), statistics.median(ours), statistics.median(prep)
    result = {
        "runs": args.runs,
        "docker_run_rm_true_ms": round(c * 1e3),
        "sandbox_run_true_ms": round(o * 1e3),
        "sandbox_prepare_ms": round(pr * 1e3),
        "ratio": round(o / c, 2),
    }
    print(f"docker run --rm IMAGE true      {c * 1e3:7.0f} ms")
    print(f"DockerSandbox.run(['true'])     {o * 1e3:7.0f} ms  ({o / c:.2f}x)")
    print(f"DockerSandbox.prepare (once)    {pr * 1e3:7.0f} ms")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "docker_run.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
