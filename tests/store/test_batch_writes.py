"""A batch's async writes: the same options from the environment as the sync clients (TLS
verified with requests' CA bundle), one sign-in for all of a batch's tables."""

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from storage.batch_writes import BatchWrites
from storage.job_store import TableJobStore
from storage.table_storage import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    AiohttpEnvironment,
    TableEndpoint,
    aiohttp_environment,
    open_async_tables,
)
from tests.support.loopback_tls import self_signed_certificate


def test_the_async_clients_take_the_proxy_and_ca_bundle_the_sync_clients_take() -> None:
    assert aiohttp_environment({}) == AiohttpEnvironment(proxies=False, ca_bundle=None)
    assert aiohttp_environment({"HTTPS_PROXY": "http://127.0.0.1:3128"}).proxies
    # requests' CA bundle (a TLS-inspecting proxy's root, say) is aiohttp's to verify with too.
    both = {"REQUESTS_CA_BUNDLE": "/etc/ca.pem", "CURL_CA_BUNDLE": "/x"}
    assert aiohttp_environment(both) == AiohttpEnvironment(proxies=False, ca_bundle="/etc/ca.pem")
    assert aiohttp_environment({"CURL_CA_BUNDLE": "/x"}).ca_bundle == "/x"
    # As requests: proxies in either case, the bundle's name in upper case only.
    assert aiohttp_environment({"https_proxy": "http://127.0.0.1:3128"}).proxies
    assert aiohttp_environment({"requests_ca_bundle": "/x"}).ca_bundle is None


async def test_a_batch_on_a_managed_identity_signs_in_once_for_all_its_tables() -> None:
    endpoint = TableEndpoint(table_service_uri="https://account.table.core.windows.net")
    store = TableJobStore.open(endpoint, "jobs")
    try:
        async with BatchWrites(store) as writes:
            # No network call yet: the clients only hold their credential.
            tables = (writes._records, writes._due, writes._labels)
            assert len({id(table.credential) for table in tables}) == 1
            assert tables[0].credential is writes._credential
    finally:
        store.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTPS server on loopback with a certificate of its own (not one any system trusts):
    its URL, the certificate's file, and the request lines it got."""
    cert_file, key_file = self_signed_certificate(tmp_path, tmp_path / "cert.pem")
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.requestline)
            self.send_response(400)  # not retried: one request seen
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert_file, seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("trusted", [True, False])
async def test_the_async_clients_verify_tls_with_requests_ca_bundle(
    tls_server: tuple[str, Path, list[str]], monkeypatch: pytest.MonkeyPatch, trusted: bool
) -> None:
    """Behind a TLS-inspecting proxy whose root is only in REQUESTS_CA_BUNDLE, a batch's
    writes get through as the sync clients' do; without it, the connection is refused."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError

    url, certificate, seen = tls_server
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(variable, raising=False)
    if trusted:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    connection = (
        f"DefaultEndpointsProtocol=https;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"TableEndpoint={url}/{AZURITE_ACCOUNT};"
    )
    [table], _ = open_async_tables(TableEndpoint(connection_string=connection), ["jobs"])
    async with table:
        with pytest.raises(HttpResponseError if trusted else ServiceRequestError) as raised:
            await table.create_entity({"PartitionKey": "p", "RowKey": "r"})
    if trusted:
        assert len(seen) == 1
        assert seen[0].startswith("POST /")
    else:
        assert "CERTIFICATE_VERIFY_FAILED" in str(raised.value)
        assert seen == []
