"""A suite-wide guard: a test may open sockets to 127.0.0.0/8, ::1 and Unix sockets, nothing else.

It is a `sys.addaudithook` hook, so it also sees connects made by libraries and C extensions
through Python's socket module, and raises before the syscall. Audit hooks cannot be removed:
the module flag `_active` switches it on only while a guarded test runs.
"""

import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv6Address, ip_address

import pytest

_active = False
_installed = False
_install_lock = threading.Lock()
_violations: list[str] = []

# Names resolved from /etc/hosts rather than DNS; any other lookup could leave the machine.
_LOCAL_NAMES = frozenset({"localhost", "localhost.", socket.gethostname().lower()})
_SEND_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
_LOOKUP_EVENTS = frozenset({"socket.getaddrinfo", "socket.gethostbyname"})


class ForeignNetworkAccess(PermissionError):
    """A test tried to reach (or look up) something outside this machine."""


def _is_loopback_host(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        address = ip_address(host.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback  # 127.0.0.0/8 or ::1


def _is_local_lookup(host: object) -> bool:
    if host is None or _is_loopback_host(host):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    try:
        ip_address(host.partition("%")[0])
    except ValueError:
        return False
    return True  # a numeric address: parsed by the resolver, no query sent


def _refuse(what: str) -> None:
    _violations.append(what)
    raise ForeignNetworkAccess(f"loopback guard: test tried to {what}")


def _audit(event: str, args: tuple[object, ...]) -> None:
    if not _active:
        return
    if event in _SEND_EVENTS:
        sock, address = args[0], args[1]
        # getattr: sockets made by C code are `_socket.socket`, not `socket.socket`.
        if getattr(sock, "family", None) not in (socket.AF_INET, socket.AF_INET6):
            return  # Unix and other local families
        if address is None or (isinstance(address, tuple) and _is_loopback_host(address[0])):
            return
        _refuse(f"{event.removeprefix('socket.')} to {address!r}")
    elif event in _LOOKUP_EVENTS and not _is_local_lookup(args[0]):
        _refuse(f"look up {args[0]!r} ({event.removeprefix('socket.')}), which may query DNS")
    elif event == "socket.gethostbyaddr" and not _is_loopback_host(args[0]):
        # A reverse lookup of any other address is a DNS query, even for a numeric one.
        _refuse(f"reverse-look up {args[0]!r}, which may query DNS")


def install() -> None:
    """Add the audit hook once per process; it does nothing until a guard is active."""
    global _installed
    with _install_lock:
        if not _installed:
            sys.addaudithook(_audit)
            _installed = True


@contextmanager
def loopback_only() -> Iterator[list[str]]:
    """Refuse non-loopback sockets and DNS lookups inside the block; yields the violations seen."""
    global _active
    install()
    previous, _active = _active, True
    start = len(_violations)
    seen: list[str] = []
    try:
        yield seen
    finally:
        _active = previous
        seen.extend(_violations[start:])
        del _violations[start:]


@pytest.fixture(autouse=True)
def loopback_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it reached outside this machine, even if its code swallowed the error."""
    if request.node.get_closest_marker("live") is not None:
        yield  # live tests talk to a running host the user chose
        return
    with loopback_only() as violations:
        yield
    if violations:
        pytest.fail("loopback guard: " + "; ".join(violations), pytrace=False)
