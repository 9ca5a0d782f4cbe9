"""Finalize: prove whether a trace's fix works, and grade the debugging.

One finalize is four stages, each stored as it ends (a crash later keeps what came before):

- ``workspace`` (:mod:`.workspace`): clone into a cache of bare mirrors, check out the base commit;
- ``apply`` (:mod:`.patching`): apply each edit, paths checked, ``git apply`` then fallbacks;
- ``tests`` (:mod:`.testresults`): run the tests before and after in a sandbox, classify every test;
- ``grade``: each configured grader scores the debugging.

:mod:`.pipeline` runs them. It needs only what :class:`FinalizeHost` names (the Collector is one),
so this package never imports a front end or the Collector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from debugtrace.config import Settings
    from debugtrace.ingest.redact import Redactor
    from debugtrace.plugins import Plugins
    from debugtrace.storage import Storage

__all__ = ["FinalizeHost", "FinalizeOptions"]


class FinalizeHost(Protocol):
    """What the pipeline needs: settings, the storage it reads and writes, the plugins it asks for
    a sandbox, project detection and graders, and the redactor every stored log and message goes
    through (the one that redacts incoming traces; None when redaction is off)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def storage(self) -> Storage: ...

    @property
    def plugins(self) -> Plugins: ...

    @property
    def redactor(self) -> Redactor | None: ...


@dataclass(frozen=True)
class FinalizeOptions:
    """Knobs of one finalize run (defaults come from the settings)."""

    repeat: int | None = None
    """Test runs on each side; more than one marks tests whose outcome changes as flaky."""
    per_edit: bool = False
    """Also apply the edits one by one and record which edit turned each test green."""
    test_command: str | None = None
    """Override the detected test command (split like a shell command line)."""
    force: bool = False
    """Run even when the trace looks like it is being finalized already (after a crash)."""
    test_patch: str | None = None
    """Held-out tests (a unified diff of test files) applied to both runs, as in SWE-bench;
    default: the trace's ``held_out.test_patch``."""
    fail_to_pass: tuple[str, ...] | None = None
    """Test ids that must go from failing to passing for the fix to count as validated;
    default: the trace's ``held_out.fail_to_pass``."""
