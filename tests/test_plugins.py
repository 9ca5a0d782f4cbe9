"""Plugins: every hook, built-ins registered like third-party plugins, entry points, CLI listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import debugtrace
from debugtrace import Collector, Settings, UnknownBackend, hookimpl
from debugtrace.hookspecs import hookspec
from debugtrace.plugins import DEFAULT_PLUGINS, Plugins, plugin_manager

FAKE = Path(__file__).parent / "support" / "fake_plugin"


class Recorder:
    """A plugin object that records the notifications it gets."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @debugtrace.hookimpl
    def trace_submitted(self, trace: debugtrace.Trace) -> None:
        self.calls.append(("trace_submitted", trace.id))

    @debugtrace.hookimpl
    def events_added(self, trace_id: str, events: list[debugtrace.Event]) -> None:
        self.calls.append(("events_added", (trace_id, [e.seq for e in events])))

    @debugtrace.hookimpl
    def trace_finalized(self, trace: debugtrace.Trace) -> None:
        self.calls.append(("trace_finalized", trace.id))


@pytest.fixture
def plugged(settings: Settings) -> tuple[Collector, Recorder]:
    c = Collector(settings=settings)
    rec = Recorder()
    c.plugins.pm.register(rec)
    return c, rec


def test_hook_register_storage(settings: Settings) -> None:
    class Plugin:
        @debugtrace.hookimpl
        def register_storage(self, register: Any) -> None:
            register("mine", lambda s: "a storage", description="d")

    plugins = Plugins(settings)
    plugins.pm.register(Plugin())
    assert set(plugins.backends("storage")) == {"sql", "mine"}
    assert plugins.create("storage", "mine") == "a storage"


def test_hook_register_sandboxes(settings: Settings) -> None:
    class Plugin:
        @debugtrace.hookimpl
        def register_sandboxes(self, register: Any) -> None:
            register("jail", lambda s: ("sandbox", s.sandbox))

    plugins = Plugins(settings)
    plugins.pm.register(Plugin())
    assert plugins.create("sandbox", "jail") == ("sandbox", "auto")


def test_hook_register_graders(settings: Settings) -> None:
    class Plugin:
        @debugtrace.hookimpl
        def register_graders(self, register: Any) -> None:
            register("strict", lambda s: "grader", requires=("json",))

    plugins = Plugins(settings)
    plugins.pm.register(Plugin())
    info = plugins.backends("grader")["strict"]
    assert info.missing() == []
    assert info.package() == "tests" or info.package()


def test_hook_trace_submitted(plugged: tuple[Collector, Recorder]) -> None:
    c, rec = plugged
    t = c.submit({"developer_id": "d", "repo_url": "r", "bug_description": "b"})
    assert rec.calls == [("trace_submitted", t.id)]


def test_hook_events_added(plugged: tuple[Collector, Recorder]) -> None:
    c, rec = plugged
    t = c.submit({"developer_id": "d", "repo_url": "r", "bug_description": "b"})
    c.add_events(str(t.id), [{"type": "command", "details": {"command": "ls"}}] * 2)
    c.add_events(str(t.id), [])
    assert rec.calls[1:] == [("events_added", (t.id, [1, 2]))]


def test_hook_trace_finalized(plugged: tuple[Collector, Recorder]) -> None:
    c, rec = plugged
    t = c.submit({"developer_id": "d", "repo_url": "r", "bug_description": "b"})
    c.plugins.trace_finalized(c.get(str(t.id)))
    assert rec.calls[-1] == ("trace_finalized", t.id)


def test_hook_redact(settings: Settings) -> None:
    from debugtrace.ingest.redact import Finding

    class Codenames:
        @hookimpl
        def redact(self, text: str) -> list[Finding]:
            at = text.find("BLUEBIRD")
            return [Finding(at, at + 8, "codename")] if at >= 0 else []

    with Collector(settings=settings) as c:
        c.plugins.pm.register(Codenames())
        t = c.submit({"developer_id": "d", "repo_url": "r", "bug_description": "BLUEBIRD leaks"})
    assert t.bug_description == "[REDACTED:codename] leaks"


