"""The request guard: what a request must look like before any route sees it.

A web page can make the browser of someone running ``debugtrace serve`` send requests to
``127.0.0.1``: "simple" cross-site POSTs (``text/plain``, forms) that need no CORS preflight, and,
through DNS rebinding, same-origin requests under the attacker's host name. The guard refuses:

- a ``Host`` that is not a loopback name (``127.0.0.1``, ``localhost``, ``[::1]``, with a port)
  or one of ``DEBUGTRACE_ALLOWED_HOSTS``, while no token is configured (always, when allowed
  hosts are configured): 400. This is what defeats DNS rebinding.
- while no token is configured: a client that is not on loopback (403), and a write whose
  ``Origin`` is not this server's own (403);
- a write the browser marks ``Sec-Fetch-Site: cross-site`` or ``same-site``: 403;
- an API write (``/api/...``) with a body that is not ``application/json`` (or ``+json``): 415.
  Browsers can only send JSON cross-site after a CORS preflight, which this server never grants.

Whether the server is open (no token anywhere) is decided here once per request and left in the
request's state for the routes (:func:`is_open`).
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Collection
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from debugtrace.errors import StorageError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.types import ASGIApp, Receive, Scope, Send

    from debugtrace.server.auth import Authenticator

__all__ = ["GuardSettings", "RequestGuard", "host_name", "is_loopback_name", "is_open"]

log = logging.getLogger(__name__)

OPEN = "debugtrace_open"
"""Key in the request's state: True when no token is configured (everyone is admin)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class GuardSettings(BaseSettings):
    """The guard's own setting (read like every ``DEBUGTRACE_*`` variable, ``.env`` too)."""

    model_config = SettingsConfigDict(env_prefix="DEBUGTRACE_", env_file=".env", extra="ignore")

    allowed_hosts: str = ""
    """Comma-separated host names (no port) the server answers besides the loopback ones, e.g.
    the name of a reverse proxy in front of it. Set, it is enforced with tokens too."""

    def hosts(self) -> frozenset[str]:
        """The allowed names, lower case."""
        return frozenset(h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip())


def host_name(host: str | None) -> str | None:
    """The name of a ``Host`` header without its port (IPv6 without brackets), lower case;
    None when it is missing or malformed."""
    if not host or any(c in host for c in "/\\@?#\x00 "):
        return None
    try:
        parts = urlsplit(f"//{host}")
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return None
    return parts.hostname or None


def is_loopback_name(name: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _peer_is_remote(scope: Scope) -> bool:
    """Whether the client is an IP address off this machine (a Unix socket or a test client
    without an address is not)."""
    client = scope.get("client")
    if not client:
        return False
    try:
        return not ipaddress.ip_address(client[0]).is_loopback
    except ValueError:
        return False


def _origin_of(origin: str) -> str | None:
    """``host[:port]`` of an ``Origin`` header, default ports left out; None for ``null`` and
    anything malformed."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = 80 if parts.scheme == "http" else 443
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host if port in (None, default) else f"{host}:{port}"


def _own_origin(host: str, scheme: str) -> str:
    """``host[:port]`` of this server as the request's ``Host`` names it, the scheme's default
    port left out (as browsers write an ``Origin``)."""
    host = host.lower()
    name, _, port = host.rpartition(":")
    port_follows = bool(name) and (name.endswith("]") or ":" not in name)  # not a bare IPv6
    if port_follows and port == ("443" if scheme in ("https", "wss") else "80"):
        return name
    return host


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def is_open(request: Request) -> bool | None:
    """Whether the guard found the server open for this request; None if no guard ran."""
    state: dict[str, Any] = request.scope.get("state") or {}
    value = state.get(OPEN)
    return value if isinstance(value, bool) else None


class RequestGuard:
    """ASGI middleware applying the rules of the module docstring to every HTTP request."""

    def __init__(self, app: ASGIApp, auth: Authenticator, allowed_hosts: Collection[str]) -> None:
        self.app = app
        self.auth = auth
        self.allowed_hosts = frozenset(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            # While open this asks the store (a token may have been issued a moment ago).
            open_ = not self.auth.secured and not await run_in_threadpool(self.auth.required)
        except StorageError as exc:
            await _answer(send, 503, f"the database is unavailable: {exc}")
            return
        scope.setdefault("state", {})[OPEN] = open_
        refusal = self.refusal(scope, open_)
        if refusal is not None:
            status, detail = refusal
            log.warning("refused %s %s: %s", scope.get("method"), scope.get("path"), detail)
            await _answer(send, status, detail)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope, open_: bool) -> tuple[int, str] | None:
        """``(status, detail)`` of why this request is refused, or None."""
        headers = Headers(scope=scope)
        host = headers.get("host")
        if open_ or self.allowed_hosts:
            name = host_name(host)
            if name is None or not (is_loopback_name(name) or name in self.allowed_hosts):
                return 400, (
                    f"Host header {host!r} is not allowed: this server answers 127.0.0.1, "
                    "localhost and [::1] (and DEBUGTRACE_ALLOWED_HOSTS) only"
                )
        if open_ and _peer_is_remote(scope):
            return 403, (
                "no token is configured, so this server answers clients on this machine only "
                "(set DEBUGTRACE_API_TOKEN or create a token)"
            )
        if scope["method"] in SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site"):
            return 403, f"refused a {site} request (Sec-Fetch-Site): writes come from this site"
        origin = headers.get("origin")
        if (
            open_
            and origin is not None
            and _origin_of(origin) != _own_origin(host or "", scope.get("scheme", "http"))
        ):
            return 403, f"Origin header {origin!r} is not this server: writes come from this site"
        if scope["path"].startswith("/api/"):
            ctype = headers.get("content-type")
            has_body = headers.get("transfer-encoding") is not None or headers.get(
                "content-length", "0"
            ) not in ("", "0")
            if (ctype is not None or has_body) and not _is_json(ctype):
                return 415, (
                    f"Content-Type header {ctype!r} is not accepted: API writes take "
                    "application/json"
                )
        return None


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # a body we did not read may follow
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
