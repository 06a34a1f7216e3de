"""When a failed attempt is tried again: exponential backoff, Retry-After, a bounded count."""

import hashlib
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Each delay is spread by up to this fraction, so jobs that failed together do not all
# return together; derived from the job id, not random, because orchestrators replay.
JITTER_FRACTION = 0.1


class RetryPolicy(BaseModel):
    """How often and how patiently a job retries an attempt that failed in a retryable way."""

    # strict: no "3" for 3 and no true for 1; an int field takes no 2.0 either.
    model_config = ConfigDict(extra="forbid", strict=True)

    max_attempts: int = Field(default=1, ge=1, le=10)
    initial_delay_seconds: float = Field(default=30, ge=1, le=3600)
    max_delay_seconds: float = Field(default=3600, ge=1, le=86400)

    @model_validator(mode="after")
    def _ordered(self) -> "RetryPolicy":
        if self.max_delay_seconds < self.initial_delay_seconds:
            raise ValueError("max_delay_seconds must not be less than initial_delay_seconds")
        return self


def next_attempt_delay(
    policy: RetryPolicy, transaction_id: str, attempt: int, outcome: Mapping[str, Any]
) -> timedelta | None:
    """How long to wait before attempt `attempt + 1`, or None when this outcome is final."""
    if outcome.get("ok") or not outcome.get("retryable") or attempt >= policy.max_attempts:
        return None
    backoff = policy.initial_delay_seconds * 2 ** (attempt - 1)
    spread = _jitter(transaction_id, attempt) * JITTER_FRACTION * backoff
    delay = backoff + spread
    retry_after = outcome.get("retry_after_seconds")
    if isinstance(retry_after, int | float) and retry_after > delay:
        delay = retry_after
    return timedelta(seconds=min(delay, policy.max_delay_seconds))


def _jitter(transaction_id: str, attempt: int) -> float:
    """A number in [0, 1) that is the same on every replay of this attempt."""
    digest = hashlib.sha256(f"{transaction_id}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


# An activity that could not reach the job store (or the vault) is run again after these
# waits, then every hour, for as long as it takes; the orchestration continues as new after
# every STORE_FAILURES_PER_EPISODE failures so that its history stays bounded.
_STORE_RETRY_DELAYS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600)
STORE_FAILURES_PER_EPISODE = 12


def store_retry_delay(failures: int) -> timedelta:
    """The wait before running an attempt again after `failures` store failures in a row."""
    return timedelta(seconds=_STORE_RETRY_DELAYS[min(failures, len(_STORE_RETRY_DELAYS)) - 1])
