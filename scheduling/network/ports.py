"""Which TCP ports an http.call may connect to: HTTP_CALL_ALLOWED_PORTS."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Ports at or above 1024 where a database, cache, broker, mail relay or remote administration
# listens by default. An http.call's first line and headers are attacker-chosen text, and
# several of these services read line-based commands from whatever connects (Redis and
# memcached among them), so a scheduler inside the network must not be their client.
DENIED_BY_DEFAULT: dict[int, str] = {
    1433: "Microsoft SQL Server, Azure SQL",
    1434: "SQL Server Browser",
    1521: "Oracle Database",
    2049: "NFS",
    2375: "Docker Engine API",
    2376: "Docker Engine API (TLS)",
    2379: "etcd client API",
    2380: "etcd peer API",
    2525: "SMTP (alternative submission port)",
    3306: "MySQL, MariaDB",
    3389: "Remote Desktop",
    5432: "PostgreSQL",
    5671: "AMQP over TLS (Service Bus, RabbitMQ)",
    5672: "AMQP (RabbitMQ)",
    5984: "CouchDB",
    5985: "WinRM (HTTP)",
    5986: "WinRM (HTTPS)",
    6379: "Redis",
    6380: "Redis over TLS (Azure Cache for Redis)",
    6443: "Kubernetes API server",
    7000: "Cassandra inter-node",
    7001: "Cassandra inter-node (TLS)",
    9042: "Cassandra CQL",
    9092: "Kafka",
    9093: "Kafka over TLS (Event Hubs' Kafka endpoint)",
    9200: "Elasticsearch HTTP",
    9300: "Elasticsearch transport",
    10250: "kubelet API",
    10255: "Cosmos DB API for MongoDB, kubelet read-only API",
    11211: "memcached",
    27017: "MongoDB",
    27018: "MongoDB shard",
    27019: "MongoDB config server",
}

_PORT_ITEM = re.compile(r"([0-9]{1,5})(?:-([0-9]{1,5}))?")
_MAX_SETTING_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class PortRanges:
    """A set of TCP ports as sorted, non-overlapping inclusive ranges."""

    ranges: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, ranges: Iterable[tuple[int, int]]) -> PortRanges:
        merged: list[tuple[int, int]] = []
        for low, high in sorted(ranges):
            if merged and low <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], high))
            else:
                merged.append((low, high))
        return cls(tuple(merged))

    @classmethod
    def parse(cls, text: str) -> PortRanges:
        """`80,443,8000-8999` as PortRanges; ValueError naming HTTP_CALL_ALLOWED_PORTS."""
        if len(text) > _MAX_SETTING_LENGTH:
            raise ValueError(
                f"HTTP_CALL_ALLOWED_PORTS is longer than {_MAX_SETTING_LENGTH} characters"
            )
        ranges = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            match = _PORT_ITEM.fullmatch(item)
            if match is None or not 1 <= int(match[1]) <= int(match[2] or match[1]) <= 65535:
                raise ValueError(
                    f"HTTP_CALL_ALLOWED_PORTS: {item[:40]!r} is not a port (1-65535) or a "
                    "range of ports such as 8000-8999"
                )
            ranges.append((int(match[1]), int(match[2] or match[1])))
        return cls.of(ranges)

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and any(low <= port <= high for low, high in self.ranges)

    def __str__(self) -> str:
        return ",".join(f"{low}" if low == high else f"{low}-{high}" for low, high in self.ranges)


def _default_allowed_ports() -> PortRanges:
    allowed: list[tuple[int, int]] = [(80, 80), (443, 443)]
    low = 1024
    for denied in sorted(DENIED_BY_DEFAULT):
        if low < denied:
            allowed.append((low, denied - 1))
        low = denied + 1
    allowed.append((low, 65535))
    return PortRanges.of(allowed)


DEFAULT_ALLOWED_PORTS = _default_allowed_ports()
"""80, 443 and 1024-65535 without the ports of DENIED_BY_DEFAULT."""


def _shortened(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def port_refusal(port: int, allowed_ports: PortRanges) -> str | None:
    """Why `port` is refused, or None when HTTP_CALL_ALLOWED_PORTS allows it."""
    if port in allowed_ports:
        return None
    service = DENIED_BY_DEFAULT.get(port)
    known = f" ({service})" if service else ""
    default_rule = (
        "; by default 80, 443 and 1024-65535 are allowed, except well-known database, cache, "
        "broker, mail and administration ports"
        if allowed_ports == DEFAULT_ALLOWED_PORTS
        else f" ({_shortened(str(allowed_ports))})"
    )
    return f"port {port}{known} is not allowed by HTTP_CALL_ALLOWED_PORTS{default_rule}"
