"""Built-in sandbox ``docker``: each command in a fresh locked-down container (docker SDK)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from debugtrace.hookspecs import hookimpl

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.registry import Register
    from debugtrace.sandbox import Sandbox


def _docker_sandbox(settings: Settings) -> Sandbox:
    from debugtrace.sandbox.docker.sandbox import (
        DockerSandbox,  # imports the docker SDK only when used
    )

    return DockerSandbox(settings)


@hookimpl
def register_sandboxes(register: Register) -> None:
    """Register ``docker``."""
    register(
        "docker",
        _docker_sandbox,
        requires=("docker",),
        description="Docker engine at DOCKER_HOST: a fresh container per command, no network, "
        "read-only root, memory/process/file-size limits; image DEBUGTRACE_DOCKER_IMAGE",
        install_hint="pip install 'debugtrace-collector[docker]'",
    )
