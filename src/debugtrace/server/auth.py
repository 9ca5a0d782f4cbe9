"""Bearer-token authentication: one admin token, and per-developer tokens stored hashed."""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from debugtrace.errors import AuthError

if TYPE_CHECKING:
    from debugtrace.collector import Collector


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin (any trace) or one developer (their own traces only)."""

    developer_id: str | None
    """None for the admin."""

    @property
    def admin(self) -> bool:
        """Whether this caller may read and write every trace."""
        return self.developer_id is None

    def may_access(self, developer_id: str) -> bool:
        """Whether this caller may read or write a trace of ``developer_id``."""
        return self.admin or self.developer_id == developer_id


ADMIN = Principal(None)


class Authenticator:
    """Checks bearer tokens. Without any token configured, everyone is admin: the server then
    binds to loopback only (``debugtrace serve`` refuses anything else)."""

    TTL_S = 5.0
    """How long the "are there developer tokens at all" answer is cached."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.admin_token = collector.settings.api_token
        self._any_tokens: tuple[float, bool] = (0.0, False)

    def required(self) -> bool:
        """Whether requests must carry a token (an admin token or any developer token exists)."""
        if self.admin_token:
            return True
        checked, value = self._any_tokens
        if time.monotonic() - checked > self.TTL_S:
            value = self.collector.has_tokens()
            self._any_tokens = (time.monotonic(), value)
        return value

    def open_access(self) -> bool:
        """True when it is known, without asking the database, that no token is needed now."""
        checked, value = self._any_tokens
        return not self.admin_token and not value and time.monotonic() - checked <= self.TTL_S

    def principal(self, authorization: str | None) -> Principal:
        """The caller for an ``Authorization`` header; raises :class:`AuthError`."""
        if not self.required():
            return ADMIN
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError("missing bearer token (Authorization: Bearer <token>)")
        token = authorization[7:].strip()
        if self.admin_token and hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return ADMIN
        developer = self.collector.token_developer(token)
        if developer is None:
            raise AuthError("invalid or revoked token")
        return Principal(developer)
