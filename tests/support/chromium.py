"""How headless Chromium is started here, for every browser test: the dashboard's Playwright
tests (``support.browser``) and the VS Code end-to-end run (``editors/vscode/e2e/run_e2e.py``,
which imports this file by path: it runs outside pytest). No dependencies, so both can.

Flags for headless Chromium as root in a container (``../shared/NOTES.md``). Playwright makes
and removes its own temporary profile (``--user-data-dir`` is not allowed in ``launch``).
"""

from __future__ import annotations

__all__ = ["CHROMIUM", "CHROMIUM_ARGS"]

CHROMIUM = "/usr/bin/chromium"
"""Debian's Chromium (never ``playwright install``: it downloads a browser)."""

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
