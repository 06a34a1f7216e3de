"""Fixtures of the live suite: the running app, a client for it, and a local receiver.

By default the suite starts the app itself on the local durable host
(`python -m local_durable_host`, tests/live/local_host_process.py) over the suite's Azurite,
with keys of its own, so every live test runs on every CI run. To run it against another
running app instead (e.g. `func start` from scripts/run-local.sh), set
SCHEDULER_LIVE_BASE_URL to its base URL, e.g.

    SCHEDULER_LIVE_BASE_URL=http://127.0.0.1:7071 .venv/bin/python -m pytest tests/live -q

SCHEDULER_LIVE_FUNCTION_KEY (and SCHEDULER_LIVE_ADMIN_KEY, for admin routes) is then sent as
`x-functions-key` when set (`func start` does not check keys).
SCHEDULER_LIVE_MAX_LATENESS_SECONDS bounds how late a job may fire. The suite only ever talks
to loopback addresses: a base URL that is not on this machine fails every live test.
"""

import base64
import contextlib
import importlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.live.local_host_process import LocalHostProcess
from tests.support.local_servers import AzuriteService
from tests.support.worker_scopes import WAITING_MODULES

API_MODULE = "tests.live.test_live_api"

BASE_URL_ENV = "SCHEDULER_LIVE_BASE_URL"
FUNCTION_KEY_ENV = "SCHEDULER_LIVE_FUNCTION_KEY"
# The wipe needs the admin (master) key; `func start` does not check keys either.
ADMIN_KEY_ENV = "SCHEDULER_LIVE_ADMIN_KEY"
MAX_LATENESS_ENV = "SCHEDULER_LIVE_MAX_LATENESS_SECONDS"

# How late a job may fire. A durable timer fires when the host next polls its control queue,
# and an idle host backs off to maxQueuePollingInterval between polls (host.json sets 10 s;
# the Durable default is 30 s). Then the claim, the activity and the call itself run. 60 s
# covers the default interval twice over.
DEFAULT_MAX_LATENESS_SECONDS = 60.0
# The local durable host fires a timer within its idle wait (0.5 s) of its time; the rest is
# the claim, the activity and the call. 10 s leaves room for a loaded CI machine.
LOCAL_HOST_MAX_LATENESS_SECONDS = 10.0


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


@dataclass(frozen=True)
class LiveApp:
    """The app under test; `local_host` is None when it was started outside the suite."""

    base_url: str
    function_key: str
    admin_key: str
    local_host: LocalHostProcess | None


@pytest.fixture(scope="session")
def live_app(request: pytest.FixtureRequest) -> Iterator[LiveApp]:
    value = os.environ.get(BASE_URL_ENV, "").strip()
    if value:
        try:
            base_url = loopback_base_url(value)
        except ValueError as error:
            pytest.fail(f"{BASE_URL_ENV}: {error}", pytrace=False)
        yield LiveApp(
            base_url,
            os.environ.get(FUNCTION_KEY_ENV, "").strip(),
            os.environ.get(ADMIN_KEY_ENV, "").strip(),
            None,
        )
        return
    azurite: AzuriteService = request.getfixturevalue("azurite")
    workdir = request.getfixturevalue("tmp_path_factory").mktemp("local-durable-host")
    host = LocalHostProcess(azurite, workdir)
    host.start()
    try:
        yield LiveApp(host.base_url, host.function_key, host.master_key, host)
    finally:
        host.stop()


@dataclass(frozen=True)
class DeveloperApp:
    """The app as scripts/run-local.sh runs it on a developer's machine: the settings of
    local.settings.example.json (MIN_LEAD_SECONDS 1 among them), keys and a webhook signing
    secret of its own, and the folder its local.settings.json is in."""

    app: LiveApp
    webhook_secret: str
    workdir: Path


EXAMPLE_SETTINGS = Path(__file__).resolve().parents[2] / "local.settings.example.json"
# What each run makes or the suite sets itself (storage, its own table, keys).
OWN_SETTINGS = (
    "AzureWebJobsStorage",
    "JOB_TABLE",
    "LOCAL_HOST_FUNCTION_KEY",
    "LOCAL_HOST_MASTER_KEY",
)


