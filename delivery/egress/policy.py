"""The egress policy as one value: allowed networks, allowed hosts and the resolver to use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from delivery.egress.resolving import Resolver, resolve_and_vet, system_resolver
from delivery.egress.urls import VettedUrl, vet_url
from scheduling.network.addresses import IPAddress, IPNetwork
from scheduling.network.ports import DEFAULT_ALLOWED_PORTS, PortRanges

if TYPE_CHECKING:
    from scheduling.settings import SchedulerSettings


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """Where http.call may connect: the one object both vetting stages and the transport use."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    allowed_hosts: frozenset[str] = frozenset()
    resolver: Resolver = system_resolver
    allowed_ports: PortRanges = DEFAULT_ALLOWED_PORTS

    @classmethod
    def from_settings(
        cls, settings: SchedulerSettings, resolver: Resolver = system_resolver
    ) -> EgressPolicy:
        """The policy the HTTP_CALL_ALLOWED_NETWORKS, _HOSTS and _PORTS settings describe."""
        return cls(
            allowed_networks=tuple(settings.http_call_allowed_networks),
            allowed_hosts=frozenset(settings.http_call_allowed_hosts),
            resolver=resolver,
            allowed_ports=settings.http_call_allowed_ports,
        )

    def vet_url(self, url: str) -> VettedUrl:
        """Create-time check of `url`; raises DestinationRefused."""
        return vet_url(url, self.allowed_networks, self.allowed_hosts, self.allowed_ports)

    def resolve_and_vet(
        self, host: str, port: int, resolver: Resolver | None = None
    ) -> list[IPAddress]:
        """Fire-time resolution of `host` with this policy's resolver (or `resolver`, which
        stands for it); raises DestinationRefused."""
        return resolve_and_vet(
            host,
            port,
            resolver or self.resolver,
            self.allowed_networks,
            self.allowed_hosts,
            self.allowed_ports,
        )
