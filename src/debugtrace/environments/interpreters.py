"""The Python interpreters this machine has, and the one a project's ``requires-python`` picks.

The choice: ``DEBUGTRACE_PYTHON`` when set (a path or a command name); else debugtrace's own
base interpreter when the project allows its version (no other interpreter is even asked);
else the newest one found that it allows. Looked for: ``python3.N`` and ``python3`` on
``PATH``, ``/usr/bin``, ``/usr/local/bin``, pyenv's and uv's installations.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from debugtrace.errors import EnvBuildError

__all__ = ["Interpreter", "choose_interpreter", "find_interpreters"]

_PROBE = (
    "import json, sys; print(json.dumps([list(sys.version_info[:3]), sys.base_prefix, "
    "sys.implementation.name, getattr(sys, '_base_executable', sys.executable)]))"
)


@dataclass(frozen=True)
class Interpreter:
    """One CPython installation."""

    path: str
    """Its executable (not a virtual environment's)."""
    version: tuple[int, int, int]
    prefix: str
    """Its installation folder (``sys.base_prefix``): what a sandbox must show read-only."""

    @property
    def short(self) -> str:
        """``3.11``."""
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def full(self) -> str:
        """``3.11.7``."""
        return ".".join(map(str, self.version))


def _probe(path: str) -> Interpreter | None:
    """Ask ``path`` what it is; None when it is no working CPython 3."""
    try:
        proc = subprocess.run(
            [path, "-I", "-S", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=20,
            stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        )
        version, prefix, impl, executable = json.loads(proc.stdout)
    except (OSError, subprocess.SubprocessError, ValueError, TypeError):
        return None
    if impl != "cpython" or version[0] != 3:
        return None
    base = executable if isinstance(executable, str) and os.path.isfile(executable) else path
    return Interpreter(str(Path(base).absolute()), (version[0], version[1], version[2]), prefix)


@functools.cache
def _probe_cached(path: str, mtime: float) -> Interpreter | None:
    return _probe(path)


def probe(path: str) -> Interpreter | None:
    """:func:`_probe` once per executable (and modification time) per process."""
    try:
        real = os.path.realpath(path)
        return _probe_cached(real, os.stat(real).st_mtime)
    except OSError:
        return None


def own_interpreter() -> Interpreter:
    """debugtrace's own Python's base installation (never its virtual environment)."""
    base = getattr(sys, "_base_executable", sys.executable)
    v = sys.version_info
    return Interpreter(str(Path(base).absolute()), (v.major, v.minor, v.micro), sys.base_prefix)


def _candidates() -> list[str]:
    found: list[str] = []
    names = ["python3"] + [f"python3.{minor}" for minor in range(8, 16)]
    for name in names:
        where = shutil.which(name)
        if where:
            found.append(where)
    patterns = [
        "/usr/bin/python3.*",
        "/usr/local/bin/python3.*",
        os.path.expanduser("~/.pyenv/versions/*/bin/python3"),
        os.path.expanduser("~/.local/share/uv/python/*/bin/python3"),
        "/opt/python/*/bin/python3",
    ]
    for pattern in patterns:
        found += sorted(glob.glob(pattern))
    exact = [p for p in found if Path(p).name.replace(".", "").replace("python", "").isdigit()]
    return list(dict.fromkeys(p for p in exact + found if os.access(p, os.X_OK)))


def find_interpreters() -> list[Interpreter]:
    """Every CPython 3 installation found, newest first, one per version and installation."""
    seen: dict[tuple[tuple[int, int, int], str], Interpreter] = {}
    for path in _candidates():
        found = probe(path)
        if found is not None:
            seen.setdefault((found.version, found.prefix), found)
    return sorted(seen.values(), key=lambda i: i.version, reverse=True)


def _allows(spec: str | None, interp: Interpreter) -> bool:
    if not spec:
        return True
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(spec).contains(interp.full, prereleases=True)
    except InvalidSpecifier:
        return True  # an unreadable requires-python does not narrow the choice


def choose_interpreter(requires_python: str | None, configured: str | None = None) -> Interpreter:
    """The interpreter for a project whose ``requires-python`` is ``requires_python``.

    ``configured`` (``DEBUGTRACE_PYTHON``) wins when set. Raises :class:`EnvBuildError` naming
    the versions found when none fits.
    """
    if configured:
        path = shutil.which(configured) or configured
        chosen = probe(path)
        if chosen is None:
            raise EnvBuildError(
                f"DEBUGTRACE_PYTHON={configured!r} is not a working CPython 3 interpreter"
            )
        return chosen
    own = own_interpreter()
    if _allows(requires_python, own):
        return own
    found = find_interpreters()
    for interp in found:
        if _allows(requires_python, interp):
            return interp
    have = ", ".join(sorted({i.full for i in found})) or "none"
    raise EnvBuildError(
        f"no Python on this machine fits requires-python {requires_python!r} (found: {have}); "
        "install one (e.g. `uv python install 3.X`) or set DEBUGTRACE_PYTHON"
    )
