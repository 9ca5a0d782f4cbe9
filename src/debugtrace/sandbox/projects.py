"""Project detection: Python (first-class), Node, Go, Rust, Maven and make projects.

Registered as the built-in ``detect_project`` hook by ``default_plugins/projects.py``; plugins that
know other project types answer first.

A Python project runs under pytest (which also runs unittest test cases), with a JUnit report and
``--continue-on-collection-errors`` so a test file that cannot be imported is reported as such
rather than stopping the run; a project whose tox.ini or setup.cfg runs ``python -m unittest``
and has no pytest configuration runs under unittest, with the discovery options it names. Its
dependency files (pyproject, setup.cfg/py, tox.ini, every ``*requirements*.txt`` at the top or in
the test folders, every ``requirements/*.txt``) decide its test environment.
"""

from __future__ import annotations

import re
from pathlib import Path

from debugtrace.sandbox import ProjectSpec
from debugtrace.sandbox.files import read_small
from debugtrace.sandbox.node_projects import detect_node

PYTEST = (
    "{python}",
    "-m",
    "pytest",
    "-q",
    "-p",
    "no:cacheprovider",
    "--continue-on-collection-errors",
    "--junitxml={junit}",
    "-o",
    "junit_family=xunit1",
)
UNITTEST = ("{python}", "-m", "unittest", "discover", "-v")
_DEPENDENCY_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "tox.ini")
_REQUIREMENTS_HOMES = (".", "requirements", "tests", "test")
_UNITTEST_OPTIONS = {"-s", "-p", "-t", "--start-directory", "--pattern", "--top-level-directory"}


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
        text = read_small(path, name)
        if text is not None and re.search(r"^test\s*:", text, re.M):
            return True
    return False


def _python_dependency_files(path: Path) -> tuple[str, ...]:
    found = [n for n in _DEPENDENCY_FILES if (path / n).is_file()]
    for home in _REQUIREMENTS_HOMES:
        folder = path / home
        if folder.is_dir() and not folder.is_symlink():
            pattern = "*.txt" if home == "requirements" else "*requirements*.txt"
            names = sorted(f.name for f in folder.glob(pattern))[:20]
            found += [n if home == "." else f"{home}/{n}" for n in names]
    return tuple(found)


def _uses_pytest(path: Path) -> bool:
    """Whether the project uses pytest (then pytest runs it, whatever else it says): a
    pytest.ini or conftest.py, or pytest named in its configuration (``[tool.pytest...]``,
    ``[tool:pytest]``, ``[pytest]``, a dependency, a command)."""
    if (path / "pytest.ini").is_file() or (path / "conftest.py").is_file():
        return True
    for name in ("tox.ini", "setup.cfg", "pyproject.toml"):
        text = read_small(path, name)
        if text is not None and re.search(r"\bpytest\b", text):
            return True
    return False


def _unittest_command(path: Path) -> tuple[str, ...] | None:
    """The unittest discovery tox.ini or setup.cfg asks for (``python -m unittest ...``),
    keeping only discovery options with plain relative values; None when neither says so."""
    import shlex

    for name in ("tox.ini", "setup.cfg"):
        text = read_small(path, name) or ""
        # `python -m unittest ...`, `coverage run --source=x -m unittest ...`
        m = re.search(r"^[^#\n]*\s-m\s+unittest\b([^\n]*)", text, re.M)
        if m is None:
            if name == "setup.cfg" and re.search(r"^\s*test_suite\s*=", text, re.M):
                return UNITTEST
            continue
        try:
            words = shlex.split(m.group(1))
        except ValueError:
            return UNITTEST
        args: list[str] = []
        if words[:1] == ["discover"]:
            words = [w.replace("{toxinidir}/", "") for w in words[1:]]
            positional = ["-s", "-p", "-t"]  # discover [start [pattern [top]]]
            while words:
                if words[0] in _UNITTEST_OPTIONS and len(words) >= 2:
                    option, value, words = words[0], words[1], words[2:]
                elif not words[0].startswith("-") and positional:
                    option, value, words = positional[0], words[0], words[1:]
                else:
                    words = words[1:]
                    continue
                if option in positional:
                    positional.remove(option)
                if re.fullmatch(r"[\w*.?\[\]-]+(/[\w*.?\[\]-]+)*", value) and ".." not in value:
                    args += [option, value]
        return (*UNITTEST, *args)
    return None


def detect_project(path: Path) -> ProjectSpec | None:
    """Detect the project type from marker files; returns None when nothing matches."""
    if _is_python(path):
        deps = _python_dependency_files(path)
        unittest = None if _uses_pytest(path) else _unittest_command(path)
        if unittest is not None:
            return ProjectSpec(
                kind="python",
                test_command=unittest,
                report_format="unittest",
                dependency_files=deps,
            )
        return ProjectSpec(
            kind="python", test_command=PYTEST, report_format="junit", dependency_files=deps
        )
    node = detect_node(path)
    if node is not None:
        return node
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
            test_command=("cargo", "test", "--offline", "--no-fail-fast"),
            report_format="libtest",
            dependency_files=("Cargo.toml",),
        )
    if (path / "pom.xml").is_file():
        # offline (-o): tests run without network, so plugins and dependencies must be in the
        # local repository; every module runs even when one fails; Surefire's reports are read
        return ProjectSpec(
            kind="maven",
            test_command=("mvn", "-q", "-B", "-o", "-Dmaven.test.failure.ignore=true", "test"),
            report_format="surefire",
            dependency_files=("pom.xml",),
        )
    if _has_make_test(path):
        return ProjectSpec(kind="make", test_command=("make", "test"))
    return None
