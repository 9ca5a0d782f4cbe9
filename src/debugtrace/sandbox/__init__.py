"""The sandbox contract: where a trace's tests run, isolated from the host.

A sandbox runs commands in a prepared copy of a worktree. ``debugtrace.testing.SandboxContract``
runs the same behaviour tests against every backend (``local``, ``docker``, a plugin's).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from debugtrace.errors import SandboxError

if TYPE_CHECKING:
    from debugtrace.environments import Environment

__all__ = [
    "DEFAULT_FETCH_BYTES",
    "ProjectSpec",
    "ResourceLimits",
    "RunResult",
    "Sandbox",
    "SandboxError",
    "SandboxHandle",
    "fetch_note",
    "omitted_notes",
]

DEFAULT_FETCH_BYTES = 16 * 1024**2
"""Largest file a sandbox returns in ``RunResult.files`` unless configured otherwise
(``DEBUGTRACE_SANDBOX_FETCH_BYTES``): a report is read into the server's memory."""


@dataclass(frozen=True)
class ResourceLimits:
    """What one command may use. ``None`` leaves a resource unlimited."""

    timeout_s: float = 900.0
    """Wall time; on expiry everything the command started is killed."""
    memory_bytes: int | None = 2 * 1024**3
    cpu_s: int | None = 1800
    file_size_bytes: int | None = 1024**3
    """Largest file the command may write."""
    processes: int | None = 512
    output_bytes: int = 256 * 1024
    """Output kept per command (head and tail); the rest is counted, not stored."""
    network: bool = False
    """Whether the command may reach the network (off by default)."""


@dataclass(frozen=True)
class ProjectSpec:
    """What ``detect_project`` found: the project type, how to set it up and how to test it."""

    kind: str
    """python, node, go, rust, maven, make, ... (free text for plugins)."""
    test_command: tuple[str, ...]
    """argv of the test run, run in the worktree root; ``{junit}`` is replaced by a report path."""
    report_format: str | None = None
    """How per-test results are read: ``junit`` (XML written to ``{junit}``); a JSON report
    written to ``{report}`` (``node-test``, ``jest``, ``mocha``, ``vitest``); from the output
    (``unittest``, ``libtest``, ``go-json``); None for pass/fail of the whole run by exit code."""
    setup_commands: tuple[tuple[str, ...], ...] = ()
    """Commands run once before the tests (with network only where the sandbox allows it)."""
    dependency_files: tuple[str, ...] = ()
    """Files whose content decides the environment (requirements, lock files), for image caching."""
    env: Mapping[str, str] = field(default_factory=dict)
    support_files: Mapping[str, bytes] = field(default_factory=dict)
    """Files finalize writes into the worktree before the runs (a test reporter the command
    names), by worktree-relative name."""
    environment: Environment | None = None
    """The project's test environment (:mod:`debugtrace.environments`), set by finalize; a
    sandbox puts its interpreter, ``PATH``, variables, binds and links to use."""


@dataclass
class RunResult:
    """What one command did inside the sandbox."""

    exit_code: int | None
    """None when the sandbox stopped it before it exited: the timeout (``timed_out``) or another
    limit (``limit_hit``)."""
    output: str
    """Combined stdout and stderr, head and tail kept within ``output_bytes``."""
    duration_s: float
    timed_out: bool = False
    output_bytes: int = 0
    """How much it printed in all (the kept ``output`` may be shorter)."""
    files: dict[str, bytes] = field(default_factory=dict)
    """Files fetched after the run (e.g. the JUnit report), by path relative to the worktree."""
    files_omitted: dict[str, str] = field(default_factory=dict)
    """Files asked for that exist but were not returned, with why (e.g. larger than the fetch
    limit, not a regular file); a missing file is simply absent from both."""
    limit_hit: str | None = None
    """The limit that made the sandbox stop the command early, other than the timeout (e.g.
    ``disk``: the tests grew the worktree beyond its allowance); a note is added to ``output``."""


def fetch_note(size: int, limit: int) -> str:
    """The ``files_omitted`` reason for a file larger than the fetch limit."""
    return f"{size} bytes, more than the {limit}-byte limit (DEBUGTRACE_SANDBOX_FETCH_BYTES)"


def omitted_notes(omitted: Mapping[str, str]) -> str:
    """The lines a sandbox adds to a run's output for the files it did not fetch (one each)."""
    return "".join(
        f"\n[debugtrace sandbox: {name} not fetched: {why}]\n" for name, why in omitted.items()
    )


@dataclass
class SandboxHandle:
    """A prepared sandbox for one worktree; backends keep their state in ``state``."""

    worktree: Path
    project: ProjectSpec
    state: dict[str, Any] = field(default_factory=dict)


class Sandbox(ABC):
    """Runs commands for one worktree at a time, isolated from the host. Always ``close`` it."""

    name: str = ""
    isolates_runs: bool = False
    """Whether two runs at once cannot see each other (own network, processes, files): then
    finalize runs the before and after tests in parallel."""
    progress: Callable[[str], None] | None = None
    """Where long preparations (an image build) report what they do; finalize sets it to
    its stage log. A handle's ``state["note"]``, if set, is logged with each run."""
    python: str = "python3"
    """How to start Python inside this sandbox (``{python}`` in test commands)."""

    def python_for(self, project: ProjectSpec) -> str:
        """The interpreter ``{python}`` names for ``project``: its environment's, else
        :attr:`python`."""
        env = project.environment
        return env.python if env is not None and env.python else self.python

    def unavailable(self) -> str | None:
        """Why this sandbox cannot run here (e.g. no engine answers), or None when it can."""
        return None

    @abstractmethod
    def prepare(self, worktree: Path, project: ProjectSpec) -> SandboxHandle:
        """Get ready to run commands on ``worktree`` (build or find an image, copy files, ...).

        Returns the handle to pass to :meth:`run` and :meth:`close`. Raises :class:`SandboxError`
        with what to do when the sandbox cannot be used (e.g. which image to build and how).
        """

    @abstractmethod
    def run(
        self,
        handle: SandboxHandle,
        argv: Sequence[str],
        limits: ResourceLimits,
        *,
        fetch: Sequence[str] = (),
    ) -> RunResult:
        """Run ``argv`` in the worktree (as its current directory) within ``limits``.

        Never runs through a shell. ``fetch`` names files (relative to the worktree) to return in
        ``RunResult.files`` when they exist after the run. Returns the result; a command that fails
        or times out is a result, not an exception.
        """

    @abstractmethod
    def close(self, handle: SandboxHandle) -> None:
        """Release what prepare and run made (processes, containers, volumes); idempotent."""

    def sync_back(self, handle: SandboxHandle) -> None:  # noqa: B027 - optional
        """Copy changes made inside the sandbox back to the worktree (default: nothing to do)."""
