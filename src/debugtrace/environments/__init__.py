"""Per-project test environments: built once on the host, reused, used by every sandbox.

A project's tests run in *its* environment, never debugtrace's own: for Python a virtual
environment with the project's runtime and test dependencies, pytest and the project's own pytest
plugins, the checkout first on ``sys.path``; for Node the ``node_modules`` its lockfile names.

- **Built on the host, offline afterwards.** Downloads happen here (uv or pip, npm) from the
  host's index settings; the tests then run without network. Dependency files are untrusted data:
  only requirement specifiers reach the installers, and nothing of the project runs on the host
  (wheels only for Python, ``--ignore-scripts`` for npm).
- **Cached by content.** An environment's key hashes the recipe, the interpreter or runtime and
  what the dependency files declare; a second finalize of the same project reuses it (a folder
  under ``<data_dir>/envs``, made under a file lock, valid once its ``complete`` marker exists).
- **The same for both sandboxes.** The local sandbox binds the environment read-only (the folders
  in :attr:`Environment.binds`); the docker sandbox builds an image with the same pinned
  packages (:attr:`Environment.pins`) and copies the links' targets in.

``debugtrace.environments.build.build_environment`` is the entry point; it raises
:class:`EnvBuildError` (the fix is then "could not test", with the reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from debugtrace.errors import EnvBuildError

__all__ = ["EnvBuildError", "Environment", "Progress"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Environment:
    """A built (or reused) test environment and how a sandbox puts it to use."""

    kind: str
    """``python`` or ``node``."""
    key: str
    """Hash of what went into it; the folder name under ``<data_dir>/envs/<kind>``."""
    path: Path
    """Its folder on the host."""
    description: str
    """One line for people: interpreter or runtime, key, built or reused, package count."""
    reused: bool = False
    """Whether it was already built (no install ran)."""
    python: str | None = None
    """The interpreter tests run with (``{python}`` in test commands), a path on the host."""
    python_version: str | None = None
    """``major.minor`` of that interpreter (the docker sandbox builds its image for it)."""
    bin_dirs: tuple[str, ...] = ()
    """Folders put first on ``PATH`` (the venv's ``bin``, ``{workspace}/node_modules/.bin``)."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables of every test run (``PYTHONPATH`` with the checkout first, ...). A value may
    hold ``{workspace}``: the sandbox puts the worktree's path there as the command sees it."""
    binds: tuple[Path, ...] = ()
    """Host folders the command must see read-only at the same path (the environment, the
    interpreter's installation)."""
    links: Mapping[str, Path] = field(default_factory=dict)
    """Worktree-relative names to make point at a folder of the environment (``node_modules``):
    a symlink in the local sandbox, a copy in the docker sandbox."""
    pins: tuple[str, ...] = ()
    """``name==version`` of every package installed (Python), so another sandbox can install
    exactly the same."""
