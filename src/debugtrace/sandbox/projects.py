"""Project detection: Python (first-class), Node, Go, Rust, Maven and make projects.

Registered as the built-in ``detect_project`` hook by ``default_plugins/projects.py``; plugins that
know other project types answer first.
"""

from __future__ import annotations

import json
import re
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
        f = path / name
        if f.is_file() and re.search(r"^test\s*:", f.read_text(errors="replace"), re.M):
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
    pkg = path / "package.json"
    if pkg.is_file():
        try:
            scripts = json.loads(pkg.read_text()).get("scripts", {})
        except ValueError:
            scripts = {}
        if "test" in scripts:
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
