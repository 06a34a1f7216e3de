"""The app on a real loopback socket (local_durable_host's AppServer, keys enforced) over the
`scheduler` fixture's durable stand-in and Azurite, for tests that speak HTTP to it."""

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from azure.durable_functions.models.utils import http_utils

from function_app import app
from local_durable_host.app_server import AppServer, Keys
from local_durable_host.request_checks import LOOPBACK_NAMES
from tests.support.scheduler import Scheduler

TEST_KEYS = Keys(function_key="test-function-key", master_key="test-master-key")


@contextmanager
def served_app(
    scheduler: Scheduler, host_names: frozenset[str] = LOOPBACK_NAMES
) -> Iterator[AppServer]:
    """The server; its requests run on an event loop of its own, closed afterwards.
    `host_names`: the Host names it serves (a name a test's browser maps to loopback)."""
    # The durable SDK keeps one aiohttp session (and one lock) per process, bound to the
    # loop that first used it: the server's loop gets fresh ones, and the test's come back.
    saved = (http_utils._client_session, http_utils._session_lock)
    http_utils._client_session = None
    http_utils._session_lock = asyncio.Lock()
    server = AppServer(app, scheduler.host.client_binding, TEST_KEYS, host_names=host_names)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(http_utils._close_session(), server._loop).result(10)
        server.close()
        http_utils._client_session, http_utils._session_lock = saved
