"""The docs cannot go stale: generated pages match the code; every hook and setting is listed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from debugtrace import hookspecs
from debugtrace.config import Limits, Settings

DOCS = Path(__file__).parent.parent / "docs"


def test_generated_reference_pages_are_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(DOCS / "gen.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_every_hook_is_documented() -> None:
    text = (DOCS / "hooks.md").read_text()
    for name in dir(hookspecs):
        fn = getattr(hookspecs, name)
        if hasattr(fn, "debugtrace_spec"):
            assert f"## `{name}(" in text
            assert fn.__doc__ and "Returns" in fn.__doc__, f"{name} must say what it returns"


def test_every_setting_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name in [*Settings.model_fields, *Limits.model_fields]:
        if name != "limits":
            assert f"DEBUGTRACE_{name.upper()}" in text


def test_readme_links_point_to_existing_pages() -> None:
    readme = (DOCS.parent / "README.md").read_text()
    for part in readme.split("](docs/")[1:]:
        assert (DOCS / part.split(")")[0].split("#")[0]).exists()
