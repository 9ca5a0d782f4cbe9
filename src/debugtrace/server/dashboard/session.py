"""Dashboard sessions, flash messages and CSRF tokens: signed values, never the raw token.

A browser signs in once with an API token; the server checks it like a bearer token, opens a
session in the store (who signed in, with which token, until when) and sets
``debugtrace_session`` to the session's random key, signed and expiring; never the token itself.
Every request looks the session up again, so signing out, revoking the token (``debugtrace token
revoke``) or its expiry end it at once, on every server of the store. Signatures are
HMAC-SHA256 under a key that

- is derived from ``DEBUGTRACE_API_TOKEN`` when it is set (every worker and host of the server
  agrees on it; rotating the admin token ends every session), else
- is random and kept in ``DATA_DIR/dashboard.key`` (mode 0600), shared by the workers of one host,
  else (a read-only data directory) random for this process.

CSRF: each browser gets a random ``debugtrace_csrf`` cookie; a form's hidden ``csrf`` field is the
HMAC of that cookie and the session cookie, so a page of another origin (which can neither read
our pages nor set our cookies) cannot make a valid one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

SESSION_COOKIE = "debugtrace_session"
CSRF_COOKIE = "debugtrace_csrf"
FLASH_COOKIE = "debugtrace_flash"
SESSION_TTL_S = 8 * 3600
FLASH_TTL_S = 120
KEY_FILE = "dashboard.key"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_key(admin_token: str | None, data_dir: Path) -> bytes:
    """The signing key (see the module docstring for where it comes from)."""
    if admin_token:
        return hmac.new(admin_token.encode(), b"debugtrace-dashboard-v1", hashlib.sha256).digest()
    path = data_dir / KEY_FILE
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    key = secrets.token_bytes(32)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        try:
            os.link(tmp, path)  # atomic create-if-absent: the first worker's key wins
        except FileExistsError:
            key = path.read_bytes()
        finally:
            tmp.unlink()
    except OSError:
        pass  # not writable: a key of this process (sessions end with it)
    return key


class Signer:
    """Signs and checks small JSON values with an expiry."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}|{body}".encode(), hashlib.sha256).digest())

    def sign(self, purpose: str, value: Any, ttl_s: float) -> str:
        """``value`` (JSON-able) with an expiry and a signature bound to ``purpose``."""
        body = _b64(
            json.dumps({"v": value, "e": int(time.time() + ttl_s)}, separators=(",", ":")).encode()
        )
        return f"{body}.{self._mac(purpose, body)}"

    def unsign(self, purpose: str, signed: str | None) -> tuple[bool, Any]:
        """``(True, value)`` for an intact, unexpired value signed for ``purpose``."""
        if not signed or signed.count(".") != 1 or len(signed) > 4096:
            return False, None
        body, mac = signed.split(".")
        if not hmac.compare_digest(mac, self._mac(purpose, body)):
            return False, None
        try:
            doc = json.loads(_unb64(body))
        except ValueError:
            return False, None
        if not isinstance(doc, dict) or not isinstance(doc.get("e"), int):
            return False, None
        if doc["e"] < time.time():
            return False, None
        return True, doc.get("v")

    # -- sessions ------------------------------------------------------------------------------

    def session(self, key: str) -> str:
        """The session cookie value for a session key (from ``Collector.open_session``)."""
        return self.sign("session", {"sid": key}, SESSION_TTL_S)

    def session_key(self, cookie: str | None) -> str | None:
        """The session key a cookie carries; None when it is missing, forged or expired. The
        key must still be looked up in the store (``Authenticator.session_principal``)."""
        ok, value = self.unsign("session", cookie)
        if not ok or not isinstance(value, dict):
            return None
        key = value.get("sid")
        return key if isinstance(key, str) and 16 <= len(key) <= 128 else None

    # -- CSRF ----------------------------------------------------------------------------------

    def csrf_token(self, csrf_cookie: str, session_cookie: str | None) -> str:
        """The form token for this browser (its CSRF cookie) and session."""
        return self._mac("csrf", f"{csrf_cookie}|{session_cookie or ''}")

    def check_csrf(self, token: str | None, csrf_cookie: str | None, session: str | None) -> bool:
        """Whether a submitted form token is the one this browser's pages carry."""
        if not token or not csrf_cookie:
            return False
        return hmac.compare_digest(token, self.csrf_token(csrf_cookie, session))


def new_csrf_cookie() -> str:
    """A fresh random value for the CSRF cookie."""
    return secrets.token_urlsafe(24)
