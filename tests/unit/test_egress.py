"""The egress policy: which addresses, URLs and resolved names an http.call may reach."""

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

import pytest
from pydantic import ValidationError

from delivery.egress import (
    DEFAULT_ALLOWED_PORTS,
    DestinationRefused,
    EgressPolicy,
    IPAddress,
    PortRanges,
    denial_reason,
    resolve_and_vet,
    system_resolver,
    vet_url,
)
from scheduling.network.ports import DENIED_BY_DEFAULT
from scheduling.settings import SchedulerSettings


class FakeResolver:
    """A resolver from a fixed table that records every lookup it answers."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append((host, port))
        if host not in self.table:
            raise OSError(f"unknown name {host}")
        return [ip_address(address) for address in self.table[host]]


def _no_lookup(host: str, port: int) -> list[IPAddress]:
    raise AssertionError(f"resolver must not be called for {host!r}")


# Refused when the job is created: (url, words the reason must contain).
CREATE_TIME_REFUSALS = [
    pytest.param("http://127.0.0.1/", "127.0.0.1 is refused: loopback", id="loopback"),
    pytest.param("http://127.0.0.1./", "written as '127.0.0.1.'", id="loopback-trailing-dot"),
    pytest.param("http://127.255.255.254:8080/", "loopback", id="loopback-with-port"),
    pytest.param("http://2130706433/", "127.0.0.1 (written as '2130706433')", id="decimal-int"),
    pytest.param("http://0177.0.0.1/", "127.0.0.1 (written as '0177.0.0.1')", id="octal"),
    pytest.param("http://0x7f.1/", "127.0.0.1 (written as '0x7f.1')", id="hex-short"),
    pytest.param("http://0X7F000001/", "127.0.0.1 (written as '0x7f000001')", id="hex-upper"),
    pytest.param("http://127.1/", "127.0.0.1 (written as '127.1')", id="two-part"),
    pytest.param("http://2852039166/", "169.254.169.254 (written as", id="metadata-decimal"),
    pytest.param("http://0251.0376.0251.0376/", "169.254.169.254 (written", id="metadata-octal"),
    pytest.param("http://0/", "0.0.0.0 (written as '0')", id="zero"),
    pytest.param("http://0.0.0.0:8080/", "'this network'", id="unspecified-v4"),
    pytest.param("http://10.0.0.1/", "private network", id="rfc1918-10"),
    pytest.param("http://172.16.0.1/", "private network", id="rfc1918-172"),
    pytest.param("http://192.168.1.1/", "private network", id="rfc1918-192"),
    pytest.param("http://169.254.169.254/latest/meta-data/", "metadata", id="metadata"),
    pytest.param("http://168.63.129.16/", "Azure WireServer", id="wireserver"),
    pytest.param("http://100.64.0.1/", "carrier-grade NAT", id="cgnat"),
    pytest.param("http://192.0.0.170/", "IETF protocol assignments", id="ietf-192-0-0"),
    pytest.param("http://198.18.0.1/", "benchmarking", id="benchmarking"),
    pytest.param("http://192.0.2.1/", "documentation", id="test-net-1"),
    pytest.param("http://203.0.113.9/", "documentation", id="test-net-3"),
    pytest.param("http://224.0.0.1/", "multicast", id="multicast-v4"),
    pytest.param("http://240.0.0.1/", "reserved", id="class-e"),
    pytest.param("http://255.255.255.255/", "broadcast", id="broadcast"),
    pytest.param("http://[::1]/", "::1 is refused: loopback", id="loopback-v6"),
    pytest.param("http://[::]/", "unspecified", id="unspecified-v6"),
    pytest.param("http://[::ffff:7f00:1]/", "IPv4-mapped form of 127.0.0.1", id="mapped-hex"),
    pytest.param("http://[::ffff:127.0.0.1]/", "IPv4-mapped form of 127.0.0.1", id="mapped"),
    pytest.param(
        "http://[::FFFF:A9FE:A9FE]:8080/", "mapped form of 169.254.169.254", id="mapped-metadata"
    ),
    pytest.param("http://[::7f00:1]/", "IPv4-compatible form of 127.0.0.1", id="v4-compatible"),
    pytest.param("http://[64:ff9b::a9fe:a9fe]/", "NAT64 form of 169.254.169.254", id="nat64"),
    pytest.param("http://[64:ff9b:1::a00:1]/", "local-use NAT64", id="nat64-local-use"),
    pytest.param("http://[2002:a00:1::]/", "6to4 form of 10.0.0.1", id="6to4-private"),
    pytest.param("http://[2002:7f00:1::1]/", "6to4 form of 127.0.0.1", id="6to4-loopback"),
    pytest.param("http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo", id="teredo"),
    pytest.param("http://[fe80::1]/", "link-local", id="link-local-v6"),
    pytest.param("http://[fe80::1%25eth0]/", "zone id", id="zone-id"),
    pytest.param("http://[fd00:ec2::254]/", "unique local", id="ula"),
    pytest.param("http://[ff02::1]/", "multicast", id="multicast-v6"),
    pytest.param("http://[2001:db8::1]/", "documentation", id="documentation-v6"),
    pytest.param("http://[::ffff:0:7f00:1]/", "outside the IPv6 global unicast", id="siit"),
    pytest.param("http://[v1.fe80::1]/", "not a valid IPv6 address", id="ipvfuture"),
    pytest.param("http://[2606:4700::1]x/", "between [2606:4700::1] and", id="after-bracket"),
    pytest.param("http://localhost/", "localhost names", id="localhost"),
    pytest.param("http://LOCALHOST./", "localhost names", id="localhost-upper-dot"),
    pytest.param("http://api.localhost:8080/", "localhost names", id="sub-localhost"),
    pytest.param("http://metadata.google.internal/", ".internal names", id="internal"),
    pytest.param("http://Service.INTERNAL./x", ".internal names", id="internal-upper-dot"),
    pytest.param("http://intranet/", "single-label host name", id="single-label"),
    pytest.param("http://example.com@127.0.0.1/", "user information", id="userinfo-host"),
    pytest.param("http://user:pass@example.com/", "user information", id="userinfo-creds"),
    pytest.param("http://127.0.0.1#@example.com/", "127.0.0.1 is refused", id="fragment-at"),
    pytest.param("http://%31%32%37.0.0.1/", "percent-encoded", id="percent-host"),
    pytest.param("http://exa%6dple.com/", "percent-encoded", id="percent-name"),
    pytest.param("http://example.com\\@127.0.0.1/", "backslash", id="backslash"),
    pytest.param("http://127.0.0.1\\.example.com/", "backslash", id="backslash-host"),
    pytest.param("http://exam ple.com/", "whitespace", id="space"),
    pytest.param("http://127.0.0.\n1/", "control characters", id="newline"),
    pytest.param("http://127.0.0.1\t.example.com/", "control characters", id="tab"),
    pytest.param("ftp://example.com/", "scheme 'ftp'", id="ftp"),
    pytest.param("file:///etc/passwd", "scheme 'file'", id="file"),
    pytest.param("gopher://127.0.0.1:6379/_", "scheme 'gopher'", id="gopher"),
    pytest.param("example.com/path", "scheme ''", id="no-scheme"),
    pytest.param("http:///path", "no host", id="empty-host"),
    pytest.param("http://:8080/", "no host", id="port-only"),
    pytest.param("http://example.com:0/", "port 0", id="port-zero"),
    pytest.param("http://example.com:65536/", "range 1-65535", id="port-too-big"),
    pytest.param("http://example.com:-1/", "range 1-65535", id="port-negative"),
    pytest.param("http://example.com:http/", "range 1-65535", id="port-name"),
    pytest.param("http://1.2.3.999/", "ends in a number", id="bad-octet"),
    pytest.param("http://1.2.3.4.5/", "ends in a number", id="five-parts"),
    pytest.param("http://foo.0x10/", "ends in a number", id="hex-label"),
    pytest.param("http://0x5d.0xb8.0xd8.0x22/", "write it as 93.184.216.34", id="hex-public"),
    pytest.param("http://exämple.com/", "not ASCII", id="idn-unicode"),
    pytest.param("http://\uff11\uff12\uff17.0.0.1/", "not ASCII", id="fullwidth-digits"),
    pytest.param("http://a..b.example.com/", "not a valid DNS name", id="empty-label"),
    pytest.param("http://a;b.example.com/", "not a valid DNS name", id="semicolon"),
]


@pytest.mark.parametrize(("url", "reason"), CREATE_TIME_REFUSALS)
def test_hostile_url_is_refused_at_create_time(url: str, reason: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        vet_url(url)
    assert reason in refused.value.reason
    assert str(refused.value) == refused.value.reason


def test_the_corpus_is_large() -> None:
    assert len(CREATE_TIME_REFUSALS) >= 40


# Names that look public when the job is created and resolve to a denied address when it fires.
FIRE_TIME_ANSWERS: dict[str, Sequence[str]] = {
    "private.example.com": ["10.0.0.1"],
    "metadata.example.com": ["169.254.169.254"],
    "wireserver.example.com": ["168.63.129.16"],
    "loopback6.example.com": ["::1"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "nat64.example.com": ["64:ff9b::a9fe:a9fe"],
    "cgnat.example.com": ["100.64.1.1"],
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "mixed.example.com": ["93.184.216.34", "10.0.0.1"],
    "mixed6.example.com": ["2606:4700:4700::1111", "fd00::1"],
}
FIRE_TIME_REFUSALS = [
    pytest.param("private.example.com", "10.0.0.1 (private network", id="private"),
    pytest.param("metadata.example.com", "169.254.169.254 (link-local", id="metadata"),
    pytest.param("wireserver.example.com", "168.63.129.16 (Azure WireServer", id="wireserver"),
    pytest.param("loopback6.example.com", "::1 (loopback)", id="loopback-v6"),
    pytest.param("mapped.example.com", "IPv4-mapped form of 127.0.0.1", id="mapped"),
    pytest.param("nat64.example.com", "NAT64 form of 169.254.169.254", id="nat64"),
    pytest.param("cgnat.example.com", "100.64.1.1 (carrier-grade NAT", id="cgnat"),
    pytest.param("127.0.0.1.nip.io", "127.0.0.1 (loopback)", id="ip-in-name"),
    pytest.param("mixed.example.com", "10.0.0.1 (private network", id="public-and-private"),
    pytest.param("mixed6.example.com", "fd00::1 (unique local", id="public-and-ula-v6"),
]


@pytest.mark.parametrize(("host", "reason"), FIRE_TIME_REFUSALS)
def test_name_resolving_to_denied_address_is_refused_at_fire_time(host: str, reason: str) -> None:
    vet_url(f"https://{host}/hook")  # a public-looking name passes create time
    resolver = FakeResolver(FIRE_TIME_ANSWERS)
    with pytest.raises(DestinationRefused) as refused:
        resolve_and_vet(host, 443, resolver)
    assert reason in refused.value.reason
    assert f"host {host!r} resolves to a refused address" in refused.value.reason
    assert resolver.calls == [(host, 443)]


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        pytest.param("localhost", "localhost names", id="localhost"),
        pytest.param("Foo.Localhost.", "localhost names", id="sub-localhost"),
        pytest.param("metadata.google.internal", ".internal names", id="internal"),
        pytest.param("intranet", "single-label", id="single-label"),
        pytest.param("2130706433", "127.0.0.1 is refused: loopback", id="decimal-literal"),
        pytest.param("0x7f.1", "127.0.0.1 is refused: loopback", id="hex-literal"),
        pytest.param("[::1]", "::1 is refused: loopback", id="bracketed-v6"),
        pytest.param("fe80::1%25eth0", "link-local", id="zone-id-from-httpx"),
        pytest.param("1.2.3.999", "ends in a number", id="bad-octet"),
    ],
)
def test_fire_time_refuses_names_and_literals_without_a_lookup(host: str, reason: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        resolve_and_vet(host, 80, _no_lookup)
    assert reason in refused.value.reason


def test_rebinding_between_checks_is_caught_by_the_later_check() -> None:
    answers = iter([["93.184.216.34"], ["10.0.0.1"]])

    def rebinding(host: str, port: int) -> list[IPAddress]:
        return [ip_address(address) for address in next(answers)]

    assert resolve_and_vet("rebind.example.com", 80, rebinding) == [ip_address("93.184.216.34")]
    with pytest.raises(DestinationRefused, match=r"10\.0\.0\.1 \(private network"):
        resolve_and_vet("rebind.example.com", 80, rebinding)


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/",
        "https://8.8.8.8:8443/path?q=1",
        "https://[2606:4700:4700::1111]/",
        "http://[::ffff:5db8:d822]/",
        "http://[64:ff9b::5db8:d822]/",
        "http://[2002:5db8:d822::1]/",
        "https://api.example.com/hook",
        "HTTPS://API.Example.COM./hook",
        "http://a_b-c.example.com:8080/x#frag",
        "http://example.com:/",
        "https://xn--exmple-cua.com/",
    ],
)
def test_public_destinations_pass_create_time(url: str) -> None:
    vetted = vet_url(url)
    assert vetted.url == url
    assert vetted.allow_listed is False


def test_vetted_url_carries_normalised_host_and_effective_port() -> None:
    assert vet_url("HTTPS://API.Example.COM./hook").host == "api.example.com"
    assert vet_url("https://api.example.com/").port == 443
    assert vet_url("http://api.example.com/").port == 80
    literal = vet_url("http://[2606:4700:4700::1111]:8080/")
    assert (literal.host, literal.port) == ("2606:4700:4700::1111", 8080)
    assert literal.address == ip_address("2606:4700:4700::1111")


def test_public_name_resolving_to_public_addresses_passes_fire_time() -> None:
    resolver = FakeResolver({"api.example.com": ["93.184.216.34", "2606:4700::1", "93.184.216.34"]})
    assert resolve_and_vet("api.example.com", 443, resolver) == [
        ip_address("93.184.216.34"),
        ip_address("2606:4700::1"),
    ]


def test_public_literal_passes_fire_time_without_a_lookup() -> None:
    assert resolve_and_vet("93.184.216.34", 80, _no_lookup) == [ip_address("93.184.216.34")]


NETWORKS: list[IPv4Network | IPv6Network] = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.3:8080/", "http://[::ffff:10.1.2.3]/", "http://[fd00::5]/"],
)
def test_literal_in_allowed_network_passes_create_time(url: str) -> None:
    assert vet_url(url, NETWORKS).allow_listed is True


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://192.168.1.1/", "private network"),
        ("http://0x0a.1/", "non-standard notation"),
        ("http://localhost/", "localhost names"),
    ],
)
def test_allowed_networks_allow_nothing_else(url: str, reason: str) -> None:
    with pytest.raises(DestinationRefused, match=reason):
        vet_url(url, NETWORKS)


def test_name_resolving_into_allowed_network_passes_fire_time() -> None:
    resolver = FakeResolver({"db.example.com": ["10.9.8.7", "fd00::7"]})
    assert resolve_and_vet("db.example.com", 80, resolver, NETWORKS) == [
        ip_address("10.9.8.7"),
        ip_address("fd00::7"),
    ]


def test_one_address_outside_the_allowed_networks_refuses_the_name() -> None:
    resolver = FakeResolver({"db.example.com": ["10.9.8.7", "192.168.0.1"]})
    with pytest.raises(DestinationRefused) as refused:
        resolve_and_vet("db.example.com", 80, resolver, NETWORKS)
    assert "192.168.0.1 (private network" in refused.value.reason
    assert "10.9.8.7" not in refused.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "http://receiver.internal/",
        "HTTP://Receiver.INTERNAL./hook",
        "https://receiver.internal:8443/x",
        "http://localhost:7071/",
        "http://intranet/",
    ],
)
def test_allow_listed_names_pass_create_time(url: str) -> None:
    vetted = vet_url(url, (), ["receiver.internal", "localhost", "INTRANET."])
    assert vetted.allow_listed is True


@pytest.mark.parametrize(
    "url", ["http://other.internal/", "http://sub.receiver.internal/", "http://127.0.0.1/"]
)
def test_allow_listing_is_an_exact_name_match(url: str) -> None:
    with pytest.raises(DestinationRefused):
        vet_url(url, (), ["receiver.internal"])


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param("169.254.169.254", "169.254.169.254 (link-local", id="metadata"),
        pytest.param("168.63.129.16", "168.63.129.16 (Azure WireServer", id="wireserver"),
        pytest.param("10.0.0.5", "10.0.0.5 (private network", id="private"),
        pytest.param("127.0.0.1", "127.0.0.1 (loopback", id="loopback"),
        pytest.param("::ffff:a9fe:a9fe", "mapped form of 169.254.169.254", id="mapped-metadata"),
    ],
)
def test_an_allow_listed_name_still_has_its_answer_checked(answer: str, reason: str) -> None:
    # Allowed once for a service, the name could later be pointed at the metadata service.
    resolver = FakeResolver({"Receiver.Internal.": [answer]})
    with pytest.raises(DestinationRefused) as refused:
        resolve_and_vet("Receiver.Internal.", 80, resolver, (), ["receiver.internal"])
    assert reason in refused.value.reason


def test_an_allow_listed_name_reaches_an_allowed_network() -> None:
    resolver = FakeResolver({"receiver.internal": ["10.0.0.5", "127.0.0.1"]})
    networks = [ip_network("10.0.0.0/24"), ip_network("127.0.0.0/8")]
    addresses = resolve_and_vet("receiver.internal", 80, resolver, networks, ["receiver.internal"])
    assert addresses == [ip_address("10.0.0.5"), ip_address("127.0.0.1")]


# Allowed networks that contain a never-reachable address: the address stays refused.
NEVER_REACHABLE = [
    pytest.param("169.254.169.254", "160.0.0.0/4", "link-local", id="metadata"),
    pytest.param("169.254.1.1", "169.254.0.0/16", "link-local", id="link-local"),
    pytest.param("168.63.129.16", "168.0.0.0/8", "WireServer", id="wireserver"),
    pytest.param("0.0.0.0", "0.0.0.0/8", "'this network'", id="unspecified-v4"),
    pytest.param("224.0.0.1", "192.0.0.0/2", "multicast", id="multicast-v4"),
    pytest.param("255.255.255.255", "192.0.0.0/2", "broadcast", id="broadcast"),
    pytest.param("::", "::/127", "unspecified", id="unspecified-v6"),
    pytest.param("fe80::1", "fe80::/10", "link-local", id="link-local-v6"),
    pytest.param("ff02::1", "ff00::/8", "multicast", id="multicast-v6"),
    pytest.param("::ffff:169.254.169.254", "160.0.0.0/4", "mapped form of", id="mapped"),
    pytest.param("64:ff9b::a9fe:a9fe", "64:ff9b::/96", "NAT64 form of", id="nat64"),
    pytest.param("2002:a9fe:a9fe::1", "2002::/16", "6to4 form of", id="6to4"),
]


@pytest.mark.parametrize(("address", "network", "reason"), NEVER_REACHABLE)
def test_never_reachable_addresses_stay_refused_whatever_is_allowed(
    address: str, network: str, reason: str
) -> None:
    allowed = [ip_network(network)]
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(DestinationRefused) as at_create:
        vet_url(f"http://{literal}/", allowed)
    assert reason in at_create.value.reason
    assert "no setting can allow it" in at_create.value.reason
    resolver = FakeResolver({"receiver.example.com": [address]})
    with pytest.raises(DestinationRefused, match="no setting can allow it"):
        resolve_and_vet("receiver.example.com", 80, resolver, allowed, ["receiver.example.com"])


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("127.0.0.1", "0.0.0.0/1"),
        ("127.0.0.1", "126.0.0.0/7"),
        ("::ffff:127.0.0.1", "0.0.0.0/1"),
        ("::1", "::/127"),
    ],
)
def test_loopback_needs_an_allowed_network_inside_loopback(address: str, network: str) -> None:
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(DestinationRefused, match=r"only an allowed network inside 127\.0\.0\.0/8"):
        vet_url(f"http://{literal}:8080/", [ip_network(network)])


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("127.0.0.1", "127.0.0.0/8"),
        ("127.0.0.1", "127.0.0.1/32"),
        ("::ffff:127.0.0.1", "127.0.0.0/8"),
        ("::1", "::1/128"),
    ],
)
def test_loopback_is_reachable_through_an_allowed_loopback_network(
    address: str, network: str
) -> None:
    literal = f"[{address}]" if ":" in address else address
    assert vet_url(f"http://{literal}:8080/", [ip_network(network)]).allow_listed
    resolver = FakeResolver({"dev.example.com": [address]})
    assert resolve_and_vet("dev.example.com", 8080, resolver, [ip_network(network)]) == [
        ip_address(address)
    ]


def test_name_without_addresses_is_refused() -> None:
    with pytest.raises(DestinationRefused, match="resolved to no address"):
        resolve_and_vet("empty.example.com", 80, FakeResolver({"empty.example.com": []}))


def test_resolver_failure_propagates_as_os_error() -> None:
    with pytest.raises(OSError, match="unknown name"):
        resolve_and_vet("missing.example.com", 80, FakeResolver({}))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("10.255.255.255", "private"),
        ("172.31.0.1", "private"),
        ("169.254.169.254", "metadata"),
        ("168.63.129.16", "WireServer"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("0.1.2.3", "'this network'"),
        ("192.0.0.9", "IETF protocol assignments"),
        ("198.19.255.255", "benchmarking"),
        ("198.51.100.1", "documentation"),
        ("239.255.255.250", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("250.1.1.1", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::ffff:10.0.0.1", "IPv4-mapped form of 10.0.0.1, which is private"),
        ("::a00:1", "IPv4-compatible"),
        ("64:ff9b::7f00:1", "NAT64 form of 127.0.0.1"),
        ("64:ff9b:1::1", "local-use NAT64"),
        ("2002:c0a8:101::1", "6to4 form of 192.168.1.1"),
        ("2001::1", "Teredo"),
        ("fc00::1", "unique local"),
        ("fdff::1", "unique local"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff05::2", "multicast"),
        ("2001:db8:1::1", "documentation"),
        ("3fff:fff::1", "documentation"),
        ("100::1", "outside the IPv6 global unicast"),
        ("5f00::1", "outside the IPv6 global unicast"),
        ("2001:2::1", "not a globally routable"),
    ],
)
def test_denial_reason_names_the_range(address: str, reason: str) -> None:
    why = denial_reason(ip_address(address))
    assert why is not None
    assert reason in why


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "20.50.2.1",
        "168.63.129.17",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_unicast_addresses_are_not_denied(address: str) -> None:
    assert denial_reason(ip_address(address)) is None


def test_policy_from_settings_uses_the_operator_allow_lists() -> None:
    settings = SchedulerSettings(
        http_call_allowed_networks="10.0.0.0/8, fd00::/8",
        http_call_allowed_hosts="Receiver.Internal.",
    )
    resolver = FakeResolver({"receiver.internal": ["10.2.3.4"]})
    policy = EgressPolicy.from_settings(settings, resolver)
    assert policy.vet_url("http://10.1.1.1/").allow_listed
    assert policy.vet_url("http://receiver.internal:8080/").allow_listed
    assert policy.resolve_and_vet("receiver.internal", 8080) == [ip_address("10.2.3.4")]
    with pytest.raises(DestinationRefused, match="private network"):
        policy.vet_url("http://192.168.0.1/")


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        pytest.param("10.1.2.3/8", "'10.1.2.3/8' is not a network in CIDR form", id="host-bits"),
        pytest.param("10.0.0.0/8, 192.168.1.1/16", "host bits set", id="second-item"),
        pytest.param("fd00::1/8", "host bits set", id="host-bits-v6"),
        pytest.param("0.0.0.0/0", "would allow every address", id="all-v4"),
        pytest.param("::/0", "would allow every address", id="all-v6"),
        pytest.param("169.254.169.254/32", "never reachable", id="metadata"),
        pytest.param("168.63.129.16/32", "never reachable", id="wireserver"),
        pytest.param("fe80::/64", "never reachable", id="link-local-v6"),
        pytest.param("10.0.0.0", "", id="bare-address-is-fine"),
    ],
)
def test_allowed_networks_are_parsed_strictly(setting: str, words: str) -> None:
    if not words:
        # A bare address is its own /32: nothing is widened.
        allowed = SchedulerSettings(http_call_allowed_networks=setting).http_call_allowed_networks
        assert allowed == [ip_network("10.0.0.0/32")]
        return
    with pytest.raises(ValidationError) as invalid:
        SchedulerSettings(http_call_allowed_networks=setting)
    assert "HTTP_CALL_ALLOWED_NETWORKS" in str(invalid.value)
    assert words in str(invalid.value)


def test_a_malformed_allowed_network_in_the_environment_names_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_CALL_ALLOWED_NETWORKS", "10.1.2.3/8")
    with pytest.raises(ValidationError, match=r"HTTP_CALL_ALLOWED_NETWORKS: '10\.1\.2\.3/8'"):
        SchedulerSettings()


def test_default_policy_refuses_everything_internal() -> None:
    policy = EgressPolicy(resolver=FakeResolver({"svc.example.com": ["10.0.0.1"]}))
    with pytest.raises(DestinationRefused):
        policy.vet_url("http://10.0.0.1/")
    with pytest.raises(DestinationRefused):
        policy.resolve_and_vet("svc.example.com", 80)


def test_system_resolver_reads_numeric_and_local_names_without_dns() -> None:
    assert system_resolver("127.0.0.1", 80) == [ip_address("127.0.0.1")]
    assert all(address.is_loopback for address in system_resolver("localhost", 80))


# -- ports: HTTP_CALL_ALLOWED_PORTS ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        pytest.param("http://cache.example.com:6379/", "port 6379 (Redis)", id="redis"),
        pytest.param("https://db.example.com:5432/", "port 5432 (PostgreSQL)", id="postgres"),
        pytest.param("http://93.184.216.34:3306/", "port 3306 (MySQL", id="mysql-literal"),
        pytest.param("http://mail.example.com:25/", "port 25 ", id="smtp"),
        pytest.param("http://mail.example.com:587/", "port 587 ", id="submission"),
        pytest.param("http://host.example.com:22/", "port 22 ", id="ssh"),
        pytest.param("http://[2606:4700::1]:11211/", "port 11211 (memcached)", id="memcached-v6"),
        pytest.param("http://docker.example.com:2375/", "port 2375 (Docker", id="docker"),
    ],
)
def test_default_ports_refuse_services_that_are_not_http(url: str, words: str) -> None:
    with pytest.raises(DestinationRefused) as refused:
        vet_url(url)
    assert words in refused.value.reason
    assert "HTTP_CALL_ALLOWED_PORTS" in refused.value.reason
    assert "by default 80, 443 and 1024-65535" in refused.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "http://api.example.com/",
        "https://api.example.com/",
        "http://api.example.com:1024/",
        "https://api.example.com:8443/",
        "http://api.example.com:8080/",
        "http://api.example.com:65535/",
    ],
)
def test_default_ports_allow_web_ports(url: str) -> None:
    assert vet_url(url).port in DEFAULT_ALLOWED_PORTS


def test_the_default_port_list_is_what_the_docs_say() -> None:
    for port in (80, 443, 1024, 3000, 5000, 8000, 8080, 8443, 9000, 65535):
        assert port in DEFAULT_ALLOWED_PORTS
    for port in (1, 21, 22, 23, 25, 53, 110, 143, 445, 465, 587, 993, 995, 1023):
        assert port not in DEFAULT_ALLOWED_PORTS
    for port in DENIED_BY_DEFAULT:
        assert port >= 1024
        assert port not in DEFAULT_ALLOWED_PORTS
    assert SchedulerSettings().http_call_allowed_ports == DEFAULT_ALLOWED_PORTS


def test_a_refused_port_is_refused_at_fire_time_before_any_lookup() -> None:
    with pytest.raises(DestinationRefused, match=r"port 6379 \(Redis\) is not allowed"):
        resolve_and_vet("cache.example.com", 6379, _no_lookup)
    policy = EgressPolicy(allowed_ports=PortRanges.parse("443"), resolver=_no_lookup)
    with pytest.raises(DestinationRefused, match=r"port 80 is not allowed .*\(443\)"):
        policy.resolve_and_vet("api.example.com", 80)


def test_allowed_ports_replace_the_default_list() -> None:
    settings = SchedulerSettings(http_call_allowed_ports="443, 6379, 8000-8999")
    policy = EgressPolicy.from_settings(settings, FakeResolver({"cache.example.com": ["8.8.8.8"]}))
    assert policy.vet_url("https://cache.example.com:6379/").port == 6379
    assert policy.vet_url("https://api.example.com:8999/").port == 8999
    assert policy.resolve_and_vet("cache.example.com", 6379) == [ip_address("8.8.8.8")]
    with pytest.raises(DestinationRefused, match="port 80 is not allowed"):
        policy.vet_url("http://api.example.com/")
    with pytest.raises(DestinationRefused, match="port 9000 is not allowed"):
        policy.vet_url("http://api.example.com:9000/")


@pytest.mark.parametrize("setting", ["", "  ", ","])
def test_empty_allowed_ports_mean_the_default(setting: str) -> None:
    assert (
        SchedulerSettings(http_call_allowed_ports=setting).http_call_allowed_ports
        == DEFAULT_ALLOWED_PORTS
    )


@pytest.mark.parametrize("setting", ["0", "65536", "8080-80", "http", "80;443", "1-2-3", "-5"])
def test_malformed_allowed_ports_name_the_setting(setting: str) -> None:
    with pytest.raises(ValidationError, match=r"HTTP_CALL_ALLOWED_PORTS: .* is not a port"):
        SchedulerSettings(http_call_allowed_ports=setting)
