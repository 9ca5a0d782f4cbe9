"""`import debugtrace` stays light: no backend library loads until a backend is used."""

from __future__ import annotations

import json
import subprocess
import sys

import debugtrace

HEAVY = [
    "sqlalchemy",
    "alembic",
    "docker",
    "openai",
    "git",
    "fastapi",
    "uvicorn",
    "psycopg",
    "rich",
]


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(json.loads(out))


def test_import_debugtrace_imports_no_backend_library() -> None:
    loaded = modules_after("import debugtrace")
    assert not [m for m in HEAVY if m in loaded]


def test_building_models_imports_no_backend_library() -> None:
    loaded = modules_after(
        "import debugtrace\n"
        "t = debugtrace.parse_trace({'developer_id': 'd', 'repo_url': 'r', 'bug_description': 'b'})"
    )
    assert not [m for m in HEAVY if m in loaded]


def test_cli_help_imports_no_backend_library() -> None:
    loaded = modules_after(
        "import contextlib, io\n"
        "from debugtrace.cli import build_parser\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    build_parser().format_help()"
    )
    assert not [m for m in [*HEAVY, "pydantic"] if m in loaded]


def test_public_api_is_exactly_all() -> None:
    for name in debugtrace.__all__:
        assert getattr(debugtrace, name) is not None
    assert "Collector" in dir(debugtrace)


def test_all_lists_exactly_the_lazy_names() -> None:
    assert set(debugtrace.__all__) == {"__version__", *debugtrace._LAZY}
