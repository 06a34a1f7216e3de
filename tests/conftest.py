"""Suite-wide fixtures."""

import pytest

# Autouse: every test may reach only 127.0.0.0/8, ::1 and Unix sockets (see loopback_guard.py).
from tests.support.loopback_guard import loopback_guard as loopback_guard

# Azurite / Cosmos test servers, the whole app on the durable stand-in, one Chromium for the
# session's browser tests, and how `pytest -n` shares the suite among its workers.
pytest_plugins = [
    "tests.support.services",
    "tests.support.scheduler",
    "tests.support.browser",
    "tests.support.worker_scopes",
]


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Local target servers listen on a literal loopback address: `localhost` is refused."""
    return ("127.0.0.1", 0)
