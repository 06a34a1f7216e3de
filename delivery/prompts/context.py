"""What prompt handlers are given: for checking a payload, and for running it."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from scheduling.settings import SchedulerSettings
from scheduling.webhook_signing import run_message_id
from storage.job_log import JobLog

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class PayloadRules:
    """Create-time checks a payload model needs beyond its own fields.

    `vet_url` raises ValueError with the reason when a destination is refused.
    """

    settings: SchedulerSettings
    vet_url: Callable[[str], object]


@dataclass(frozen=True)
class FiringContext:
    """Everything a handler may touch when its job fires."""

    transaction_id: str
    exec_at: datetime
    settings: SchedulerSettings
    job_log: JobLog
    clock: Clock
    open_http_client: Callable[[float], httpx.Client]
    attempt: int = 1
    # Which incarnation of the job fires (a replay, resume or PATCH makes a new one).
    generation: str = ""

    def message_id(self) -> str:
        """The Standard Webhooks `webhook-id` of this run: the same on each of its retries."""
        return run_message_id(self.transaction_id, self.generation, self.exec_at)
