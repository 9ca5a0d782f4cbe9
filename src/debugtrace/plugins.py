"""The plugin manager: built-ins plus entry-point plugins, loaded lazily, wrapped in typed calls.

Nothing here runs at import time. :func:`plugin_manager` builds a manager on demand;
:class:`Plugins` is the only thing the core, CLI and HTTP code use to reach hooks (they never call
``pm.hook``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from debugtrace import hookspecs
from debugtrace.errors import UnknownBackend
from debugtrace.registry import BackendInfo, Kind

if TYPE_CHECKING:
    from pathlib import Path

    from debugtrace.config import Settings
    from debugtrace.ingest.redact import Finding
    from debugtrace.model import Event, Trace
    from debugtrace.sandbox import ProjectSpec

__all__ = ["DEFAULT_PLUGINS", "ENTRY_POINT_GROUP", "Plugins", "plugin_manager"]

ENTRY_POINT_GROUP = "debugtrace"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "debugtrace.default_plugins.sql_storage",
    "debugtrace.default_plugins.local_sandbox",
    "debugtrace.default_plugins.docker_sandbox",
    "debugtrace.default_plugins.projects",
    "debugtrace.default_plugins.openai_grader",
    "debugtrace.default_plugins.heuristic_grader",
    "debugtrace.default_plugins.local_executor",
)
"""Built-in backends, registered through the same ``pm.register`` path as any other plugin."""

_HOOK_OF_KIND: dict[Kind, str] = {
    "storage": "register_storage",
    "sandbox": "register_sandboxes",
    "grader": "register_graders",
    "executor": "register_executors",
}


def plugin_manager(settings: Settings) -> pluggy.PluginManager:
    """Build a validated plugin manager with the built-ins and the allowed entry-point plugins.

    ``DEBUGTRACE_LOAD_PLUGINS`` (comma-separated entry-point names; empty = none) restricts which
    installed plugins load; ``DEBUGTRACE_DISABLE_PLUGINS`` blocks names, built-ins included (their
    names are the module's last part, e.g. ``sql_storage``). Returns the manager.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    disabled = set(settings.names(settings.disable_plugins))
    for name in disabled:
        pm.set_blocked(name)
    for modname in DEFAULT_PLUGINS:
        short = modname.rsplit(".", 1)[-1]
        if short not in disabled:
            pm.register(importlib.import_module(modname), name=short)
    allowed = None if settings.load_plugins is None else set(settings.names(settings.load_plugins))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if (allowed is None or ep.name in allowed) and ep.name not in disabled:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
    pm.check_pending()
    return pm


class Plugins:
    """Typed access to the hooks of one plugin manager."""

    def __init__(self, settings: Settings, pm: pluggy.PluginManager | None = None) -> None:
        self.settings = settings
        self.pm = pm if pm is not None else plugin_manager(settings)
        self._backends: dict[Kind, dict[str, BackendInfo]] = {}

    def backends(self, kind: Kind) -> dict[str, BackendInfo]:
        """Every registered backend of ``kind`` by name (calls the ``register_*`` hook once)."""
        if kind not in self._backends:
            found: dict[str, BackendInfo] = {}

            def register(
                name: str,
                factory: Callable[[Settings], Any],
                *,
                requires: Sequence[str] = (),
                description: str = "",
                install_hint: str = "",
            ) -> None:
                # Later registrations (entry points load after built-ins) win, so a plugin can
                # replace a built-in backend by registering the same name.
                found[name] = BackendInfo(
                    kind, name, factory, tuple(requires), description, install_hint
                )

            getattr(self.pm.hook, _HOOK_OF_KIND[kind])(register=register)
            self._backends[kind] = found
        return self._backends[kind]

    def create(self, kind: Kind, name: str) -> Any:
        """Build the backend ``name`` of ``kind``; unknown or uninstalled names say what to do."""
        known = self.backends(kind)
        info = known.get(name)
        if info is None:
            raise UnknownBackend(
                kind, name, known, "Install the plugin that provides it (`debugtrace plugins`)."
            )
        missing = info.missing()
        if missing:
            hint = info.install_hint or f"pip install {' '.join(missing)}"
            raise UnknownBackend(
                kind,
                name,
                known,
                f"{kind} {name!r} needs {', '.join(missing)}, which is not installed: {hint}",
            )
        return info.factory(self.settings)

    def detect_project(self, path: Path) -> ProjectSpec | None:
        """What project is checked out at ``path`` and how to test it (first answer wins)."""
        spec: ProjectSpec | None = self.pm.hook.detect_project(path=path)
        return spec

    def redact_hook(self) -> Callable[[str], list[Finding]] | None:
        """A function asking every plugin's ``redact`` for more secrets in a string; None when no
        plugin implements the hook (so the ingest path pays nothing for it)."""
        if not self.pm.hook.redact.get_hookimpls():
            return None

        def find(text: str) -> list[Finding]:
            return [f for found in self.pm.hook.redact(text=text) if found for f in found]

        return find

    def trace_submitted(self, trace: Trace) -> None:
        """Tell plugins a trace was stored."""
        self.pm.hook.trace_submitted(trace=trace)

    def events_added(self, trace_id: str, events: list[Event]) -> None:
        """Tell plugins a batch of events was stored."""
        self.pm.hook.events_added(trace_id=trace_id, events=events)

    def trace_finalized(self, trace: Trace) -> None:
        """Tell plugins finalize finished and its results are stored."""
        self.pm.hook.trace_finalized(trace=trace)
