"""A Docker engine and the sandbox images for tests, found or started once per session.

``docker_engine`` (session scope) yields a connected docker client:

1. the engine ``DOCKER_HOST`` names, if it answers;
2. else the private engine of ``scripts/dockerd.sh`` if it is already running;
3. else, when ``dockerd`` is installed or can be (root: the script installs ``docker.io``), it
   starts that engine and stops it again at the end of the session.

The images (``debugtrace-python:3.11`` and its base) are built with ``scripts/build-base-image.sh``
when missing (~2 minutes the first time, cached after). When no engine can be had, the tests are
skipped through ``conftest.require`` (a failure in CI, where DEBUGTRACE_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
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


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A docker client for an engine that has the sandbox image; DOCKER_HOST points at it."""
    try:
        import docker  # noqa: F401
    except ImportError:
        require(SERVICE, "the docker SDK is not installed (pip install -e '.[docker]')")
    started = False
    old_host = os.environ.get("DOCKER_HOST")
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
            started = True
            client = answers(host)
            if client is None:
                require(SERVICE, f"scripts/dockerd.sh started an engine but {host} does not answer")
        os.environ["DOCKER_HOST"] = host
    try:
        ensure_image(client)
        yield client
    finally:
        from debugtrace.sandbox.docker.sandbox import cleanup_leftovers

        cleanup_leftovers(client)
        client.close()
        if old_host is None:
            os.environ.pop("DOCKER_HOST", None)
        else:
            os.environ["DOCKER_HOST"] = old_host
        if started:
            subprocess.run([str(DOCKERD_SH), "stop"], capture_output=True, timeout=120)


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
