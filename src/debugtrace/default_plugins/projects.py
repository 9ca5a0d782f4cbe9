"""Built-in ``detect_project``: marker files, after every plugin's own detection."""

from __future__ import annotations

from pathlib import Path

from debugtrace.hookspecs import hookimpl
from debugtrace.sandbox import ProjectSpec
from debugtrace.sandbox.projects import detect_project as _detect


@hookimpl(trylast=True)
def detect_project(path: Path) -> ProjectSpec | None:
    """Python, Node, Go, Rust, Maven or make, from marker files; None when nothing matches."""
    return _detect(path)
