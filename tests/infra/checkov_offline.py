"""Run checkov with every connection off this machine refused.

This file is executed by the checkov tool venv's Python (`python -I checkov_offline.py
<checkov arguments>`), not imported by the tests. checkov reaches out in a few places
(a PyPI version check when its banner module is imported, the platform's policy
mapping, ...); test_checkov.py switches those off with flags and environment
variables, and this launcher makes sure nothing slips through: an audit hook sees
every connect, send and name lookup made through Python's socket module, refuses
any that is not loopback or a Unix socket, and reports it on stderr with
BLOCKED_MARKER so that the test fails.

checkov is told (CHECKOV_PARALLELIZATION_TYPE=none) to scan in this one process, so
no worker process escapes the hook.
"""

from __future__ import annotations

import socket
import sys
from ipaddress import IPv6Address, ip_address
from typing import Any

BLOCKED_MARKER = "checkov-offline: blocked"

_LOCAL_NAMES = frozenset({"localhost", "localhost."})


def _is_loopback(host: object) -> bool:
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
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _target(event: str, args: tuple[Any, ...]) -> object | None:
    """The remote host an audited socket event would reach, or None if it stays local."""
    if event in {"socket.connect", "socket.sendto", "socket.sendmsg"}:
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) == socket.AF_UNIX or address is None:
            return None
        host = address[0] if isinstance(address, tuple) else address
        return None if _is_loopback(host) else host
    if event in {"socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex"}:
        host = args[0]
        return None if host is None or _is_loopback(host) else host
    if event == "socket.gethostbyaddr":
        return None if _is_loopback(args[0]) else args[0]
    return None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not event.startswith("socket."):
        return
    host = _target(event, args)
    if host is not None:
        sys.stderr.write(f"{BLOCKED_MARKER} {event} {host!r}\n")
        sys.stderr.flush()
        raise PermissionError(f"{event} to {host!r} refused: checkov must run offline")


def main() -> int:
    sys.addaudithook(_audit)
    from checkov.main import Checkov  # imported after the hook: the import itself phones home

    result = Checkov().run()
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
