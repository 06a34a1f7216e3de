"""The whole app under test: its HTTP routes, its durable functions on DurableHost, real stores.

`scheduler` gives a test the app wired to a virtual clock, a job store and a job log in Table
Storage on Azurite (fresh tables per test), a local sealing key, and an egress policy that
allows loopback (local target servers), as a developer runs it.
"""

import base64
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
from delivery.egress import DEFAULT_ALLOWED_PORTS, PortRanges
from function_app import app
from local_durable_host.engine import DurableHost
from local_durable_host.model import InstanceView
from scheduling.settings import SchedulerSettings
from scheduling.timing import format_utc
from storage.job_log import JobLog
from storage.job_log.factory import close_job_logs, open_job_log
from storage.job_store import TableJobStore
from storage.job_store_factory import close_job_stores, open_job_store
from tests.support.app_client import AppClient, Reply
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
    job_store: TableJobStore

    def now(self) -> datetime:
        return self.host.now()

    async def schedule(
        self,
        prompt_type: str,
        payload: dict[str, Any],
        *,
        at: datetime | None = None,
        retry: dict[str, Any] | None = None,
        flow_control: dict[str, Any] | None = None,
    ) -> Reply:
        exec_at = at or self.now() + timedelta(minutes=10)
        body: dict[str, Any] = {
            "exec_at": format_utc(exec_at),
            "prompt_type": prompt_type,
            "payload": payload,
        }
        if retry is not None:
            body["retry"] = retry
        if flow_control is not None:
            body["flow_control"] = flow_control
        return await self.api.post("/api/schedule", body)

    async def accepted(
        self,
        prompt_type: str,
        payload: dict[str, Any],
        *,
        at: datetime | None = None,
        retry: dict[str, Any] | None = None,
        flow_control: dict[str, Any] | None = None,
    ) -> str:
        """Schedule a job that must be accepted; returns its transaction id."""
        reply = await self.schedule(
            prompt_type, payload, at=at, retry=retry, flow_control=flow_control
        )
        assert reply.status == 202, reply.json()
        transaction_id: str = reply.json()["transaction_id"]
        return transaction_id

    def orchestrations_started(self) -> list[str]:
        """The transaction id of every orchestration started, in order."""
        return [
            call.path.rsplit("/", 1)[-1].split(".", 1)[0]
            for call in self.host.client_calls
            if call.method == "POST" and f"orchestrators/{ORCHESTRATOR}/" in call.path
        ]

    def orchestration(self, transaction_id: str) -> InstanceView:
        """The newest orchestration of the job (one per generation), purged or not."""
        ids = [i for i in self.host.instance_ids() if i.split(".", 1)[0] == transaction_id]
        if not ids:
            raise KeyError(transaction_id)
        return self.host.instance(ids[-1])

    def has_orchestration(self, transaction_id: str) -> bool:
        return any(i.split(".", 1)[0] == transaction_id for i in self.host.instance_ids())


# Test keys, made for this suite only: base64 of 32 bytes each.
TEST_SEALING_KEYS = "test1:" + base64.b64encode(bytes(range(32))).decode()
TEST_FINGERPRINT_KEY = base64.b64encode(bytes(range(32, 64))).decode()


def scheduler_settings(azurite: AzuriteService, **overrides: Any) -> SchedulerSettings:
    """Developer-like settings: loopback targets allowed, fresh tables per test, local keys."""
    table = next(_tables)
    values: dict[str, Any] = {
        "http_call_allowed_networks": [ip_network("127.0.0.0/8"), ip_network("::1/128")],
        "http_call_allowed_ports": TEST_PORTS,
        "azure_web_jobs_storage": azurite.connection_string,
        "job_table": f"jobs{table}",
        "sealing_keys": TEST_SEALING_KEYS,
        "request_fingerprint_key": TEST_FINGERPRINT_KEY,
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
    host_options: dict[str, Any] | None = None,
    start: datetime = START,
    **overrides: Any,
) -> Iterator[Scheduler]:
    """The app on a fresh durable stand-in, with fresh tables, its clock at `start`;
    `host_options` for DurableHost (e.g. activity_workers), `overrides` for the settings."""
    settings = scheduler_settings(azurite, **overrides)
    job_log = open_job_log(settings)
    with (
        DurableHost(
            app, start, **{"check_replay_determinism": True, **(host_options or {})}
        ) as host,
        dependencies.overridden(clock=host.clock, settings=lambda: settings),
    ):
        yield Scheduler(
            host=host,
            api=AppClient(host.client_binding()),
            settings=settings,
            job_log=job_log,
            job_store=open_job_store(settings),
        )
    close_job_logs()
    close_job_stores()


@pytest.fixture
def scheduler(azurite: AzuriteService) -> Iterator[Scheduler]:
    with running_scheduler(azurite) as running:
        yield running