@pytest.fixture(scope="session")
def developer_app(request: pytest.FixtureRequest) -> Iterator[DeveloperApp]:
    if os.environ.get(BASE_URL_ENV, "").strip():
        pytest.skip(f"needs the local durable host with the example settings ({BASE_URL_ENV} set)")
    example = json.loads(EXAMPLE_SETTINGS.read_text())["Values"]
    secret = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    settings = {
        name: value for name, value in example.items() if value and name not in OWN_SETTINGS
    }
    settings["WEBHOOK_SIGNING_SECRETS"] = secret
    azurite: AzuriteService = request.getfixturevalue("azurite")
    workdir = request.getfixturevalue("tmp_path_factory").mktemp("developer-host")
    host = LocalHostProcess(azurite, workdir, settings)
    host.start()
    try:
        yield DeveloperApp(
            LiveApp(host.base_url, host.function_key, host.master_key, host), secret, workdir
        )
    finally:
        host.stop()


@pytest.fixture(scope="session")
def live_base_url(live_app: LiveApp) -> str:
    return live_app.base_url


@pytest.fixture(scope="session")
def max_lateness(live_app: LiveApp) -> float:
    raw = os.environ.get(MAX_LATENESS_ENV, "").strip()
    if raw:
        return float(raw)
    if live_app.local_host is not None:
        return LOCAL_HOST_MAX_LATENESS_SECONDS
    return DEFAULT_MAX_LATENESS_SECONDS


def client_of(base_url: str, key: str) -> httpx.Client:
    """A client of the running app; it ignores proxy settings, which could route loopback away."""
    headers = {"Accept": "application/json, application/problem+json"}
    if key:
        headers["x-functions-key"] = key
    return httpx.Client(base_url=base_url, headers=headers, timeout=30.0, trust_env=False)


@pytest.fixture(scope="session")
def api(live_app: LiveApp) -> Iterator[httpx.Client]:
    with client_of(live_app.base_url, live_app.function_key) as client:
        yield client


@pytest.fixture(scope="session")
def admin_api(live_app: LiveApp) -> Iterator[httpx.Client]:
    with client_of(live_app.base_url, live_app.admin_key) as client:
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


@contextlib.contextmanager
def serving_receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 that answers 200 to any path and method, stopped afterwards."""
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


@dataclass(frozen=True)
class JobsDueTogether:
    """What each waiting module's `schedule_jobs` returned, or the error it raised."""

    _scheduled: dict[str, Any]

    def of(self, module: str) -> Any:
        scheduled = self._scheduled[module]
        if isinstance(scheduled, BaseException):
            raise scheduled
        return scheduled


@pytest.fixture(scope="session")
def jobs_due_together(
    request: pytest.FixtureRequest, api: httpx.Client
) -> Iterator[JobsDueTogether]:
    """The jobs of every waiting module of this run (worker_scopes.py), scheduled one after
    the other when the first of them asks: the run waits for one firing window, not one per
    module. Each such module has `schedule_jobs(api, stack)`, which schedules its jobs (its
    receivers started on `stack`, serving until the session ends) and returns what its tests
    check. A module whose scheduling fails fails alone."""
    collected = {
        item.module.__name__ for item in request.session.items if isinstance(item, pytest.Function)
    }
    with contextlib.ExitStack() as stack:
        scheduled: dict[str, Any] = {}
        # test_live_api's last: its restart must come before its first job is due, and its
        # wipe (cancelling every job) after the others' jobs are done.
        for name in sorted(WAITING_MODULES, key=lambda name: name == API_MODULE):
            if name in collected:
                try:
                    scheduled[name] = importlib.import_module(name).schedule_jobs(api, stack)
                # Raised again in that module's own tests (pytest.fail's and skip's too).
                except (Exception, pytest.fail.Exception, pytest.skip.Exception) as error:
                    scheduled[name] = error
        yield JobsDueTogether(scheduled)
