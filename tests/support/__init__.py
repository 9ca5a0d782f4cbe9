"""Helpers shared by the tests (importable as ``support.*``: ``pythonpath = ["tests"]``)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
"""The ``tests/`` folder."""
ROOT = TESTS.parent
"""The repository's root."""
DATA = TESTS / "data"
"""Fixtures: real files with their source and licence."""
