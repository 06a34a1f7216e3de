"""What triggers reach for at run time (clock, settings, stores, keys), swappable in tests.

The HTTP routes and the activity read time from here, never from `datetime.now()`, so a test
host's virtual clock is the clock of the whole app.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from delivery.egress import EgressPolicy, Resolver, pinned_client
from delivery.prompts import FiringContext, PayloadRules
from scheduling.settings import SchedulerSettings, load_settings
from storage.job_log import JobLog
from storage.job_log.factory import open_job_log
from storage.job_store import TableJobStore
from storage.job_store_factory import open_job_store, open_sealer
from storage.sealing import Sealer


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Dependencies:
    clock: Callable[[], datetime] = system_clock
    settings: Callable[[], SchedulerSettings] = load_settings
    job_log: Callable[[SchedulerSettings], JobLog] = open_job_log
    job_store: Callable[[SchedulerSettings], TableJobStore] = open_job_store
    sealer: Callable[[SchedulerSettings], Sealer] = open_sealer
    # None: the operating system's resolver; tests inject one so no lookup leaves the machine.
    resolver: Resolver | None = None


_current = Dependencies()


def current() -> Dependencies:
    return _current


@contextmanager
def overridden(**changes: Any) -> Iterator[Dependencies]:
    """Use other dependencies inside the block (tests: a virtual clock, fixed settings)."""
    global _current
    previous = _current
    _current = replace(previous, **changes)
    try:
        yield _current
    finally:
        _current = previous


def egress_policy(deps: Dependencies, settings: SchedulerSettings) -> EgressPolicy:
    if deps.resolver is None:
        return EgressPolicy.from_settings(settings)
    return EgressPolicy.from_settings(settings, resolver=deps.resolver)


def payload_rules(deps: Dependencies, settings: SchedulerSettings) -> PayloadRules:
    return PayloadRules(settings=settings, vet_url=egress_policy(deps, settings).vet_url)


def firing_context(
    transaction_id: str, exec_at: datetime, attempt: int, generation: str = ""
) -> FiringContext:
    deps = current()
    settings = deps.settings()
    policy = egress_policy(deps, settings)
    return FiringContext(
        transaction_id=transaction_id,
        exec_at=exec_at,
        settings=settings,
        job_log=deps.job_log(settings),
        clock=deps.clock,
        open_http_client=lambda timeout: pinned_client(policy, timeout=timeout),
        attempt=attempt,
        generation=generation,
    )
