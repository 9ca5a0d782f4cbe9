"""debugtrace: capture whole debugging sessions, validate each fix in a sandbox, grade the
reasoning.

The public API is what ``__all__`` lists. Names load on first use, so ``import debugtrace`` stays
cheap (no database, container or LLM library is imported until a backend is used).
"""

from __future__ import annotations

import importlib

# Not `from typing import TYPE_CHECKING`: importing typing alone would triple this module's cost.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from debugtrace.capture.recorder import Recorder
    from debugtrace.collector import Collector
    from debugtrace.config import Limits, Settings
    from debugtrace.errors import (
        DebugtraceError,
        InvalidTrace,
        StorageError,
        TraceNotFound,
        UnknownBackend,
    )
    from debugtrace.hookspecs import hookimpl
    from debugtrace.ingest import parse_events, parse_trace
    from debugtrace.model import CommandEvent, EditEvent, Event, ReasoningEvent, Trace
    from debugtrace.results import EditResult, Grade, Stage, TraceResult, Validation
    from debugtrace.storage import ExportQuery, Storage, TracePage, TraceQuery, TraceSummary

__version__ = "0.1.0"

_LAZY = {
    "hookimpl": "hookspecs",
    "Collector": "collector",
    "Recorder": "capture.recorder",
    "Settings": "config",
    "Limits": "config",
    "Trace": "model",
    "Event": "model",
    "ReasoningEvent": "model",
    "CommandEvent": "model",
    "EditEvent": "model",
    "TraceResult": "results",
    "Stage": "results",
    "EditResult": "results",
    "Validation": "results",
    "Grade": "results",
    "Storage": "storage",
    "ExportQuery": "storage",
    "TraceQuery": "storage",
    "TracePage": "storage",
    "TraceSummary": "storage",
    "parse_trace": "ingest",
    "parse_events": "ingest",
    "DebugtraceError": "errors",
    "InvalidTrace": "errors",
    "StorageError": "errors",
    "TraceNotFound": "errors",
    "UnknownBackend": "errors",
}

# Spelled out (not built from _LAZY) so type checkers see the exports.
__all__ = [
    "Collector",
    "CommandEvent",
    "DebugtraceError",
    "EditEvent",
    "EditResult",
    "Event",
    "ExportQuery",
    "Grade",
    "InvalidTrace",
    "Limits",
    "ReasoningEvent",
    "Recorder",
    "Settings",
    "Stage",
    "Storage",
    "StorageError",
    "Trace",
    "TraceNotFound",
    "TracePage",
    "TraceQuery",
    "TraceResult",
    "TraceSummary",
    "UnknownBackend",
    "Validation",
    "__version__",
    "hookimpl",
    "parse_events",
    "parse_trace",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'debugtrace' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
