"""The scheduler's settings, read from app settings (environment variables)."""

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from scheduling.egress.addresses import IPNetwork, never_reachable_reason
from scheduling.egress.ports import DEFAULT_ALLOWED_PORTS, PortRanges
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

    # Flow control per destination (scheduling/flow_control.py): the defaults a job gets,
    # and the most a job may ask for.
    flow_max_parallel: int = Field(default=10, ge=1)
    flow_max_parallel_bound: int = Field(default=100, ge=1)
    flow_rate_per_second: float = Field(default=50.0, gt=0)
    flow_rate_per_second_bound: float = Field(default=500.0, gt=0)
    # After this long a slot whose release never came (its orchestration was terminated or
    # purged) is reclaimed: longer than functionTimeout (10 min), which ends any attempt.
    flow_slot_lease_seconds: float = Field(default=900, ge=60)
    # Waiters one flow key keeps in line; more ask again every FLOW_RECHECK_SECONDS.
    flow_queue_limit: int = Field(default=5000, ge=1, le=20_000)
    # How often a waiter asks again in case the word that its slot was granted got lost.
    flow_recheck_seconds: float = Field(default=300, ge=1)

    cosmos_endpoint: str = ""
    cosmos_key: str = ""
    cosmos_database: str = "scheduler"
    cosmos_container: str = "joblog"
    job_log_table: str = "joblog"
    # The job records; their due-time index is the table of the same name + "due", their
    # failed index (the dead letters) the table of the same name + "failed".
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
        return self

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
