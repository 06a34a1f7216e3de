"""The loopback guard refuses non-local sockets before the syscall and lets local ones through."""

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from tests.support import loopback_guard
from tests.support.loopback_guard import ForeignNetworkAccess, loopback_only

FOREIGN_V4 = ["10.0.0.1", "169.254.169.254", "192.0.2.1"]
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 to prove a socket is still usable after a refused connect."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def _loopback_bound_tcp() -> socket.socket:
    # Bound to 127.0.0.1, so even a broken guard could not send: Linux refuses to route a
    # loopback source to another host (EINVAL) before any packet is built.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.mark.parametrize("address", FOREIGN_V4)
def test_tcp_connect_is_refused_before_the_syscall(
    address: str, tcp_listener: socket.socket
) -> None:
    with _loopback_bound_tcp() as sock, loopback_only() as violations:
        with pytest.raises(ForeignNetworkAccess, match=address):
            sock.connect((address, 80))
        # The syscall would have failed with EINVAL; instead the socket is untouched and usable.
        sock.connect(tcp_listener.getsockname())
    assert violations == [f"connect to {(address, 80)!r}"]


@pytest.mark.parametrize("address", FOREIGN_V4)
def test_connect_ex_and_create_connection_are_refused(address: str) -> None:
    with _loopback_bound_tcp() as sock, loopback_only() as violations:
        with pytest.raises(ForeignNetworkAccess):
            sock.connect_ex((address, 80))
        with pytest.raises(ForeignNetworkAccess):
            socket.create_connection((address, 80), timeout=1, source_address=("127.0.0.1", 0))
    assert len(violations) == 2


@pytest.mark.parametrize("address", [*FOREIGN_V4, "8.8.8.8"])
def test_udp_connect_and_sendto_are_refused_without_sending(address: str) -> None:
    # A UDP connect sends nothing even when it runs, and it would set the peer address.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, loopback_only() as violations:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(ForeignNetworkAccess):
            sock.connect((address, 53))
        with pytest.raises(OSError, match=r"not connected|Transport endpoint"):
            sock.getpeername()
        with pytest.raises(ForeignNetworkAccess):
            sock.sendto(b"x", (address, 53))
    assert len(violations) == 2


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 in this Python")
def test_ipv6_udp_connect_is_refused() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock, loopback_only() as violations:
        with pytest.raises(ForeignNetworkAccess):
            sock.connect(("2001:db8::1", 53))
        with pytest.raises(OSError, match=r"not connected|Transport endpoint"):
            sock.getpeername()
    assert len(violations) == 1


def test_name_lookups_are_refused_before_they_query_dns() -> None:
    with loopback_only() as violations:
        with pytest.raises(ForeignNetworkAccess, match=r"example\.invalid"):
            socket.getaddrinfo("example.invalid", 80)
        with pytest.raises(ForeignNetworkAccess):
            socket.gethostbyname("example.invalid")
        with pytest.raises(ForeignNetworkAccess, match="reverse"):
            socket.gethostbyaddr("192.0.2.1")
    assert len(violations) == 3


def test_a_swallowed_refusal_is_still_recorded() -> None:
    # contextlib.suppress stands for a library that catches the error and retries or gives up.
    with loopback_only() as violations, _loopback_bound_tcp() as sock, suppress(OSError):
        sock.connect(("10.0.0.1", 80))
    assert violations == ["connect to ('10.0.0.1', 80)"]


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2"])
def test_ipv4_loopback_is_allowed(address: str) -> None:
    with socket.create_server((address, 0)) as server, loopback_only() as violations:
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            client.sendall(b"ping")
        with server.accept()[0] as accepted:
            assert accepted.recv(4) == b"ping"
    assert violations == []


def test_ipv6_loopback_is_allowed() -> None:
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with server, loopback_only() as violations:
        socket.create_connection(server.getsockname()[:2], timeout=5).close()
    assert violations == []


def test_localhost_and_numeric_lookups_are_allowed() -> None:
    with loopback_only() as violations:
        socket.getaddrinfo("localhost", 80)
        socket.getaddrinfo("10.0.0.1", 80)  # numeric: parsed, nothing is queried
        socket.getaddrinfo(None, 80)
    assert violations == []


def test_unix_sockets_are_allowed(tmp_path: Path) -> None:
    path = str(tmp_path / "guard.sock")
    with socket.socket(socket.AF_UNIX) as server, loopback_only() as violations:
        server.bind(path)
        server.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(path)
    assert violations == []


def test_a_nested_block_restores_the_state_around_it() -> None:
    # The suite's autouse fixture is active here; a nested block restores that state.
    assert loopback_guard._active
    with loopback_only():
        assert loopback_guard._active
    assert loopback_guard._active


def test_the_fixture_fails_a_test_that_swallowed_the_refusal(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "from tests.support.loopback_guard import loopback_guard as loopback_guard\n"
    )
    (tmp_path / "test_sample.py").write_text(
        textwrap.dedent(
            """
            import socket

            def test_swallows() -> None:
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", 0))
                    try:
                        sock.connect(("10.0.0.1", 80))
                    except OSError:
                        pass

            def test_stays_local() -> None:
                with socket.create_server(("127.0.0.1", 0)) as server:
                    socket.create_connection(server.getsockname()).close()
            """
        )
    )
    pytest_args = ["-q", "-rE", "-p", "no:cacheprovider", "-p", "no:asyncio", str(tmp_path)]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "loopback guard: connect to ('10.0.0.1', 80)" in result.stdout
    # The test body "passed" because it swallowed the error; the guard fails it at teardown.
    assert "ERROR test_sample.py::test_swallows - Failed: loopback guard" in result.stdout
    assert "2 passed, 1 error" in result.stdout
