"""A Docker engine and the sandbox images for tests, found or started once per session.

``docker_engine`` (session scope) yields a connected docker client:

1. the engine ``DOCKER_HOST`` names, if it answers;
2. else the private engine of ``scripts/dockerd.sh`` if it is already running;
3. else, when ``dockerd`` is installed or can be (root: the script installs ``docker.io``), it
   starts that engine; the last session using it stops it (parallel pytest-xdist workers are
   separate sessions: a file lock and a registry of live users keep one from stopping the engine
   or removing containers under another).

The images (``debugtrace-python:3.11`` and its base) are built with ``scripts/build-base-image.sh``
when missing (~2 minutes the first time, cached after). When no engine can be had, the tests are
skipped through ``conftest.require`` (a failure in CI, where DEBUGTRACE_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support import ROOT
from support.services import require

DOCKERD_SH = ROOT / "scripts" / "dockerd.sh"
BUILD_SH = ROOT / "scripts" / "build-base-image.sh"
IMAGE = "debugtrace-python:3.11"
SERVICE = "Docker engine"


def answers(host: str | None) -> Any:
    """A client for ``host`` if an engine answers there, else None."""
    import docker

    if not host:
        return None
    if host.startswith("unix://"):  # probe first: docker-py leaks the socket of a refused connect
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(host.removeprefix("unix://"))
            except OSError:
                return None
    client = docker.DockerClient(base_url=host, timeout=30)
    try:
        client.ping()
    except Exception:
        client.close()
        return None
    return client


def _script_env() -> str:
    out = subprocess.run(
        [str(DOCKERD_SH), "env"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return out.rsplit("=", 1)[-1]


def _can_start_dockerd() -> bool:
    return shutil.which("dockerd") is not None or (os.geteuid() == 0 and shutil.which("apt-get"))


def _tail(text: str, n: int = 1500) -> str:
    return text[-n:].strip()


STATE = Path(os.environ.get("DEBUGTRACE_DOCKER_STATE", "/tmp/dt-docker"))
"""scripts/dockerd.sh's state folder; the lock and the users' registry below live beside it."""


@contextmanager
def _engine_lock() -> Iterator[None]:
    # pytest-xdist workers are separate sessions: they share one engine, started by the first
    # and stopped by the last (a worker that finished early must not stop it under the others).
    from filelock import FileLock

    STATE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(STATE / "tests.lock"), timeout=1200):
        yield


def _users() -> Path:
    folder = STATE / "test-users"
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():  # sessions that died without their teardown
        with contextlib.suppress(ValueError, OSError):
            if not _alive(int(entry.name.split(".")[0])):
                entry.unlink()
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A docker client for an engine that has the sandbox image; DOCKER_HOST points at it."""
    try:
        import docker  # noqa: F401
    except ImportError:
        require(SERVICE, "the docker SDK is not installed (pip install -e '.[docker]')")
    old_host = os.environ.get("DOCKER_HOST")
    started_marker = STATE / "started-by-tests"
    with _engine_lock():
        client = answers(old_host)
        if client is None:
            host = _script_env()
            client = answers(host)
            if client is None:
                if not _can_start_dockerd():
                    require(
                        SERVICE, f"nothing answers at DOCKER_HOST={old_host} and dockerd is missing"
                    )
                proc = subprocess.run(
                    [str(DOCKERD_SH), "start"], capture_output=True, text=True, timeout=300
                )
                if proc.returncode != 0:
                    require(SERVICE, f"scripts/dockerd.sh start failed: {_tail(proc.stderr)}")
                started_marker.touch()
                client = answers(host)
                if client is None:
                    require(
                        SERVICE, f"scripts/dockerd.sh started an engine but {host} does not answer"
                    )
            os.environ["DOCKER_HOST"] = host
        # One entry per fixture instance: a module that imports the fixture gets its own.
        me = f"{os.getpid()}.{uuid.uuid4().hex}"
        (_users() / me).touch()
        ensure_image(client)
    try:
        yield client
    finally:
        from debugtrace.sandbox.docker.sandbox import cleanup_leftovers

        with _engine_lock():
            (_users() / me).unlink(missing_ok=True)
            last = not any(_users().iterdir())
            if last:
                cleanup_leftovers(client)
            client.close()
            if old_host is None:
                os.environ.pop("DOCKER_HOST", None)
            else:
                os.environ["DOCKER_HOST"] = old_host
            if last and started_marker.exists():
                subprocess.run([str(DOCKERD_SH), "stop"], capture_output=True, timeout=120)
                started_marker.unlink(missing_ok=True)


def ensure_image(client: Any) -> None:
    """Build the sandbox images with scripts/build-base-image.sh unless the engine has them."""
    import docker

    try:
        client.images.get(IMAGE)
        return
    except docker.errors.ImageNotFound:
        pass
    proc = subprocess.run(
        [str(BUILD_SH)], capture_output=True, text=True, timeout=1200, env=dict(os.environ)
    )
    if proc.returncode != 0:
        require(SERVICE, f"scripts/build-base-image.sh failed: {_tail(proc.stderr + proc.stdout)}")
