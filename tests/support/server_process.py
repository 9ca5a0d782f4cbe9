"""Run `debugtrace serve` as a real subprocess for HTTP tests and benchmarks.

The server gets an environment of its own (nothing ``DEBUGTRACE_*`` leaks in from the caller), runs
in its own process group so stopping it also ends whatever it started (sandboxed test runs), and
its output goes to a log file that is shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

DEBUGTRACE = str(Path(sys.executable).parent / "debugtrace")
"""The real console script of the environment running the tests."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The default pytest command, minus the pytest plugins this venv has installed for debugtrace's own
# tests (schemathesis and hypothesis take ~7 s to load in every sandboxed run of the calc tests).
FAST_TEST_COMMAND = (
    "{python} -m pytest -q -p no:cacheprovider -p no:schemathesis -p no:hypothesispytest "
    "-p no:anyio --junitxml={junit} -o junit_family=xunit1"
)


def server_env(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    """A clean environment for a server (or CLI) process: the caller's, minus every
    ``DEBUGTRACE_*`` and OpenAI variable, plus the given store and ``extra`` settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DEBUGTRACE_") and k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")
    }
    env.update(
        DEBUGTRACE_DATABASE_URL=database_url,
        DEBUGTRACE_DATA_DIR=str(data_dir),
        DEBUGTRACE_LOAD_PLUGINS="",
        DEBUGTRACE_SANDBOX="local",
        DEBUGTRACE_TEST_COMMAND=FAST_TEST_COMMAND,
    )
    env.update(extra)
    return env


def run_cli(
    env: Mapping[str, str],
    *args: str,
    timeout: float = 60,
    stdin: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``debugtrace ARGS`` with ``env`` (and ``stdin``, in ``cwd``); returns the finished
    process (never raises on exit)."""
    return subprocess.run(
        [DEBUGTRACE, *args],
        env=dict(env),
        input=stdin,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Server:
    """One ``debugtrace serve`` process on a free loopback port."""

    def __init__(
        self,
        env: Mapping[str, str],
        log: Path,
        *,
        port: int | None = None,
        args: Sequence[str] = (),
    ) -> None:
        self.env = dict(env)
        self.log = log
        self.port = port or free_port()
        self.args = list(args)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Server:
        """Start the process and wait until ``/healthz`` answers 200."""
        cmd = [DEBUGTRACE, "serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"debugtrace serve exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"debugtrace serve did not answer /healthz in {timeout}s:\n{self.output()}"
        )

    def output(self) -> str:
        """The tail of the server's log."""
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)  # the server and everything it started (own session)

    def kill(self) -> None:
        """SIGKILL the server and its children at once, as a crash would."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self, grace: float = 10) -> None:
        """SIGTERM (graceful shutdown), then SIGKILL after ``grace`` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        # Whatever is left of the group (a sandboxed run mid-way) goes too.
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def client(self, token: str | None = None, **kwargs: Any) -> httpx.Client:
        """An httpx client for this server (with a bearer token when given)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_job(
    client: httpx.Client,
    job_id: str,
    states: Sequence[str] = ("done", "failed"),
    timeout: float = 60,
) -> dict[str, Any]:
    """Poll ``GET /api/jobs/{id}`` until the job reaches one of ``states``, for ``timeout`` s."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = client.get(f"/api/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job = r.json()
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not in {list(states)} after {timeout}s: {job}")
