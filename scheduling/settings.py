"""The scheduler's settings, read from app settings (environment variables)."""

import re
from dataclasses import dataclass
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scheduling.models import FLOW_KEY, canonical_flow_key
from scheduling.network.addresses import IPNetwork, never_reachable_reason
from scheduling.network.ports import DEFAULT_ALLOWED_PORTS, PortRanges
from scheduling.webhook_signing import parse_secrets


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _allowed_network(text: str) -> IPNetwork:
    """One HTTP_CALL_ALLOWED_NETWORKS entry, exactly as written: no host bits, no /0."""
    try:
        # strict: `10.1.2.3/8` is a typo for a /32 or for 10.0.0.0/8, never silently the /8.
        network = ip_network(text, strict=True)
    except ValueError as error:
        raise ValueError(
            f"HTTP_CALL_ALLOWED_NETWORKS: {text!r} is not a network in CIDR form "
            f"(write 10.1.2.0/24, or 10.1.2.3/32 for one address): {error}"
        ) from None
    return _check_allowed_network(network)


def _check_allowed_network(network: IPNetwork) -> IPNetwork:
    if network.prefixlen == 0:
        raise ValueError(
            f"HTTP_CALL_ALLOWED_NETWORKS: {network} would allow every address; "
            "list the networks you mean"
        )
    if why := never_reachable_reason(network):
        raise ValueError(f"HTTP_CALL_ALLOWED_NETWORKS: {why}, so allowing it has no effect")
    return network


# What an attempt may spend before its request goes out (its claim, unsealing): an attempt
# holding a flow slot starts only if this and its request's deadline end within the lease.
ATTEMPT_START_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class KeyLimits:
    """The limits FLOW_LIMITS gives one flow key."""

    max_parallel: int
    rate_per_second: float


# `key=max_parallel/rate_per_second`: a flow key as a job may name one, a whole number of
# slots, a rate with at most six decimals.
_FLOW_LIMITS_ENTRY = re.compile(
    f"(?P<key>{FLOW_KEY})=(?P<parallel>[0-9]{{1,6}})/(?P<rate>[0-9]{{1,9}}(?:\\.[0-9]{{1,6}})?)"
)
_MAX_FLOW_LIMITS_ENTRIES = 1000


def parse_flow_limits(text: str) -> dict[str, KeyLimits]:
    """FLOW_LIMITS: `key=max_parallel/rate_per_second` entries separated by commas, e.g.
    `api.example.com=5/20,hooks.example.com=10/0.5`; empty for none. Keys are compared
    without case (as host names are). Anything else (an empty entry, a repeated key, a
    zero) is refused, naming the entry."""
    if not text.strip():
        return {}
    entries = text.split(",")
    if len(entries) > _MAX_FLOW_LIMITS_ENTRIES:
        raise ValueError(f"FLOW_LIMITS: at most {_MAX_FLOW_LIMITS_ENTRIES} entries")
    limits: dict[str, KeyLimits] = {}
    for position, entry in enumerate(entries, start=1):
        match = _FLOW_LIMITS_ENTRY.fullmatch(entry.strip())
        if match is None:
            raise ValueError(
                f"FLOW_LIMITS: entry {position} ({entry.strip()[:200]!r}) is not "
                "key=max_parallel/rate_per_second, e.g. api.example.com=5/20"
            )
        key = canonical_flow_key(match["key"])
        parallel, rate = int(match["parallel"]), float(match["rate"])
        if key in limits:
            raise ValueError(f"FLOW_LIMITS: {key!r} is listed twice")
        if parallel < 1 or rate <= 0:
            raise ValueError(f"FLOW_LIMITS: {key!r} needs at least 1 slot and a rate above 0")
        limits[key] = KeyLimits(max_parallel=parallel, rate_per_second=rate)
    return limits


