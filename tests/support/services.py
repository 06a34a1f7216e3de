"""Session fixtures `azurite` and `cosmos_server`: the npm-pinned servers (`npm ci`), each in
its own process group on a free loopback port, stopped when the session ends. Starting and
stopping them is local_servers.py's (the benchmarks use it too)."""

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.table_storage import AZURITE_ACCOUNT, AZURITE_KEY, TableEndpoint
from tests.support import local_servers
from tests.support.local_servers import HOST, AzuriteService, free_port, start_server

__all__ = ["AzuriteService", "CosmosService", "free_port", "node_tool"]

# Any base64 string is a valid key for the test server; it checks none.
COSMOS_TEST_KEY = base64.b64encode(b"cosmosdb-server test key").decode()


@dataclass(frozen=True)
class CosmosService:
    """The Cosmos DB API test server: HTTPS with a self-signed certificate, any key accepted."""

    endpoint: str
    key: str = COSMOS_TEST_KEY


def node_tool(name: str) -> Path:
    """The path of an npm-installed executable; fails the test with how to install it."""
    try:
        return local_servers.node_tool(name)
    except local_servers.ToolMissing as missing:
        pytest.fail(str(missing), pytrace=False)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteService]:
    """Azurite's Table service on a free loopback port, in memory, for the whole session."""
    node_tool("azurite-table")  # a missing install fails the session with how to fix it
    with local_servers.running_azurite(tmp_path_factory.mktemp("azurite")) as (service, _):
        yield service


@pytest.fixture(scope="session")
def cosmos_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CosmosService]:
    """The Cosmos DB API test server (HTTPS, self-signed) on a free loopback port."""
    tool = node_tool("cosmosdb-server")
    workdir = tmp_path_factory.mktemp("cosmosdb-server")
    server = start_server(
        "cosmosdb-server", lambda port: [str(tool), "--host", HOST, "--port", str(port)], workdir
    )
    try:
        yield CosmosService(endpoint=f"https://{HOST}:{server.port}")
    finally:
        server.stop()


def azurite_endpoint_at(port: int) -> TableEndpoint:
    """An Azurite-style Table endpoint on a loopback port (an outage: nothing listens)."""
    return TableEndpoint(
        connection_string=f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};TableEndpoint=http://{HOST}:{port}/{AZURITE_ACCOUNT};"
    )


def unreachable_table_endpoint() -> TableEndpoint:
    """A Table endpoint where nothing listens: every call is refused, as in an outage."""
    return azurite_endpoint_at(free_port())
