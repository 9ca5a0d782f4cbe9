"""Which builder makes a project's test environment (the entry point finalize calls)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from debugtrace.environments import Environment, Progress

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.sandbox import ProjectSpec

__all__ = ["build_environment"]


def build_environment(
    worktree: Path,
    project: ProjectSpec,
    settings: Settings,
    progress: Progress | None = None,
) -> Environment | None:
    """The environment ``project`` (detected in ``worktree``) needs, built if missing.

    Returns None for a project kind without environments (go, rust, maven, make: their own
    toolchains fetch what they need). Raises :class:`EnvBuildError` with what failed and what to
    do when it cannot be built.
    """
    if project.kind == "python":
        from debugtrace.environments.python import build_python

        return build_python(worktree, project, settings, progress)
    if project.kind == "node":
        from debugtrace.environments.node import build_node

        return build_node(worktree, project, settings, progress)
    return None
