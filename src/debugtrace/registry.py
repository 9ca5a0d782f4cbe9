"""Backends registered by name: what ``register_storage(register)`` and friends fill in."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from debugtrace.config import Settings

__all__ = ["BackendInfo", "Kind", "Register"]

Kind = Literal["storage", "sandbox", "grader", "executor"]

DISTRIBUTION = "debugtrace-collector"
"""debugtrace's name on PyPI (``debugtrace`` there is an unrelated project); the import name, the
CLI and the entry-point group are ``debugtrace``."""


class Register(Protocol):
    """The ``register`` callable handed to ``register_*`` hooks."""

    def __call__(
        self,
        name: str,
        factory: Callable[[Settings], Any],
        *,
        requires: Sequence[str] = (),
        description: str = "",
        install_hint: str = "",
    ) -> None:
        """Register ``factory`` under ``name``; ``factory(settings)`` builds the backend."""


@dataclass(frozen=True)
class BackendInfo:
    """One registered backend: its kind and name, how to build it, and what it needs."""

    kind: Kind
    name: str
    factory: Callable[[Settings], Any]
    requires: tuple[str, ...] = ()
    description: str = ""
    install_hint: str = ""
    plugin: str = field(default="", compare=False)

    @property
    def module(self) -> str:
        """The module that defines the factory (used to name the providing package)."""
        return getattr(self.factory, "__module__", "") or ""

    def missing(self) -> list[str]:
        """The required modules that cannot be imported here (empty when all are installed)."""
        return [m for m in self.requires if importlib.util.find_spec(m) is None]

    def package(self) -> str:
        """The distribution that provides this backend (``debugtrace-collector`` for built-ins)."""
        from importlib.metadata import packages_distributions

        top = self.module.split(".")[0]
        if top == "debugtrace":  # an editable install maps no distribution to it
            return DISTRIBUTION
        dists = packages_distributions().get(top, [])
        return dists[0] if dists else top or "?"
