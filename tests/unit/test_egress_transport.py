"""The pinned transport: each connection is resolved once, vetted, and made to that address."""

import socket
import ssl
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer

from delivery.egress import (
    DestinationRefused,
    EgressPolicy,
    IPAddress,
    PinnedNetworkBackend,
    PinnedTransport,
    PortRanges,
    pinned_client,
)

LOOPBACK = [ip_network("127.0.0.0/8")]


class ScriptedResolver:
    """Answers each lookup with the next scripted answer (the last one repeats) and counts them."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append((host, port))
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        return [ip_address(address) for address in answer]


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    """An HTTP server on 127.0.0.1 only (not "localhost", which may be ::1)."""
    httpserver = HTTPServer(host="127.0.0.1", port=0)
    httpserver.start()
    yield httpserver
    httpserver.stop()


@pytest.fixture(autouse=True)
def _fresh_server(server: HTTPServer) -> Iterator[None]:
    server.clear()
    yield
    server.clear()


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every address httpcore's socket layer is asked to connect to."""
    seen: list[tuple[Any, ...]] = []
    real: Callable[..., socket.socket] = socket.create_connection

    def recording(address: tuple[Any, ...], *args: Any, **kwargs: Any) -> socket.socket:
        seen.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", recording)
    return seen


def test_allow_listed_name_reaches_local_server_with_exact_request(server: HTTPServer) -> None:
    resolver = ScriptedResolver(["127.0.0.1"])
    policy = EgressPolicy(
        allowed_networks=tuple(LOOPBACK),
        allowed_hosts=frozenset({"receiver.test"}),
        resolver=resolver,
    )
    host = f"receiver.test:{server.port}"
    server.expect_request(
        "/hook",
        method="POST",
        query_string="run=1",
        headers={"Host": host, "X-Job": "42", "Content-Type": "application/json"},
        data=b'{"hello":"world"}',
    ).respond_with_data("done", status=201)

    with pinned_client(policy, timeout=5.0) as client:
        response = client.post(
            f"http://{host}/hook?run=1",
            headers={"X-Job": "42", "Content-Type": "application/json"},
            content=b'{"hello":"world"}',
        )

    assert (response.status_code, response.text) == (201, "done")
    assert resolver.calls == [("receiver.test", server.port)]
    [(request, _)] = server.log
    assert request.headers["Host"] == host
    assert request.get_data() == b'{"hello":"world"}'
    server.check_assertions()


def test_resolver_is_called_once_per_connection_and_the_vetted_address_is_used(
    server: HTTPServer, connects: list[tuple[Any, ...]]
) -> None:
    # First answer allowed, every later one denied: a second lookup would refuse the request.
    resolver = ScriptedResolver(["127.0.0.1"], ["10.0.0.1"])
    policy = EgressPolicy(allowed_networks=tuple(LOOPBACK), resolver=resolver)
    server.expect_request("/").respond_with_data("pinned")
    url = f"http://pinned.example.com:{server.port}/"

    with pinned_client(policy, timeout=5.0) as client:
        assert client.get(url).text == "pinned"
    assert resolver.calls == [("pinned.example.com", server.port)]
    assert connects == [("127.0.0.1", server.port)]

    # A new connection is vetted again, with the answer the resolver gives now.
    with pinned_client(policy, timeout=5.0) as client, pytest.raises(DestinationRefused):
        client.get(url)
    assert len(resolver.calls) == 2
    assert connects == [("127.0.0.1", server.port)]


def test_rebinding_after_the_check_is_refused_without_sending(
    server: HTTPServer, connects: list[tuple[Any, ...]]
) -> None:
    # The first answer is public (what an earlier check saw); when the job fires the name
    # points at this machine, where the server is listening.
    resolver = ScriptedResolver(["93.184.216.34"], ["127.0.0.1"])
    policy = EgressPolicy(resolver=resolver)
    policy.vet_url(f"http://rebind.example.com:{server.port}/")
    assert policy.resolve_and_vet("rebind.example.com", server.port) == [
        ip_address("93.184.216.34")
    ]

    with pinned_client(policy, timeout=5.0) as client, pytest.raises(DestinationRefused) as refused:
        client.get(f"http://rebind.example.com:{server.port}/")

    assert "127.0.0.1 (loopback)" in refused.value.reason
    assert connects == []
    assert server.log == []


def test_public_and_private_answer_is_refused_without_sending(
    server: HTTPServer, connects: list[tuple[Any, ...]]
) -> None:
    policy = EgressPolicy(resolver=ScriptedResolver(["93.184.216.34", "127.0.0.1"]))

    with pinned_client(policy, timeout=5.0) as client, pytest.raises(DestinationRefused) as refused:
        client.post(f"http://mixed.example.com:{server.port}/", content=b"secret")

    assert "127.0.0.1 (loopback)" in refused.value.reason
    assert connects == []
    assert server.log == []


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "localhost", "[::1]"])
def test_literal_and_local_hosts_are_refused_without_a_lookup(
    host: str, server: HTTPServer, connects: list[tuple[Any, ...]]
) -> None:
    resolver = ScriptedResolver()
    client = pinned_client(EgressPolicy(resolver=resolver), timeout=5.0)
    with client, pytest.raises(DestinationRefused):
        client.get(f"http://{host}:{server.port}/")
    assert resolver.calls == []
    assert connects == []


def test_literal_in_allowed_network_connects_without_a_lookup(server: HTTPServer) -> None:
    resolver = ScriptedResolver()
    policy = EgressPolicy(allowed_networks=tuple(LOOPBACK), resolver=resolver)
    server.expect_request("/").respond_with_data("literal")
    with pinned_client(policy, timeout=5.0) as client:
        assert client.get(server.url_for("/")).text == "literal"
    assert resolver.calls == []


