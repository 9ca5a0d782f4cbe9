"""The web dashboard served by ``debugtrace serve`` at ``/`` (extra ``server``; see
docs/dashboard.md): server-rendered Jinja2 pages, inline SVG charts, one small static script.

:func:`install` adds it to the FastAPI app: the pages, ``/static``, and the security headers of
every dashboard response.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from debugtrace.server.dashboard.session import SESSION_COOKIE, Signer, load_key

if TYPE_CHECKING:
    from fastapi import FastAPI

    from debugtrace.collector import Collector
    from debugtrace.server.auth import Authenticator

__all__ = ["CSP", "SESSION_COOKIE", "SecurityHeaders", "Signer", "install"]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
PAGE_PREFIXES = ("/traces/", "/overview", "/login", "/logout", "/static/")


def _is_dashboard(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


class SecurityHeaders:
    """Adds the Content-Security-Policy and friends to dashboard responses (pages and static
    files); the API and ``/docs`` (which loads its own assets) are left as they are."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_dashboard(scope["path"]):
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"cache-control", b"no-cache" if static else b"no-store"),
                ]
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, collector: Collector, auth: Authenticator) -> Signer:
    """Serve the dashboard from ``app``; returns the session signer (the API's ``caller`` uses
    it to accept the dashboard's session cookie on GET requests)."""
    from debugtrace.server.dashboard.routes import Dashboard, build_router

    signer = Signer(load_key(collector.settings.api_token, collector.settings.data_dir))
    dashboard = Dashboard(collector, auth, signer)
    app.include_router(build_router(dashboard))
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_middleware(SecurityHeaders)
    return signer
