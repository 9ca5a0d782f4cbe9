"""The finalize pipeline: workspace -> apply edits -> tests before/after -> grade -> store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import DebugtraceError

if TYPE_CHECKING:
    from .collector import Collector
    from .model import Trace


def finalize(collector: Collector, trace_id: str) -> Trace:
    """Run every stage on the stored trace and store what each found; returns the trace."""
    collector.get(trace_id)  # unknown ids fail the same way as everywhere else
    raise FinalizeUnavailable(
        "finalize is not available in this version yet; the trace is stored and can be "
        "finalized once the pipeline ships"
    )


class FinalizeUnavailable(DebugtraceError, NotImplementedError):
    """This build has no finalize pipeline yet."""
