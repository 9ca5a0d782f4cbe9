"""Bearer-token authentication: one admin token, and per-developer tokens stored hashed.

The mode is decided once and never reopens: a server with ``DEBUGTRACE_API_TOKEN``, or over a
store that ever issued a developer token (a persisted flag, :meth:`Collector.has_tokens`),
requires a token for the life of the process. A server that starts open (loopback only) asks the
store on every request whether a token was issued meanwhile, so the first ``debugtrace token
create`` closes it at once, from then on without asking again. A store that cannot be read makes
the request fail (503), never open.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from debugtrace.errors import AuthError

if TYPE_CHECKING:
    from debugtrace.collector import Collector


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin (any trace) or one developer (their own traces only)."""

    developer_id: str | None
    """None for the admin."""
    token_id: str | None = field(default=None, compare=False)
    """The developer token that authenticated the caller (a dashboard session records it, so
    revoking the token ends the session)."""

    @property
    def admin(self) -> bool:
        """Whether this caller may read and write every trace."""
        return self.developer_id is None

    def may_access(self, developer_id: str) -> bool:
        """Whether this caller may read or write a trace of ``developer_id``."""
        return self.admin or self.developer_id == developer_id


ADMIN = Principal(None)


class Authenticator:
    """Checks bearer tokens and dashboard sessions. While no token exists anywhere, everyone is
    admin: the server then answers loopback only (see :mod:`debugtrace.server.guard`)."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.admin_token = collector.settings.api_token
        self._secured = bool(self.admin_token)

    @property
    def secured(self) -> bool:
        """Known, without asking the store, that tokens are required (for good)."""
        return self._secured

    def required(self) -> bool:
        """Whether requests must carry a token. Once True, True for the life of the process.

        While it is False this asks the store (the persisted "secured" flag), so it runs in the
        thread pool; a store error propagates (a 503, never an open door).
        """
        if not self._secured and self.collector.has_tokens():
            self._secured = True
        return self._secured

    def authenticate(self, token: str) -> Principal:
        """The caller a token stands for; raises :class:`AuthError` for a wrong or revoked one."""
        if self.admin_token and hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return ADMIN
        info = self.collector.token_info(token) if token else None
        if info is None:
            raise AuthError("invalid or revoked token")
        return Principal(info.developer_id, info.id)

    def principal(self, authorization: str | None) -> Principal:
        """The caller for an ``Authorization`` header; raises :class:`AuthError`."""
        if not self.required():
            return ADMIN
        if not authorization or not authorization.lower().startswith("bearer "):
            raise AuthError("missing bearer token (Authorization: Bearer <token>)")
        return self.authenticate(authorization[7:].strip())

    def session_principal(self, key: str) -> Principal | None:
        """The caller of a dashboard session, checked against the store on every request: None
        once it was signed out, expired, or its token revoked."""
        session = self.collector.session(key)
        if session is None:
            return None
        if session.developer_id is None:
            # An admin session needs the admin token to still be configured.
            return ADMIN if self.admin_token else None
        return Principal(session.developer_id, session.token_id)