class SchedulerSettings(BaseSettings):
    """Every knob an operator can turn; names match the app setting names."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        arbitrary_types_allowed=True,
    )

    min_lead_seconds: int = Field(default=60, ge=1)
    max_horizon_days: int = Field(default=366, ge=1)
    max_request_bytes: int = Field(default=256 * 1024, ge=1024)

    http_call_default_timeout_seconds: float = Field(default=10.0, gt=0)
    http_call_max_timeout_seconds: float = Field(default=60.0, gt=0)
    http_call_max_request_body_bytes: int = Field(default=64 * 1024, ge=0)
    http_call_response_excerpt_bytes: int = Field(default=4096, ge=0)
    http_call_allowed_networks: Annotated[list[IPv4Network | IPv6Network], NoDecode] = []
    http_call_allowed_hosts: Annotated[list[str], NoDecode] = []
    # Empty means the default, so that a deployment can list the setting without changing it.
    http_call_allowed_ports: Annotated[PortRanges, NoDecode] = DEFAULT_ALLOWED_PORTS

    # Flow control per destination (scheduling/flow_control.py) is on for a job that asks
    # for it, for the keys FLOW_LIMITS names, and for every http.call when
    # FLOW_CONTROL_BY_DEFAULT is on; the defaults a job gets, and the most a job may ask for.
    flow_control_by_default: bool = False
    flow_limits: Annotated[dict[str, KeyLimits], NoDecode] = {}
    flow_max_parallel: int = Field(default=10, ge=1)
    flow_max_parallel_bound: int = Field(default=100, ge=1)
    flow_rate_per_second: float = Field(default=50.0, gt=0)
    flow_rate_per_second_bound: float = Field(default=500.0, gt=0)
    # After this long a slot whose release never came (its orchestration was terminated or
    # purged) is reclaimed; an attempt that could not end within it does not start.
    flow_slot_lease_seconds: float = Field(default=900, ge=60)
    # Waiters one flow key keeps in line; more ask again every FLOW_RECHECK_SECONDS.
    flow_queue_limit: int = Field(default=5000, ge=1, le=20_000)
    # How often a waiter asks again in case the word that its slot was granted got lost.
    flow_recheck_seconds: float = Field(default=300, ge=1)

    cosmos_endpoint: str = ""
    cosmos_key: str = ""
    cosmos_database: str = "scheduler"
    cosmos_container: str = "joblog"
    # The job records (and, unless Cosmos DB holds it, the job log: each job's entries in
    # its record's partition); their due-time index is the table of the same name + "due",
    # their failed index (the dead letters) the table of the same name + "failed".
    job_table: str = "jobs"
    # How long a failed job stays in the failed list (and its record in the store).
    failed_retention_days: int = Field(default=14, ge=1, le=3650)
    # Envelope encryption of payloads: a Key Vault key in Azure, local keys for development.
    # SecretStr: key material must never show up in a repr, a log line or an error.
    sealing_key_vault_key_url: str = ""
    sealing_keys: SecretStr = SecretStr("")
    request_fingerprint_key: SecretStr = SecretStr("")
    # Standard Webhooks signing keys, `whsec_<base64>` separated by spaces or commas: every
    # http.call and callback is signed with each (several while rotating); none, no signing.
    webhook_signing_secrets: SecretStr = SecretStr("")
    azure_web_jobs_storage: str = Field(default="", alias="AzureWebJobsStorage")
    # How long a dashboard sign-in lasts (there is no server-side session to revoke).
    dashboard_session_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # The charts read at most this many job records written in the last day.
    dashboard_chart_records: int = Field(default=5000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _flow_defaults_within_bounds(self) -> "SchedulerSettings":
        if self.flow_max_parallel > self.flow_max_parallel_bound:
            raise ValueError("FLOW_MAX_PARALLEL must not exceed FLOW_MAX_PARALLEL_BOUND")
        if self.flow_rate_per_second > self.flow_rate_per_second_bound:
            raise ValueError("FLOW_RATE_PER_SECOND must not exceed FLOW_RATE_PER_SECOND_BOUND")
        if self.flow_slot_lease_seconds <= (
            self.http_call_max_timeout_seconds + ATTEMPT_START_MARGIN_SECONDS
        ):
            raise ValueError(
                "FLOW_SLOT_LEASE_SECONDS must be more than HTTP_CALL_MAX_TIMEOUT_SECONDS + "
                f"{ATTEMPT_START_MARGIN_SECONDS}: an attempt that cannot end within its slot's "
                "lease never starts"
            )
        return self

    @field_validator("flow_limits", mode="before")
    @classmethod
    def _parse_flow_limits(cls, value: object) -> object:
        return parse_flow_limits(value) if isinstance(value, str) else value

    @field_validator("http_call_allowed_networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        items = _split_csv(value)
        if isinstance(items, list):
            return [_allowed_network(item) if isinstance(item, str) else item for item in items]
        return items

    @field_validator("http_call_allowed_networks")
    @classmethod
    def _check_networks(cls, networks: list[IPNetwork]) -> list[IPNetwork]:
        for network in networks:
            _check_allowed_network(network)
        return networks

    def webhook_signing_keys(self) -> tuple[bytes, ...]:
        """The keys every outgoing request is signed with (none: requests go unsigned).

        Parsed here, not by a validator: pydantic's errors carry the raw input, and this one
        is a secret. Raises SigningNotConfigured, which names an entry by position only.
        """
        return parse_secrets(self.webhook_signing_secrets.get_secret_value())

    @field_validator("http_call_allowed_ports", mode="before")
    @classmethod
    def _parse_ports(cls, value: object) -> object:
        if isinstance(value, str):
            listed = PortRanges.parse(value)
            return listed if listed.ranges else DEFAULT_ALLOWED_PORTS
        return value

    @field_validator("http_call_allowed_hosts", mode="before")
    @classmethod
    def _parse_names(cls, value: object) -> object:
        items = _split_csv(value)
        if isinstance(items, list):
            return [item.lower().rstrip(".") if isinstance(item, str) else item for item in items]
        return items


@lru_cache(maxsize=1)
def load_settings() -> SchedulerSettings:
    """The settings of this worker process (`load_settings.cache_clear()` re-reads them)."""
    return SchedulerSettings()
