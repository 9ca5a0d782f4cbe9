"""Built-in sandbox ``local``: a contained subprocess (bwrap, rlimits, timeout, scrubbed env)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from debugtrace.hookspecs import hookimpl

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.registry import Register
    from debugtrace.sandbox import Sandbox


def _local(settings: Settings) -> Sandbox:
    from debugtrace.sandbox.local import LocalSandbox

    return LocalSandbox(settings)


@hookimpl
def register_sandboxes(register: Register) -> None:
    """Register ``local``."""
    register(
        "local",
        _local,
        description="subprocess in the worktree: timeout, rlimits, scrubbed env; with bubblewrap "
        "also no network and a read-only system",
    )
