"""Create-time vetting of an http.call URL, before it is stored."""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address
from urllib.parse import SplitResult, urlsplit

from delivery.egress.errors import DestinationRefused
from delivery.egress.hosts import (
    AddressLiteral,
    is_allow_listed,
    looks_numeric,
    name_refusal,
    normalise_name,
    parse_address_literal,
)
from scheduling.network.addresses import IPAddress, IPNetwork, address_refusal, denial_reason
from scheduling.network.ports import DEFAULT_ALLOWED_PORTS, PortRanges, port_refusal

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class VettedUrl:
    """A URL that passed create-time vetting; names among them are vetted again when they fire."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress | None
    allow_listed: bool


def _split(url: str) -> SplitResult:
    # urlsplit silently drops tab and newline and other parsers treat "\\" as "/": refuse
    # them rather than guess which reading the HTTP client will make.
    if any(char <= " " or char == "\x7f" for char in url):
        raise DestinationRefused("URL contains whitespace or control characters")
    if "\\" in url:
        raise DestinationRefused("URL contains a backslash, which URL parsers read differently")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise DestinationRefused(f"URL cannot be parsed: {error}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise DestinationRefused(f"scheme {parts.scheme!r} is not allowed; use http or https")
    if "@" in parts.netloc:
        raise DestinationRefused(
            "URL contains user information (user:password@); send credentials in a header"
        )
    return parts


def _port_of(parts: SplitResult) -> int:
    try:
        port = parts.port
    except ValueError:
        raise DestinationRefused("URL port is not a number in the range 1-65535") from None
    if port == 0:
        raise DestinationRefused("URL port 0 is outside the range 1-65535")
    return _DEFAULT_PORTS[parts.scheme] if port is None else port


def _host_of(parts: SplitResult) -> str:
    host = parts.hostname or ""
    bracketed = parts.netloc.startswith("[")
    if not host:
        raise DestinationRefused("URL has no host")
    if "%" in host:
        if bracketed:
            raise DestinationRefused("IPv6 zone ids (fe80::1%25eth0) are not allowed in a host")
        raise DestinationRefused(f"host {host!r} is percent-encoded; write it plainly")
    if not host.isascii():
        raise DestinationRefused(
            f"host {host!r} is not ASCII; write an internationalised name in its xn-- form"
        )
    if bracketed:
        literal = parse_address_literal(host)
        if literal is None or not isinstance(literal.address, IPv6Address):
            raise DestinationRefused(f"host [{host}] is not a valid IPv6 address")
        if parts.netloc.partition("]")[2][:1] not in ("", ":"):
            raise DestinationRefused(f"URL has characters between [{host}] and its port")
    return host


def _vet_literal(host: str, literal: AddressLiteral, allowed_networks: Sequence[IPNetwork]) -> bool:
    """Raise unless literal `host` may be reached; True when only an allowed network permits it."""
    address = literal.address
    if why := address_refusal(address, allowed_networks):
        written = "" if literal.canonical else f" (written as {host!r})"
        raise DestinationRefused(f"address {address}{written} is refused: {why}")
    if not literal.canonical:
        raise DestinationRefused(
            f"host {host!r} is the address {address} in a non-standard notation; "
            f"write it as {address}"
        )
    return denial_reason(address) is not None


def vet_url(
    url: str,
    allowed_networks: Sequence[IPNetwork] = (),
    allowed_hosts: Collection[str] = (),
    allowed_ports: PortRanges = DEFAULT_ALLOWED_PORTS,
) -> VettedUrl:
    """Check an http.call URL when it is scheduled; raise DestinationRefused with the reason."""
    parts = _split(url)
    port = _port_of(parts)
    host = _host_of(parts)
    literal = parse_address_literal(host)
    if literal is not None:
        in_allowed_network = _vet_literal(host, literal, allowed_networks)
        address = literal.address
        vetted = VettedUrl(url, parts.scheme, str(address), port, address, in_allowed_network)
    elif looks_numeric(host):
        raise DestinationRefused(f"host {host!r} ends in a number but is not a valid IPv4 address")
    elif is_allow_listed(host, allowed_hosts):
        vetted = VettedUrl(url, parts.scheme, normalise_name(host), port, None, allow_listed=True)
    elif why := name_refusal(host):
        raise DestinationRefused(why)
    else:
        vetted = VettedUrl(url, parts.scheme, normalise_name(host), port, None, allow_listed=False)
    if why := port_refusal(port, allowed_ports):
        raise DestinationRefused(why)
    return vetted
