"""Dashboard sessions: a signed, expiring cookie minted once the host has checked the admin
key, and a CSRF token bound to that session.

The Functions host checks keys only in `?code=` or the `x-functions-key` header, which a
browser cannot send on its own. So the one admin-level route (`GET /api/dashboard`) turns a
checked key into a session cookie, and the other dashboard routes check that cookie here.
The cookie carries no secret: an expiry, a random nonce, and an HMAC of both under a key
derived from REQUEST_FINGERPRINT_KEY (a separate purpose label, so a session MAC can never
stand for a request fingerprint, nor the other way round).
"""

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

COOKIE_NAME = "scheduler_dashboard"
COOKIE_PATH = "/api/dashboard"
_PURPOSE = b"durable-scheduler/dashboard-session/v1"
# "v1.<expiry, unix seconds>.<nonce, 22 url-safe chars>.<mac, 43 url-safe chars>"
_TOKEN = re.compile(r"v1\.([0-9]{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})")
_MAX_TOKEN_LENGTH = 128


@dataclass(frozen=True)
class Session:
    """A signed-in browser: until `expires`; `nonce` ties its CSRF token to it."""

    nonce: str
    expires: datetime

    def csrf_token(self, key: bytes) -> str:
        return _mac(key, f"csrf|{self.nonce}")


def session_key(fingerprint_key: bytes) -> bytes:
    """The dashboard's own key, derived from the app's HMAC key for one purpose only."""
    return hmac.new(fingerprint_key, _PURPOSE, hashlib.sha256).digest()


def new_session(key: bytes, now: datetime, lifetime: timedelta) -> tuple[Session, str]:
    """A fresh session, and the cookie value that stands for it."""
    expires = int((now + lifetime).timestamp())
    nonce = secrets.token_urlsafe(16)
    token = f"v1.{expires}.{nonce}.{_mac(key, f'session|{expires}|{nonce}')}"
    return Session(nonce, datetime.fromtimestamp(expires, now.tzinfo)), token


def read_session(key: bytes, token: str | None, now: datetime) -> Session | None:
    """The session a cookie value stands for, or None: absent, malformed, forged or expired."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    expires_text, nonce, mac = match.groups()
    if not hmac.compare_digest(mac, _mac(key, f"session|{expires_text}|{nonce}")):
        return None
    expires = datetime.fromtimestamp(int(expires_text), now.tzinfo)
    if expires <= now:
        return None
    return Session(nonce, expires)


def csrf_matches(key: bytes, session: Session, submitted: str | None) -> bool:
    """Whether a form's token is this session's (constant-time)."""
    if not submitted:
        return False
    return hmac.compare_digest(submitted.encode(), session.csrf_token(key).encode())


def cookie_header(token: str, lifetime: timedelta, secure: bool) -> str:
    """Set-Cookie for a session: script cannot read it, other sites cannot send it."""
    attributes = [
        f"{COOKIE_NAME}={token}",
        f"Path={COOKIE_PATH}",
        f"Max-Age={int(lifetime.total_seconds())}",
        "HttpOnly",
        "SameSite=Strict",
    ]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def clearing_cookie_header(secure: bool) -> str:
    return cookie_header("", timedelta(0), secure)


def cookie_value(cookie_header_value: str | None) -> str | None:
    """This dashboard's cookie from a Cookie header (capped: the header is the caller's)."""
    if not cookie_header_value or len(cookie_header_value) > 8192:
        return None
    for part in cookie_header_value.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME:
            return value
    return None


def _mac(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
