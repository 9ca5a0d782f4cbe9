"""Project detection: Python (first-class), Node, Go, Rust, Maven and make projects.

Registered as the built-in ``detect_project`` hook by ``default_plugins/projects.py``; plugins that
know other project types answer first.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from debugtrace.sandbox import ProjectSpec

PYTEST = (
    "{python}",
    "-m",
    "pytest",
    "-q",
    "-p",
    "no:cacheprovider",
    "--junitxml={junit}",
    "-o",
    "junit_family=xunit1",
)
UNITTEST = ("{python}", "-m", "unittest", "discover", "-v")
MAX_MARKER_BYTES = 1024**2
"""Largest ``package.json`` or Makefile read to detect a project."""


def _read_small(root: Path, name: str) -> str | None:
    """The text of ``root/name`` if it is a regular file inside ``root`` (after resolving
    symlinks) of at most :data:`MAX_MARKER_BYTES`, else None: a repository's ``Makefile`` may
    link to ``/dev/zero`` or a host file, and is read on the host."""
    try:
        base = root.resolve()
        real = (base / name).resolve(strict=True)
        if not real.is_relative_to(base):
            return None
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, RuntimeError):
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read(MAX_MARKER_BYTES + 1)
    return data.decode("utf-8", "replace") if len(data) <= MAX_MARKER_BYTES else None


def _is_python(path: Path) -> bool:
    markers = ("pyproject.toml", "setup.py", "setup.cfg", "pytest.ini", "tox.ini", "conftest.py")
    if any((path / m).exists() for m in markers):
        return True
    for folder in (path, path / "tests", path / "test"):
        if folder.is_dir() and (any(folder.glob("test_*.py")) or any(folder.glob("*_test.py"))):
            return True
    return False


def _has_make_test(path: Path) -> bool:
    for name in ("Makefile", "makefile", "GNUmakefile"):
        text = _read_small(path, name)
        if text is not None and re.search(r"^test\s*:", text, re.M):
            return True
    return False


def detect_project(path: Path) -> ProjectSpec | None:
    """Detect the project type from marker files; returns None when nothing matches."""
    if _is_python(path):
        deps = tuple(
            n
            for n in (
                "requirements.txt",
                "requirements-dev.txt",
                "pyproject.toml",
                "setup.py",
                "setup.cfg",
            )
            if (path / n).exists()
        )
        return ProjectSpec(
            kind="python",
            test_command=PYTEST,
            report_format="junit",
            fallback_command=UNITTEST,
            fallback_format="unittest",
            dependency_files=deps,
        )
    pkg = _read_small(path, "package.json")
    if pkg is not None:
        try:
            data = json.loads(pkg)
        except (ValueError, RecursionError):
            data = {}
        scripts = data.get("scripts") if isinstance(data, dict) else None
        if isinstance(scripts, dict) and "test" in scripts:
            return ProjectSpec(
                kind="node",
                test_command=("npm", "test", "--silent"),
                dependency_files=tuple(
                    n for n in ("package.json", "package-lock.json") if (path / n).exists()
                ),
            )
    if (path / "go.mod").is_file():
        return ProjectSpec(
            kind="go",
            test_command=("go", "test", "-json", "./..."),
            report_format="go-json",
            dependency_files=("go.mod",),
        )
    if (path / "Cargo.toml").is_file():
        return ProjectSpec(
            kind="rust",
            test_command=("cargo", "test"),
            report_format="libtest",
            dependency_files=("Cargo.toml",),
        )
    if (path / "pom.xml").is_file():
        return ProjectSpec(
            kind="maven", test_command=("mvn", "-q", "-B", "test"), dependency_files=("pom.xml",)
        )
    if _has_make_test(path):
        return ProjectSpec(kind="make", test_command=("make", "test"))
    return None
