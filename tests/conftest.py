"""Suite-wide fixtures."""

import pytest

# Autouse: every test may reach only 127.0.0.0/8, ::1 and Unix sockets (see loopback_guard.py).
from tests.support.loopback_guard import loopback_guard as loopback_guard

# Azurite / Cosmos test servers, and the whole app on the durable stand-in.
pytest_plugins = ["tests.support.services", "tests.support.scheduler"]


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Local target servers listen on a literal loopback address: `localhost` is refused."""
    return ("127.0.0.1", 0)