def test_every_hookspec_has_a_test_here() -> None:
    from debugtrace import hookspecs

    specs = {n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "debugtrace_spec")}
    tests = {n.removeprefix("test_hook_") for n in globals() if n.startswith("test_hook_")}
    assert specs == tests
    assert hookspec  # the marker is importable for plugin authors who add hooks of their own


def test_built_ins_are_registered_as_ordinary_plugins(settings: Settings) -> None:
    pm = plugin_manager(settings)
    names = {pm.get_name(p) for p in pm.get_plugins()}
    assert {m.rsplit(".", 1)[-1] for m in DEFAULT_PLUGINS} <= names


def test_unknown_backend_lists_the_known_ones(settings: Settings) -> None:
    with pytest.raises(
        UnknownBackend, match=r"unknown storage 'nope'; known storage backends: sql"
    ):
        _ = Collector(settings=settings.model_copy(update={"storage": "nope"})).storage


def test_a_built_in_can_be_disabled(settings: Settings) -> None:
    s = settings.model_copy(update={"disable_plugins": "sql_storage"})
    assert Plugins(s).backends("storage") == {}


def test_entry_point_plugins_load_and_provide_backends(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.syspath_prepend(str(FAKE))
    import debugtrace_fake

    s = settings.model_copy(update={"load_plugins": None, "storage": "memory"})
    with Collector(settings=s) as c:
        c.submit({"developer_id": "from-plugin", "repo_url": "r", "bug_description": "b"})
    assert ("create", "from-plugin") in debugtrace_fake.SEEN
    assert any(kind == "trace_submitted" for kind, _ in debugtrace_fake.SEEN)


def test_entry_point_plugins_can_be_excluded(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.syspath_prepend(str(FAKE))
    for s in (
        settings.model_copy(update={"load_plugins": ""}),
        settings.model_copy(update={"load_plugins": None, "disable_plugins": "fake"}),
    ):
        assert "memory" not in Plugins(s).backends("storage")


def test_a_backend_with_missing_dependencies_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.syspath_prepend(str(FAKE))
    plugins = Plugins(settings.model_copy(update={"load_plugins": "fake"}))
    with pytest.raises(UnknownBackend, match=r"pip install debugtrace-fake\[extra\]"):
        plugins.create("grader", "needs-missing-lib")


def test_cli_plugins_lists_kind_name_package_and_dependencies(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(FAKE)}
    env.pop("DEBUGTRACE_LOAD_PLUGINS")
    exe = Path(sys.executable).parent / "debugtrace"
    out = subprocess.run(
        [str(exe), "plugins", "--json"], env=env, capture_output=True, text=True, check=True
    ).stdout
    rows = {(r["kind"], r["name"]): r for r in json.loads(out)}
    assert rows["storage", "sql"]["package"] == "debugtrace-collector"
    assert rows["storage", "sql"]["installed"] is True
    assert rows["storage", "memory"]["package"] == "debugtrace-fake"
    assert rows["grader", "needs-missing-lib"]["installed"] is False
    assert rows["grader", "needs-missing-lib"]["missing"] == ["a_module_that_is_not_installed"]


def test_hook_detect_project(settings: Settings, tmp_path: Path) -> None:
    from debugtrace.sandbox import ProjectSpec

    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    plugins = Plugins(settings)
    assert plugins.detect_project(tmp_path).kind == "python"  # type: ignore[union-attr]

    class Plugin:
        @debugtrace.hookimpl(tryfirst=True)
        def detect_project(self, path: Path) -> ProjectSpec | None:
            return ProjectSpec(kind="bazel", test_command=("bazel", "test", "//..."))

    plugins.pm.register(Plugin())
    assert plugins.detect_project(tmp_path) == ProjectSpec(
        kind="bazel", test_command=("bazel", "test", "//...")
    )


def test_hook_register_executors(settings: Settings) -> None:
    class Plugin:
        @debugtrace.hookimpl
        def register_executors(self, register: Any) -> None:
            register("remote", lambda s: "an executor", description="elsewhere")

    plugins = Plugins(settings)
    plugins.pm.register(Plugin())
    assert set(plugins.backends("executor")) == {"local", "remote"}
    assert plugins.create("executor", "remote") == "an executor"
