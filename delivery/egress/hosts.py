"""Reading a URL host: address literals in every notation the OS accepts, and refused names."""

import re
import socket
from collections.abc import Collection
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from scheduling.network.addresses import IPAddress

# What inet_aton might read as a number: decimal, octal (leading 0) or hex (0x) parts.
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")
# WHATWG URL rule: a host whose last label is a number is an IPv4 address or invalid.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_DNS_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_MAX_NAME_LENGTH = 253


@dataclass(frozen=True, slots=True)
class AddressLiteral:
    """A host that is an IP address; `canonical` is False for forms like 2130706433 or 0x7f.1."""

    address: IPAddress
    canonical: bool


def normalise_name(host: str) -> str:
    """Lower-case without one trailing dot: the form allow-lists and refusals compare."""
    return host.lower().removesuffix(".")


def parse_address_literal(host: str) -> AddressLiteral | None:
    """The address `host` (no brackets) denotes if the OS reads it as a literal, else None."""
    if ":" in host:
        try:
            return AddressLiteral(IPv6Address(host), canonical=True)
        except ValueError:
            return None
    name = normalise_name(host)
    if not _NUMERIC_HOST.fullmatch(name):
        return None
    try:
        # The OS's own parser, so every shorthand getaddrinfo accepts is recognised here too.
        address = IPv4Address(socket.inet_aton(name))
    except OSError:
        return None
    return AddressLiteral(address, canonical=str(address) == host)


def looks_numeric(host: str) -> bool:
    """Whether a host that is not a valid literal still ends in a number (1.2.3.999, x.0x1)."""
    return _NUMERIC_LABEL.fullmatch(normalise_name(host).rsplit(".", 1)[-1]) is not None


def is_allow_listed(host: str, allowed_hosts: Collection[str]) -> bool:
    """Whether `host` exactly matches an allowed host name, ignoring case and a trailing dot."""
    name = normalise_name(host)
    return any(name == normalise_name(allowed) for allowed in allowed_hosts)


def name_refusal(host: str) -> str | None:
    """Why the host name `host` is refused before any lookup, or None."""
    name = normalise_name(host)
    if not host.isascii():
        return f"host {host!r} is not ASCII; write an internationalised name in its xn-- form"
    labels = name.split(".")
    if len(name) > _MAX_NAME_LENGTH or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return f"host {host!r} is not a valid DNS name"
    if name == "localhost" or name.endswith(".localhost"):
        return f"host name {host!r} is refused: localhost names point at this machine"
    if name == "internal" or name.endswith(".internal"):
        return f"host name {host!r} is refused: .internal names point at internal services"
    if len(labels) == 1:
        return (
            f"single-label host name {host!r} is refused: "
            "it would be resolved through our network's search domains"
        )
    return None
