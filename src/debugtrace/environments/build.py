"""Which builder makes a project's test environment (the entry point finalize calls)."""

from __future__ import annotations

import os
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
    if project.kind == "maven":
        return maven_environment(settings)
    if project.kind == "rust":
        return rust_environment()
    return None


def rust_environment() -> Environment | None:
    """The host's rustup toolchains and cargo home, read-only (``cargo test --offline``: the
    crate's dependencies must be vendored or already in the cargo home's registry). None when
    cargo is the system's (``/usr/bin``, bound anyway) or not installed."""
    cargo_home = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo").resolve()
    rustup_home = Path(os.environ.get("RUSTUP_HOME") or Path.home() / ".rustup").resolve()
    if not (cargo_home / "bin" / "cargo").is_file():
        return None
    binds = tuple(p for p in (cargo_home, rustup_home) if p.is_dir() and str(p) not in _TOO_WIDE)
    return Environment(
        kind="rust",
        key="cargo",
        path=cargo_home,
        description=f"cargo from {cargo_home} (read-only; offline)",
        reused=True,
        bin_dirs=(str(cargo_home / "bin"),),
        env={"CARGO_HOME": str(cargo_home), "RUSTUP_HOME": str(rustup_home)},
        binds=binds,
    )


_TOO_WIDE = ("/", "/root", "/home", "/etc", "/usr", "/var", "/tmp")
_JVM_OPTIONS = (
    "-Xmx512m -XX:CompressedClassSpaceSize=128m -XX:MaxMetaspaceSize=256m "
    "-XX:ReservedCodeCacheSize=64m -XX:+UseSerialGC -Xss1m"
)


def maven_environment(settings: Settings) -> Environment | None:
    """The host's Maven local repository, read-only: the tests run offline (``mvn -o``), so
    every plugin and dependency must already be in it (e.g. after ``mvn dependency:go-offline``
    on the host). None when there is none (Maven then says which artifact is missing)."""
    from debugtrace.errors import EnvBuildError

    repo = Path(settings.maven_repo or Path.home() / ".m2" / "repository").resolve()
    if not repo.is_dir():
        return None
    if str(repo) in _TOO_WIDE or Path(settings.data_dir).resolve().is_relative_to(repo):
        raise EnvBuildError(
            f"DEBUGTRACE_MAVEN_REPO={repo} is too wide a folder to show to test code; point it "
            "at a Maven local repository"
        )
    return Environment(
        kind="maven",
        key="m2",
        path=repo,
        description=f"maven local repository {repo} (read-only; offline)",
        reused=True,
        env={
            "MAVEN_OPTS": f"-Dmaven.repo.local={repo}",
            # every JVM (Maven's and Surefire's forks) within the sandbox's address-space
            # limit: by default a JVM reserves more than 2 GiB before it runs anything
            "JAVA_TOOL_OPTIONS": _JVM_OPTIONS,
        },
        binds=(repo,),
    )
