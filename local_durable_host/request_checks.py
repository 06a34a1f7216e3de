"""What every request to the local host is checked against before a function sees it.

Both servers (the app's functions, app_server.py; the extension's API, extension_api.py)
serve only loopback Host names (a page cannot reach them by DNS rebinding), refuse a
change a browser sent from a page of another site, and read a body by Content-Length or
chunks within a size limit and in linear time; the app's server also gives each request a
deadline for its bytes (TimedSocketReader), as Kestrel's limits do.
"""

import io
import math
import re
import socket
import time
from email.message import Message
from io import BufferedIOBase
from typing import Any

# The host's default request size limit (maxRequestBodySize, 100 MB).
MAX_BODY_BYTES = 100 * 1024 * 1024
# A browser on this machine may be tricked into calling a loopback port under another name
# (DNS rebinding): only these Host names are served.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
# A Host header: a name or a bracketed IPv6 address, then an optional port.
_HOST_HEADER = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[^\[\]:]+)(?::[0-9]{1,5})?")
_DIGITS = re.compile(r"[0-9]{1,20}")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
# Methods a page of another site may use freely; everything else changes something.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


class BodyRefused(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_loopback_host(host_header: str | None, names: frozenset[str] = LOOPBACK_NAMES) -> bool:
    """Whether a Host header names this machine (127.0.0.1, localhost or [::1], any port),
    or another of `names`."""
    found = _HOST_HEADER.fullmatch(host_header or "")
    return found is not None and found["name"].lower() in names


def cross_site_refusal(method: str, headers: dict[str, str]) -> str | None:
    """Why a request that changes something is refused (a 403) when a browser sent it from
    a page of another site (another origin: another port on this machine is one), else None.

    Browsers say so on every such request: `Origin` on every POST, PUT, PATCH and DELETE
    from a page, and `Sec-Fetch-Site`. A client that is not a browser sends neither.
    """
    if method.upper() in SAFE_METHODS:
        return None
    site = (header(headers, "sec-fetch-site") or "").strip().lower()
    origin = header(headers, "origin")
    own = f"http://{header(headers, 'host') or ''}".lower()
    if site in ("cross-site", "same-site") or (
        origin is not None and origin.strip().lower() != own
    ):
        return "refused: a browser sent this request from a page of another site"
    return None


def read_body(headers: Message, stream: BufferedIOBase, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body by Content-Length or chunked, at most `limit` bytes; BodyRefused
    (400, 413) for a body that is malformed, too large, or ends early."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return _read_chunked(stream, limit)
    declared = {value.strip() for value in headers.get_all("Content-Length") or []}
    if len(declared) > 1:
        raise BodyRefused(400, "Content-Length is given twice, with different values")
    text = declared.pop() if declared else "0"
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and other
    # scripts' digits (which int() reads).
    if not _DIGITS.fullmatch(text):
        raise BodyRefused(400, "Content-Length is not a number")
    length = int(text)
    if length > limit:
        raise BodyRefused(413, "the body is larger than the host accepts")
    body = stream.read(length) if length else b""
    if len(body) < length:
        raise BodyRefused(400, "the body ended before Content-Length bytes")
    return body


def _read_chunked(stream: BufferedIOBase, limit: int) -> bytes:
    body = bytearray()
    while True:
        size_line = stream.readline(1024)
        size_text = size_line.split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            raise BodyRefused(400, "a chunk size is not hexadecimal")
        size = int(size_text, 16)
        if len(body) + size > limit:
            raise BodyRefused(413, "the body is larger than the host accepts")
        if size == 0:
            for _ in range(100):  # trailers, up to the blank line
                if not stream.readline(8192).strip():
                    return bytes(body)
            raise BodyRefused(400, "too many trailer lines")
        chunk = stream.read(size)
        if len(chunk) < size or stream.readline(64).strip():
            raise BodyRefused(400, "a chunk ended early, or not with CRLF")
        body += chunk


def header(headers: dict[str, str], name: str) -> str | None:
    """The value of header `name` (lower case), whatever case the client wrote it in."""
    return next((value for key, value in headers.items() if key.lower() == name), None)


class RequestTimedOut(TimeoutError):
    """The request did not arrive within its limit."""


class TimedSocketReader(io.RawIOBase):
    """The connection's reads, each given only what is left of the request's time: a
    per-read timeout alone lets a client that sends a byte now and then hold a thread
    forever. The time left may grow with the bytes read (a minimum rate)."""

    def __init__(self, connection: socket.socket) -> None:
        self._connection = connection
        self._start = 0.0
        self._allowed = math.inf
        self._per_byte = 0.0
        self.received = 0
        self.expired = False

    def limit(self, seconds: float, per_byte_seconds: float = 0.0) -> None:
        """From now: `seconds`, plus `per_byte_seconds` for every byte that arrives."""
        self._start = time.monotonic()
        self._allowed = seconds
        self._per_byte = per_byte_seconds
        self.received = 0
        self.expired = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        left = self._start + self._allowed + self.received * self._per_byte - time.monotonic()
        if left <= 0:
            self.expired = True
            raise RequestTimedOut("the request did not arrive in time")
        self._connection.settimeout(left)
        try:
            count = self._connection.recv_into(buffer)
        except TimeoutError:
            self.expired = True
            raise RequestTimedOut("the request did not arrive in time") from None
        self.received += count
        return count
