"""Developer and CI sessions. `.ci/run` runs the same checks in one venv; these give each its own.

nox            # lint, typecheck, tests
nox -s tests -- -k storage
"""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite (needs PostgreSQL; scripts/services.sh starts it)."""
    session.install("-e", ".[all,dev]")
    session.run("python", "-m", "pytest", *(session.posargs or ["-n", "auto"]))


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", "src", "bench", "tests", "docs/gen.py", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[all,dev]")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Regenerate the reference pages (hooks, configuration) from the code."""
    session.install("-e", ".")
    session.run("python", "docs/gen.py")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmarks and print ratios against their baselines."""
    session.install("-e", ".[all,dev]")
    session.run("python", "bench/ingest.py")
    session.run("python", "bench/startup.py")
