"""The app over real HTTP, and headless Chromium, for the dashboard's tests."""

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page

from tests.support.browser import OffMachineRequests, fenced_context
from tests.support.dashboard_site import DashboardSite
from tests.support.dashboard_site import dashboard_site as dashboard_site


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
