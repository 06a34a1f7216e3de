"""The dashboard end to end: the app over real HTTP, a real headless Chromium clicking it."""

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from playwright.async_api import Browser, Page

from tests.support.browser import OffMachineRequests, fenced_context
from tests.support.dashboard_site import DashboardSite


@pytest.fixture
async def page(chromium: Browser, dashboard_site: DashboardSite) -> AsyncIterator[Page]:
    """A signed-in page; the test fails if the page tried to leave loopback or the console
    reported an error (a CSP violation is one)."""
    off_machine = OffMachineRequests()
    context = await fenced_context(chromium, off_machine)
    errors: list[str] = []
    page = await context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(dashboard_site.sign_in_url)
    assert page.url == f"{dashboard_site.base_url}/api/dashboard/jobs"  # the key left the URL
    yield page
    await context.close()
    assert off_machine.urls == []
    assert errors == []


async def test_a_job_created_through_the_api_is_listed_and_the_delete_button_cancels_it(
    dashboard_site: DashboardSite, page: Page
) -> None:
    job = await dashboard_site.create("log.append", {"message": "listed"})
    await page.reload()
    row = page.locator(f'#pending-jobs tr[data-job="{job}"]')
    await row.wait_for()
    assert "log.append" in await row.inner_text()
    assert "pending" in await row.inner_text()

    await row.locator("button.delete").click()
    await page.wait_for_url("**/api/dashboard/jobs?done=deleted")
    assert await page.locator(f'#pending-jobs tr[data-job="{job}"]').count() == 0
    assert "The job was deleted." in await page.locator(".notice").inner_text()
    assert (await dashboard_site.status(job))["state"] == "cancelled"


async def test_the_timeline_shows_an_attempt_and_how_late_it_fired(
    dashboard_site: DashboardSite, page: Page
) -> None:
    scheduler = dashboard_site.scheduler
    due = scheduler.now() + timedelta(minutes=5)
    job = await dashboard_site.create("log.append", {"message": "on time?"}, at=due)
    # The worker picks the timer up 2.5 s after it came due.
    scheduler.host.set_clock(due + timedelta(seconds=2.5))
    scheduler.host.run()
    assert (await dashboard_site.status(job))["state"] == "succeeded"

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs/{job}")
    attempt = page.locator("#attempts tbody tr").first
    assert await attempt.locator("td.lateness").inner_text() == "2.50 s"
    assert "ok" in await attempt.inner_text()
    timeline = await page.locator("#timeline").inner_text()
    for kind in ("accepted", "fired", "outcome", "log"):
        assert kind in timeline
