"""The whole app under test: its HTTP routes, its durable functions on DurableHost, a real log.

`scheduler` gives a test the app wired to a virtual clock, a Table Storage job log on Azurite,
and an egress policy that allows loopback (local target servers), as a developer runs it.
"""

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import Any

import pytest
from azure.durable_functions.models.utils import http_utils

from blueprints import dependencies
from blueprints.instances import ORCHESTRATOR
from function_app import app
from scheduling.egress import DEFAULT_ALLOWED_PORTS, PortRanges
from scheduling.job_log import JobLog
from scheduling.job_log.factory import close_job_logs, open_job_log
from scheduling.settings import SchedulerSettings
from scheduling.timing import format_utc
from tests.support.app_client import AppClient, Reply
from tests.support.durable_host import DurableHost
from tests.support.durable_model import PurgeNonTerminal
from tests.support.services import AzuriteService

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
# The default ports, and 9 (discard): the API tests' target where nothing listens.
TEST_PORTS = PortRanges.of([*DEFAULT_ALLOWED_PORTS.ranges, (9, 9)])
_tables = itertools.count()


@dataclass
class Scheduler:
    host: DurableHost
    api: AppClient
    settings: SchedulerSettings
    job_log: JobLog

    def now(self) -> datetime:
        return self.host.now()

    async def schedule(
        self,
        prompt_type: str,
        payload: dict[str, Any],
        *,
        at: datetime | None = None,
        retry: dict[str, Any] | None = None,
    ) -> Reply:
        exec_at = at or self.now() + timedelta(minutes=10)
        body = {"exec_at": format_utc(exec_at), "prompt_type": prompt_type, "payload": payload}
        return await self.api.post(
            "/api/schedule", body if retry is None else {**body, "retry": retry}
        )

    async def accepted(
        self,
        prompt_type: str,
        payload: dict[str, Any],
        *,
        at: datetime | None = None,
        retry: dict[str, Any] | None = None,
    ) -> str:
        """Schedule a job that must be accepted; returns its transaction id."""
        reply = await self.schedule(prompt_type, payload, at=at, retry=retry)
        assert reply.status == 202, reply.json()
        transaction_id: str = reply.json()["transaction_id"]
        return transaction_id

    def step_until_claimed(self, exec_at: datetime) -> None:
        """Move to exec_at and step until a shard has processed a claim: an attempt is committed."""
        self.host.run()
        self.host.set_clock(exec_at)
        while not any(op.operation == "claim" for op in self.host.entity_operations):
            assert self.host.step()

    def orchestrations_started(self) -> list[str]:
        return [
            call.path.rsplit("/", 1)[-1]
            for call in self.host.client_calls
            if call.method == "POST" and f"orchestrators/{ORCHESTRATOR}/" in call.path
        ]


def scheduler_settings(azurite: AzuriteService, **overrides: Any) -> SchedulerSettings:
    """Developer-like settings: loopback targets allowed, a fresh log table per test."""
    values: dict[str, Any] = {
        "http_call_allowed_networks": [ip_network("127.0.0.0/8"), ip_network("::1/128")],
        "http_call_allowed_ports": TEST_PORTS,
        "azure_web_jobs_storage": azurite.connection_string,
        "job_log_table": f"joblog{next(_tables)}",
        **overrides,
    }
    return SchedulerSettings(**values)


@pytest.fixture(scope="session", autouse=True)
async def close_sdk_http_session() -> AsyncIterator[None]:
    """The SDK keeps one aiohttp session per process; close it on the loop that made it."""
    yield
    await http_utils._close_session()


@contextmanager
def running_scheduler(
    azurite: AzuriteService,
    *,
    purge_non_terminal: PurgeNonTerminal = PurgeNonTerminal.DELETE,
    backend_works_while_routes_wait: bool = True,
) -> Iterator[Scheduler]:
    """The app on a fresh durable stand-in. Routes that wait for the backend (delete, wipe)
    let it work meanwhile, unless told not to: then every such wait runs out."""
    settings = scheduler_settings(azurite)
    job_log = open_job_log(settings)
    with DurableHost(
        app, START, check_replay_determinism=True, purge_non_terminal=purge_non_terminal
    ) as host:

        async def wait_for_backend(seconds: float) -> None:
            if backend_works_while_routes_wait:
                host.run()

        with dependencies.overridden(
            clock=host.clock,
            settings=lambda: settings,
            job_log=lambda _settings: job_log,
            sleep=wait_for_backend,
        ):
            yield Scheduler(
                host=host,
                api=AppClient(host.client_binding()),
                settings=settings,
                job_log=job_log,
            )
    close_job_logs()


@pytest.fixture
def scheduler(azurite: AzuriteService) -> Iterator[Scheduler]:
    with running_scheduler(azurite) as running:
        yield running