def test_redirect_to_a_denied_address_is_refused(server: HTTPServer) -> None:
    policy = EgressPolicy(
        allowed_networks=(ip_network("127.0.0.1/32"),),
        allowed_hosts=frozenset({"receiver.test"}),
        resolver=ScriptedResolver(["127.0.0.1"]),
    )
    server.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": f"http://2130706434:{server.port}/target"}
    )
    transport = PinnedTransport(policy)
    client = httpx.Client(transport=transport, follow_redirects=True, timeout=5.0)
    with client, pytest.raises(DestinationRefused, match=r"127\.0\.0\.2 is refused: loopback"):
        client.get(f"http://receiver.test:{server.port}/start")
    assert [request.path for request, _ in server.log] == ["/start"]


def test_a_port_outside_the_allowed_ports_is_refused_before_connecting(
    server: HTTPServer, connects: list[tuple[Any, ...]]
) -> None:
    # A job accepted under a wider port list fires under today's: the port is checked again.
    resolver = ScriptedResolver(["127.0.0.1"])
    policy = EgressPolicy(
        allowed_networks=tuple(LOOPBACK), allowed_ports=PortRanges.parse("443"), resolver=resolver
    )
    client = pinned_client(policy, timeout=5.0)
    with client, pytest.raises(DestinationRefused, match=f"port {server.port} is not allowed"):
        client.get(f"http://receiver.example.com:{server.port}/")
    assert resolver.calls == []
    assert connects == []
    assert server.log == []


def test_next_vetted_address_is_tried_when_one_does_not_answer(
    server: HTTPServer, connects: list[tuple[Any, ...]]
) -> None:
    # The server listens on 127.0.0.1 only, so 127.0.0.2 refuses the connection.
    policy = EgressPolicy(
        allowed_networks=tuple(LOOPBACK), resolver=ScriptedResolver(["127.0.0.2", "127.0.0.1"])
    )
    server.expect_request("/").respond_with_data("second")
    with pinned_client(policy, timeout=5.0) as client:
        assert client.get(f"http://two.example.com:{server.port}/").text == "second"
    assert connects == [("127.0.0.2", server.port), ("127.0.0.1", server.port)]


def test_unresolvable_name_is_a_connect_error(server: HTTPServer) -> None:
    def failing(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    client = pinned_client(EgressPolicy(resolver=failing), timeout=5.0)
    with client, pytest.raises(httpx.ConnectError, match=r"cannot resolve 'nowhere\.example"):
        client.get("http://nowhere.example.com/")


def test_environment_proxies_are_ignored(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://10.0.0.1:3128")
    policy = EgressPolicy(allowed_networks=tuple(LOOPBACK), resolver=ScriptedResolver())
    server.expect_request("/").respond_with_data("direct")
    with pinned_client(policy, timeout=5.0) as client:
        assert client.get(server.url_for("/")).text == "direct"


def test_unix_sockets_are_refused() -> None:
    backend = PinnedNetworkBackend(EgressPolicy(resolver=ScriptedResolver()))
    with pytest.raises(DestinationRefused, match="Unix domain sockets"):
        backend.connect_unix_socket("/var/run/docker.sock")


def test_connect_failure_maps_to_httpcore_error() -> None:
    class Refusing(httpcore.NetworkBackend):
        def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
            raise httpcore.ConnectError("refused")

    policy = EgressPolicy(allowed_networks=tuple(LOOPBACK), resolver=ScriptedResolver())
    with pytest.raises(httpcore.ConnectError, match="refused"):
        PinnedNetworkBackend(policy, inner=Refusing()).connect_tcp("127.0.0.1", 8080)


def _certificate(name: str, directory: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate for DNS name `name` only (no IP): (cert file, key file, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, pem.decode()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[HTTPServer, str, list[str | None]]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only receiver.test; records SNI."""
    cert_file, key_file, pem = _certificate("receiver.test", tmp_path)
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda _socket, name, _context: server_names.append(name)
    httpserver = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    httpserver.start()
    yield httpserver, pem, server_names
    httpserver.stop()


def test_tls_verifies_the_host_name_while_connecting_to_the_pinned_address(
    tls_server: tuple[HTTPServer, str, list[str | None]],
) -> None:
    server, pem, server_names = tls_server
    server.expect_request("/").respond_with_data("secure")
    policy = EgressPolicy(
        allowed_networks=tuple(LOOPBACK),
        allowed_hosts=frozenset({"receiver.test"}),
        resolver=ScriptedResolver(["127.0.0.1"]),
    )
    trusted = ssl.create_default_context(cadata=pem)
    with pinned_client(policy, timeout=5.0, verify=trusted) as client:
        response = client.get(f"https://receiver.test:{server.port}/")
    assert response.text == "secure"
    assert server_names == ["receiver.test"]


def test_tls_refuses_a_certificate_for_another_name(
    tls_server: tuple[HTTPServer, str, list[str | None]],
) -> None:
    server, pem, _ = tls_server
    policy = EgressPolicy(
        allowed_networks=tuple(LOOPBACK),
        allowed_hosts=frozenset({"other.test"}),
        resolver=ScriptedResolver(["127.0.0.1"]),
    )
    trusted = ssl.create_default_context(cadata=pem)
    client = pinned_client(policy, timeout=5.0, verify=trusted)
    with client, pytest.raises(httpx.ConnectError, match="certificate verify failed"):
        client.get(f"https://other.test:{server.port}/")
    assert server.log == []
