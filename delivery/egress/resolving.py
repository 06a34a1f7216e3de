"""Fire-time vetting: resolve a host once and check every address it resolves to."""

import socket
from collections.abc import Callable, Collection, Sequence
from ipaddress import ip_address

from delivery.egress.errors import DestinationRefused
from delivery.egress.hosts import (
    is_allow_listed,
    looks_numeric,
    name_refusal,
    parse_address_literal,
)
from scheduling.network.addresses import IPAddress, IPNetwork, address_refusal
from scheduling.network.ports import DEFAULT_ALLOWED_PORTS, PortRanges, port_refusal

Resolver = Callable[[str, int], Sequence[IPAddress]]
"""Maps (host, port) to the addresses to try; raises OSError when the name does not resolve."""


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The OS resolver's TCP addresses for `host`, in the order it prefers them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ip_address(info[4][0]) for info in infos if isinstance(info[4][0], str)]


def resolve_and_vet(
    host: str,
    port: int,
    resolver: Resolver = system_resolver,
    allowed_networks: Sequence[IPNetwork] = (),
    allowed_hosts: Collection[str] = (),
    allowed_ports: PortRanges = DEFAULT_ALLOWED_PORTS,
) -> list[IPAddress]:
    """The addresses to connect to for `host`; raise DestinationRefused if any of them is denied."""
    # Before any lookup: a refused port needs no answer, and a redirect can name any port.
    if why := port_refusal(port, allowed_ports):
        raise DestinationRefused(why)
    host = host.removeprefix("[").removesuffix("]")
    literal = parse_address_literal(host)
    if literal is not None:
        if why := address_refusal(literal.address, allowed_networks):
            raise DestinationRefused(f"address {literal.address} is refused: {why}")
        return [literal.address]
    if looks_numeric(host):
        raise DestinationRefused(f"host {host!r} ends in a number but is not a valid IPv4 address")

    # Allow-listing a name exempts it from the name rules only: what it resolves to is checked
    # like any other answer, because whoever controls its DNS could point it anywhere later.
    if not is_allow_listed(host, allowed_hosts) and (why := name_refusal(host)):
        raise DestinationRefused(why)
    addresses = list(dict.fromkeys(resolver(host, port)))
    if not addresses:
        raise DestinationRefused(f"host {host!r} resolved to no address")
    refusals = [
        f"{address} ({why})"
        for address in addresses
        if (why := address_refusal(address, allowed_networks))
    ]
    if refusals:
        raise DestinationRefused(
            f"host {host!r} resolves to a refused address: {', '.join(refusals)}"
        )
    return addresses
