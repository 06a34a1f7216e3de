"""Egress guard for http.call: only public destinations, unless an operator allows more.

Create time: `vet_url`. Fire time: `resolve_and_vet`, used by `PinnedTransport` on every connection.
"""

from scheduling.egress.addresses import IPAddress, IPNetwork, address_refusal, denial_reason
from scheduling.egress.errors import DestinationRefused
from scheduling.egress.policy import EgressPolicy
from scheduling.egress.ports import DEFAULT_ALLOWED_PORTS, PortRanges, port_refusal
from scheduling.egress.resolving import Resolver, resolve_and_vet, system_resolver
from scheduling.egress.transport import PinnedNetworkBackend, PinnedTransport, pinned_client
from scheduling.egress.urls import VettedUrl, vet_url

__all__ = [
    "DEFAULT_ALLOWED_PORTS",
    "DestinationRefused",
    "EgressPolicy",
    "IPAddress",
    "IPNetwork",
    "PinnedNetworkBackend",
    "PinnedTransport",
    "PortRanges",
    "Resolver",
    "VettedUrl",
    "address_refusal",
    "denial_reason",
    "pinned_client",
    "port_refusal",
    "resolve_and_vet",
    "system_resolver",
    "vet_url",
]
