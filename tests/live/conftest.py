"""Fixtures of the live suite: a client for a running `func start`, and a local receiver.

Opt-in: set SCHEDULER_LIVE_BASE_URL to the base URL of the running app, e.g.

    scripts/run-local.sh                      # in one terminal
    SCHEDULER_LIVE_BASE_URL=http://127.0.0.1:7071 .venv/bin/python -m pytest tests/live -q

SCHEDULER_LIVE_FUNCTION_KEY (and SCHEDULER_LIVE_ADMIN_KEY, for the wipe) is sent as
`x-functions-key` when set (`func start` does not check keys).
SCHEDULER_LIVE_MAX_LATENESS_SECONDS bounds how late a job may fire (default 60).
Without SCHEDULER_LIVE_BASE_URL every live test is skipped; with a URL that is not on this
machine every live test fails: the suite only ever talks to loopback addresses.
"""

import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from urllib.parse import urlsplit

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

BASE_URL_ENV = "SCHEDULER_LIVE_BASE_URL"
FUNCTION_KEY_ENV = "SCHEDULER_LIVE_FUNCTION_KEY"
# The wipe needs the admin (master) key; `func start` does not check keys either.
ADMIN_KEY_ENV = "SCHEDULER_LIVE_ADMIN_KEY"
MAX_LATENESS_ENV = "SCHEDULER_LIVE_MAX_LATENESS_SECONDS"
SKIP_REASON = (
    f"set {BASE_URL_ENV} to the base URL of a running `func start` to run the live suite "
    "(e.g. http://127.0.0.1:7071; see docs/local-development.md)"
)

# How late a job may fire. A durable timer fires when the host next polls its control queue,
# and an idle host backs off to maxQueuePollingInterval between polls (host.json sets 10 s;
# the Durable default is 30 s). Then the claim, the activity and the call itself run. 60 s
# covers the default interval twice over.
DEFAULT_MAX_LATENESS_SECONDS = 60.0


def loopback_base_url(value: str) -> str:
    """The base URL without a trailing slash; ValueError unless it is http(s) on loopback."""
    parts = urlsplit(value.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"{value!r} is not an http(s) URL")
    if host.lower() != "localhost":
        try:
            loopback = ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"{value!r} is not on this machine: the live suite talks only to a `func start` "
                "on a loopback address (127.0.0.1, ::1 or localhost)"
            )
    return value.strip().rstrip("/")


@pytest.fixture(scope="session")
def live_base_url() -> str:
    value = os.environ.get(BASE_URL_ENV, "").strip()
    if not value:
        pytest.skip(SKIP_REASON)
    try:
        return loopback_base_url(value)
    except ValueError as error:
        pytest.fail(f"{BASE_URL_ENV}: {error}", pytrace=False)


@pytest.fixture(scope="session")
def max_lateness() -> float:
    raw = os.environ.get(MAX_LATENESS_ENV, "").strip()
    return float(raw) if raw else DEFAULT_MAX_LATENESS_SECONDS


def _client(base_url: str, key_env: str) -> httpx.Client:
    """A client of the running app; it ignores proxy settings, which could route loopback away."""
    headers = {"Accept": "application/json, application/problem+json"}
    key = os.environ.get(key_env, "").strip()
    if key:
        headers["x-functions-key"] = key
    return httpx.Client(base_url=base_url, headers=headers, timeout=30.0, trust_env=False)


@pytest.fixture(scope="session")
def api(live_base_url: str) -> Iterator[httpx.Client]:
    with _client(live_base_url, FUNCTION_KEY_ENV) as client:
        yield client


@pytest.fixture(scope="session")
def admin_api(live_base_url: str) -> Iterator[httpx.Client]:
    with _client(live_base_url, ADMIN_KEY_ENV) as client:
        yield client


@dataclass(frozen=True)
class ReceivedRequest:
    """One request that reached the receiver, with the moment it arrived (time.time())."""

    received_at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records every request the scheduled jobs send it."""

    server: HTTPServer
    _received: list[ReceivedRequest] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url_for(self, path: str) -> str:
        return self.server.url_for(path)

    def requests_to(self, path: str) -> list[ReceivedRequest]:
        with self._lock:
            return [request for request in self._received if request.path == path]

    def record(self, request: Request) -> Response:
        received = ReceivedRequest(
            received_at=time.time(),
            method=request.method,
            path=request.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            body=request.get_data(),
        )
        with self._lock:
            self._received.append(received)
        return Response("received", status=200, content_type="text/plain")


@pytest.fixture(scope="module")
def receiver(live_base_url: str) -> Iterator[Receiver]:
    """The target of the live jobs' http.call; it answers 200 to any path and method."""
    server = HTTPServer(host="127.0.0.1", port=0)
    receiver = Receiver(server)
    server.expect_request(re.compile(r"/.*")).respond_with_handler(receiver.record)
    server.start()
    try:
        yield receiver
    finally:
        server.clear()
        if server.is_running():
            server.stop()
