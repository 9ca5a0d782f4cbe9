"""The architecture's rules, checked on the source (docs/architecture.md explains them).

Imports are read from the syntax tree, so an import under ``if TYPE_CHECKING:`` or inside a
function counts as much as one at the top of a module: a cycle that only type checkers or a late
call see is still a cycle for a reader.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

import debugtrace
from debugtrace import errors

SRC = Path(debugtrace.__file__).parent
LOWER = ("model", "results", "ingest", "storage", "sandbox", "grading", "finalize", "jobs")
"""Layers below the Collector; they never import a front end."""
FRONT_ENDS = ("cli", "server", "capture")
"""Thin front ends over the Collector."""
MAY_IMPORT_COLLECTOR = (*FRONT_ENDS, "jobs.local")
"""Front ends, and the local executor, which builds the Collector its jobs run with."""


def module_name(path: Path) -> str:
    parts = ["debugtrace", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of the package, by dotted name (migration scripts excluded: Alembic loads
    them by path, nothing imports them)."""
    found = {module_name(p): p for p in SRC.rglob("*.py")}
    return {m: p for m, p in found.items() if ".migrations." not in m}


def imported(name: str, path: Path) -> Iterator[str]:
    """The debugtrace modules that module ``name`` imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    known = modules()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        yield from (t for t in targets if t in known and t != name)


@cache
def graph() -> dict[str, frozenset[str]]:
    return {name: frozenset(imported(name, path)) for name, path in modules().items()}


def within(name: str, areas: tuple[str, ...]) -> bool:
    return any(name == f"debugtrace.{a}" or name.startswith(f"debugtrace.{a}.") for a in areas)


def find_cycle(edges: dict[str, frozenset[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    edges = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset()}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": frozenset({"b"}), "b": frozenset()}) is None


def test_no_import_cycle_among_debugtraces_modules() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("layer", LOWER)
def test_lower_layers_never_import_a_front_end(layer: str) -> None:
    offenders = {
        f"{mod} -> {dep}"
        for mod, deps in graph().items()
        if within(mod, (layer,))
        for dep in deps
        if within(dep, FRONT_ENDS)
    }
    assert not offenders


def test_only_front_ends_and_the_local_executor_import_the_collector() -> None:
    importers = {m for m, deps in graph().items() if "debugtrace.collector" in deps}
    allowed = {m for m in importers if within(m, MAY_IMPORT_COLLECTOR)} | {"debugtrace"}
    assert importers - allowed == set()


def test_the_server_reaches_storage_only_through_its_contract() -> None:
    offenders = {
        f"{mod} -> {dep}"
        for mod, deps in graph().items()
        if within(mod, ("server",))
        for dep in deps
        if within(dep, ("storage.sql",))
    }
    assert not offenders


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_front_ends_never_reach_into_the_collectors_storage(front_end: str) -> None:
    # What a front end needs from storage is a Collector method, where policy can live.
    offenders = [
        f"{name}:{node.lineno}"
        for name, path in modules().items()
        if within(name, (front_end,))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute) and node.attr == "storage"
    ]
    assert offenders == []


def all_exception_classes() -> Iterator[type[BaseException]]:
    for name in sorted(modules()):
        if name.endswith(".__main__"):
            continue
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("debugtrace"):
                yield obj


def test_every_error_lives_in_errors_and_derives_from_debugtrace_error() -> None:
    misplaced = {
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in all_exception_classes()
        if cls.__module__ != "debugtrace.errors" or not issubclass(cls, errors.DebugtraceError)
    }
    assert not misplaced


def test_the_error_tree_in_the_docstring_names_every_error() -> None:
    defined = {
        name
        for name, obj in vars(errors).items()
        if inspect.isclass(obj) and issubclass(obj, errors.DebugtraceError)
    }
    assert errors.__doc__ is not None
    assert {n for n in defined if n not in errors.__doc__} == set()


def test_at_most_fourteen_modules_at_the_top_level() -> None:
    top = sorted(p.name for p in SRC.glob("*.py"))
    assert len(top) <= 14, top


def test_every_package_states_its_contract_in_its_init() -> None:
    packages = [m for m in pkgutil.walk_packages([str(SRC)], "debugtrace.") if m.ispkg]
    undocumented = [
        p.name
        for p in packages
        if ".migrations" not in p.name
        and not ast.get_docstring(
            ast.parse((SRC.joinpath(*p.name.split(".")[1:]) / "__init__.py").read_text())
        )
    ]
    assert undocumented == []


def test_modules_stay_small() -> None:
    # starlette's largest module is under 900 lines; a longer one wants splitting.
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > 900} == {}
