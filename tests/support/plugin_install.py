"""Install a plugin distribution from plugins/ the way a user would, into a folder of its own.

The wheel is built from source and installed with ``pip --target``, so the test venv stays as it
was; tests put the folder on ``sys.path`` (or ``PYTHONPATH`` for subprocesses) to find the entry
point.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from support import ROOT
from support.services import require

PLUGINS = ROOT / "plugins"


def install_plugin(target: Path, name: str, module: str, needs: str, needs_spec: str) -> Path:
    """Install ``plugins/<name>`` into ``target``; returns ``target``.

    ``needs`` is the import name of its main dependency (``needs_spec`` its pip requirement): CI
    installs it with the plugin; local runs try to install it once, else the test is skipped (or
    failed in CI) naming it.
    """
    if importlib.util.find_spec(needs) is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", needs_spec],
            capture_output=True,
            check=False,
        )
        importlib.invalidate_caches()
        if importlib.util.find_spec(needs) is None:
            require(needs, f"`pip install '{needs_spec}'` failed (see .ci/run)")
    # Without hatchling in the venv pip fetches it into an isolated build environment (~10 s).
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            *isolation,
            "--target",
            str(target),
            str(PLUGINS / name),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        require(f"pip install ./plugins/{name}", proc.stderr.strip()[-500:])
    assert (target / module / "__init__.py").exists()
    return target
