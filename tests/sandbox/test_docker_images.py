"""The sandbox image: what goes into it, reuse by key, and what a missing base says (real
engine, wheels from the host's pip). Environment images: ``test_docker_environments.py``."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from debugtrace.errors import SandboxError
from debugtrace.sandbox.docker import images as docker_images
from debugtrace.sandbox.docker.images import (
    BASE_IMAGE,
    KEY_LABEL,
    build_sandbox_image,
)
from support.docker_engine import IMAGE, docker_engine  # noqa: F401 - the fixture is used by name

# -- against a real engine ------------------------------------------------------------------------


@pytest.fixture
def images(docker_engine: Any) -> Iterator[set[str]]:  # noqa: F811
    """Tags made by the test; removed at the end (never the shared sandbox and base images)."""
    made: set[str] = set()
    yield made
    for tag in made - {IMAGE, BASE_IMAGE}:
        with contextlib.suppress(Exception):
            docker_engine.images.remove(tag, force=True)


@pytest.mark.docker
def test_build_sandbox_image_from_the_debian_base_and_reuse_it(
    docker_engine: Any,  # noqa: F811
    images: set[str],
) -> None:
    tag = f"debugtrace-python:test-{uuid.uuid4().hex[:8]}"
    images.add(tag)
    log: list[str] = []
    assert build_sandbox_image(docker_engine, tag=tag, base=BASE_IMAGE, progress=log.append) == tag
    assert any("pip download" in m and "pytest" in m for m in log)
    image = docker_engine.images.get(tag)
    assert image.labels[KEY_LABEL]
    config = image.attrs["Config"]
    assert (
        "PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        in (config["Env"])
    )
    out = docker_engine.containers.run(
        tag,
        ["sh", "-c", "id -u; echo $HOME; pytest --version"],
        user="1000",
        environment={"HOME": "/home/sandbox"},
        network_mode="none",
        labels={"debugtrace": "1"},
        remove=True,
    ).decode()
    assert out.startswith("1000\n/home/sandbox\npytest ")

    again: list[str] = []
    assert (
        build_sandbox_image(docker_engine, tag=tag, base=BASE_IMAGE, progress=again.append) == tag
    )
    assert docker_engine.images.get(tag).id == image.id
    assert again == [f"{tag} is present (key {image.labels[KEY_LABEL]}); nothing to build"]


@pytest.mark.docker
def test_build_sandbox_image_names_a_missing_base(docker_engine: Any) -> None:  # noqa: F811
    import docker

    tag = f"debugtrace-python:test-{uuid.uuid4().hex[:8]}"
    with pytest.raises(SandboxError, match=r"debugtrace-no-such-base:0.*is missing"):
        build_sandbox_image(
            docker_engine, tag=tag, base="debugtrace-no-such-base:0", packages=(), progress=None
        )
    with pytest.raises(docker.errors.ImageNotFound):
        docker_engine.images.get(tag)


@pytest.mark.docker
def test_build_sandbox_image_without_any_base_says_how_to_get_one(
    docker_engine: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(docker_images, "BASE_IMAGE", "debugtrace-no-such-base:0")
    monkeypatch.setattr(docker_images, "SLIM_IMAGE", "debugtrace-no-such-slim:0")
    with pytest.raises(SandboxError) as info:
        build_sandbox_image(docker_engine, tag=f"debugtrace-python:test-{uuid.uuid4().hex[:8]}")
    message = str(info.value)
    assert message.startswith("no base image:")
    assert "scripts/build-base-image.sh" in message
    assert "python:3.11-slim available" in message
