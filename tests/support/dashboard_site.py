"""`dashboard_site`: the whole app (the `scheduler` fixture) served over real HTTP on a
loopback port, with a function key and an admin key, and an HTTP client for its API."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from function_app import app
from local_durable_host.app_server import AppServer, Keys
from scheduling.timing import format_utc
from tests.support.scheduler import Scheduler

FUNCTION_KEY = "test-function-key"
ADMIN_KEY = "test-admin-key"


@dataclass
class DashboardSite:
    scheduler: Scheduler
    base_url: str
    http: httpx.AsyncClient  # the API with the function key

    @property
    def sign_in_url(self) -> str:
        return f"{self.base_url}/api/dashboard?code={ADMIN_KEY}"

    async def create(
        self,
        prompt_type: str,
        payload: dict[str, Any],
        *,
        at: datetime | None = None,
        **fields: Any,
    ) -> str:
        """Schedule a job through the API over HTTP; its transaction id."""
        body: dict[str, Any] = {"prompt_type": prompt_type, "payload": payload, **fields}
        if "cron" not in fields:
            body["exec_at"] = format_utc(at or self.scheduler.now() + timedelta(minutes=10))
        reply = await self.http.post("/api/schedule", json=body)
        assert reply.status_code == 202, reply.text
        transaction_id: str = reply.json()["transaction_id"]
        return transaction_id

    async def status(self, transaction_id: str) -> dict[str, Any]:
        reply = await self.http.get(f"/api/schedule/{transaction_id}/status")
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body


@pytest.fixture
async def dashboard_site(scheduler: Scheduler) -> AsyncIterator[DashboardSite]:
    server = AppServer(
        app,
        scheduler.host.client_binding,
        Keys(function_key=FUNCTION_KEY, master_key=ADMIN_KEY),
        loop=asyncio.get_running_loop(),  # the test's loop: the SDK's session is tied to it
    )
    try:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"x-functions-key": FUNCTION_KEY}, timeout=30
        ) as http:
            yield DashboardSite(scheduler, server.base_url, http)
    finally:
        server.close()
