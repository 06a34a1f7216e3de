"""Which IP addresses an http.call may reach: public unicast, unless an operator allows more."""

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Explicit tables rather than `ipaddress` properties alone: in Python 3.11 `is_global` is True
# for 224.0.0.0/4, ff00::/8, ::/96, 64:ff9b:1::/48 and 3fff::/20, its lists change between patch
# releases, it cannot know Azure's 168.63.129.16, and it gives no reason a caller can read.
# `is_global` stays as a backstop after the tables.
_DENIED_V4: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), why)
    for network, why in (
        ("0.0.0.0/8", "'this network' 0.0.0.0/8, which includes the unspecified address"),
        ("10.0.0.0/8", "private network (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT shared space (RFC 6598)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local, which includes the metadata service 169.254.169.254"),
        ("172.16.0.0/12", "private network (RFC 1918)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("192.0.2.0/24", "documentation range TEST-NET-1"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
        ("192.168.0.0/16", "private network (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking range (RFC 2544)"),
        ("198.51.100.0/24", "documentation range TEST-NET-2"),
        ("203.0.113.0/24", "documentation range TEST-NET-3"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved range 240.0.0.0/4"),
        # Public-looking, but inside Azure it is the WireServer (host agent, platform DNS).
        ("168.63.129.16/32", "Azure WireServer 168.63.129.16"),
    )
)

_DENIED_V6: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), why)
    for network, why in (
        ("::/128", "unspecified address"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64 range (RFC 8215)"),
        ("fc00::/7", "unique local (private) network"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "deprecated site-local"),
        ("ff00::/8", "multicast"),
        ("2001:db8::/32", "documentation range"),
        ("3fff::/20", "documentation range (RFC 9637)"),
    )
)

_IPV4_COMPATIBLE = IPv6Network("::/96")
_NAT64 = IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")


def _embedded_v4(address: IPv6Address) -> IPv4Address:
    return IPv4Address(int(address) & 0xFFFFFFFF)


def _v4_denial(address: IPv4Address) -> str | None:
    for network, why in _DENIED_V4:
        if address in network:
            return why
    if not address.is_global:
        return "not a globally routable address"
    return None


def _v6_denial(address: IPv6Address) -> str | None:
    for network, why in _DENIED_V6:
        if address in network:
            return why
    if address in _IPV4_COMPATIBLE:
        return f"deprecated IPv4-compatible form of {_embedded_v4(address)}"
    if address in _NAT64 and (embedded_why := _v4_denial(_embedded_v4(address))):
        return f"NAT64 form of {_embedded_v4(address)}, which is {embedded_why}"
    if address.sixtofour is not None and (sixtofour_why := _v4_denial(address.sixtofour)):
        return f"6to4 form of {address.sixtofour}, which is {sixtofour_why}"
    if address.teredo is not None:
        server, client = address.teredo
        return f"Teredo tunnel address (server {server}, client {client})"
    if address not in _NAT64 and address not in _GLOBAL_UNICAST_V6:
        return "outside the IPv6 global unicast range 2000::/3"
    if address not in _NAT64 and not address.is_global:
        return "not a globally routable address"
    return None


def denial_reason(address: IPAddress) -> str | None:
    """Why `address` is not a public unicast destination, or None when it is one."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        why = _v4_denial(address.ipv4_mapped)
        return None if why is None else f"IPv4-mapped form of {address.ipv4_mapped}, which is {why}"
    if isinstance(address, IPv4Address):
        return _v4_denial(address)
    return _v6_denial(address)


# Never reachable, whatever HTTP_CALL_ALLOWED_NETWORKS says: the metadata service (managed
# identity tokens) and WireServer answer any caller on the VM, the unspecified address reaches
# this machine on Linux, and multicast or broadcast is never one service an operator means.
_NEVER_REACHABLE: tuple[IPNetwork, ...] = tuple(
    ip_network(network)
    for network in (
        "0.0.0.0/8",
        "169.254.0.0/16",
        "168.63.129.16/32",
        "224.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "fe80::/10",
        "ff00::/8",
    )
)
# Reachable only through an allowed network inside these ranges: on the Function App's own
# machine listen the Functions host and its admin API, so a broad network that merely
# happens to contain loopback does not open it.
_LOOPBACK: tuple[IPNetwork, ...] = (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128"))


def _ipv4_forms(address: IPAddress) -> list[IPAddress]:
    """`address` and the IPv4 addresses a dual-stack socket or a translator would reach for it."""
    forms: list[IPAddress] = [address]
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        if address in _NAT64:
            forms.append(_embedded_v4(address))
        if address.sixtofour is not None:
            forms.append(address.sixtofour)
    return forms


def _in_any(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def _inside(inner: IPNetwork, outer: IPNetwork) -> bool:
    if isinstance(inner, IPv4Network) and isinstance(outer, IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, IPv6Network) and isinstance(outer, IPv6Network):
        return inner.subnet_of(outer)
    return False


def is_never_reachable(address: IPAddress) -> bool:
    """Whether `address` (or an IPv4 address it embeds) is refused whatever is allowed."""
    return any(_in_any(form, _NEVER_REACHABLE) for form in _ipv4_forms(address))


def never_reachable_reason(network: IPNetwork) -> str | None:
    """Why allowing `network` can have no effect (it lies inside a never-reachable range)."""
    for never in _NEVER_REACHABLE:
        if _inside(network, never):
            return f"{network} lies inside {never}, which is never reachable"
    return None


def _allowing_networks(address: IPAddress, networks: Iterable[IPNetwork]) -> list[IPNetwork]:
    """The networks holding `address` or the IPv4 address an IPv4-mapped one stands for."""
    candidates: list[IPAddress] = [address]
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return [network for network in networks if any(_in_any(c, [network]) for c in candidates)]


def is_in_networks(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    """Whether `address` (or the IPv4 address an IPv4-mapped one stands for) is in `networks`."""
    return bool(_allowing_networks(address, networks))


def address_refusal(address: IPAddress, allowed_networks: Iterable[IPNetwork]) -> str | None:
    """Why the policy refuses `address`, or None when it is public or inside an allowed network.

    Never-reachable ranges stay refused whatever is allowed, and loopback is allowed only by a
    network inside 127.0.0.0/8 or ::1/128.
    """
    allowing = _allowing_networks(address, allowed_networks)
    why = denial_reason(address)
    if is_never_reachable(address):
        return f"{why}; no setting can allow it" if allowing else why or "never reachable"
    if any(_in_any(form, _LOOPBACK) for form in _ipv4_forms(address)):
        if any(_inside(network, loop) for network in allowing for loop in _LOOPBACK):
            return None
        if allowing:
            return f"{why}; only an allowed network inside 127.0.0.0/8 or ::1/128 opens it"
        return why or "loopback"
    return None if allowing else why
