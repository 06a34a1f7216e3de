"""The dashboard on the running app (the local durable host on the wall clock by default),
in headless Chromium: sign in with the master key, see a job created through the API, delete
it with its button."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser

from tests.live.conftest import LiveApp
from tests.support.browser import OffMachineRequests, fenced_context

pytestmark = pytest.mark.live


async def test_a_job_is_listed_and_deleted_from_the_dashboard(
    chromium: Browser, live_app: LiveApp
) -> None:
    headers = {"x-functions-key": live_app.function_key} if live_app.function_key else {}
    async with httpx.AsyncClient(
        base_url=live_app.base_url, headers=headers, trust_env=False, timeout=30
    ) as api:
        exec_at = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"exec_at": exec_at, "prompt_type": "log.append", "payload": {"message": "live"}}
        created = await api.post("/api/schedule", json=body)
        assert created.status_code == 202, created.text
        job = created.json()["transaction_id"]

        off_machine = OffMachineRequests()
        context = await fenced_context(chromium, off_machine)
        try:
            page = await context.new_page()
            await page.goto(f"{live_app.base_url}/api/dashboard?code={live_app.admin_key}")
            assert page.url == f"{live_app.base_url}/api/dashboard/jobs"
            row = page.locator(f'#pending-jobs tr[data-job="{job}"]')
            assert "log.append" in await row.inner_text()
            await row.locator("button.delete").click()
            await page.wait_for_url("**/api/dashboard/jobs?done=deleted")
            assert await page.locator(f'#pending-jobs tr[data-job="{job}"]').count() == 0
        finally:
            await context.close()
        assert off_machine.urls == []
        status = await api.get(f"/api/schedule/{job}/status")
        assert status.json()["state"] == "cancelled"
