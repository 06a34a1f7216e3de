"""Egress guard for http.call: only public destinations, unless an operator allows more.

Create time: `vet_url`. Fire time: `resolve_and_vet`, used by `PinnedTransport` on every connection.
"""

from delivery.egress.errors import DestinationRefused
from delivery.egress.policy import EgressPolicy
from delivery.egress.resolving import Resolver, resolve_and_vet, system_resolver
from delivery.egress.transport import PinnedNetworkBackend, PinnedTransport, pinned_client
from delivery.egress.urls import VettedUrl, vet_url
from scheduling.network.addresses import IPAddress, IPNetwork, address_refusal, denial_reason
from scheduling.network.ports import DEFAULT_ALLOWED_PORTS, PortRanges, port_refusal

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
