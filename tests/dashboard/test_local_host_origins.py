"""The app on the local durable host in a real browser, at the names a developer opens it
by, and pages of other sites trying to drive it (the attack the third review found: a plain
form POST to /api/wipe with the key in the URL)."""

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, BrowserContext
from pytest_httpserver import HTTPServer

from tests.support.browser import OffMachineRequests, fenced_context
from tests.support.dashboard_site import ADMIN_KEY, FUNCTION_KEY, DashboardSite


@pytest.fixture
async def context(chromium: Browser) -> AsyncIterator[BrowserContext]:
    off_machine = OffMachineRequests()
    opened = await fenced_context(chromium, off_machine)
    yield opened
    await opened.close()
    assert off_machine.urls == []


async def test_the_dashboard_opened_at_localhost_can_delete_a_job(
    dashboard_site: DashboardSite, context: BrowserContext
) -> None:
    # The README's address: http://localhost:7071, not 127.0.0.1.
    job = await dashboard_site.create("log.append", {"message": "delete me"})
    at_localhost = dashboard_site.base_url.replace("127.0.0.1", "localhost")
    page = await context.new_page()
    await page.goto(f"{at_localhost}/api/dashboard?code={ADMIN_KEY}")
    assert page.url == f"{at_localhost}/api/dashboard/jobs"
    await page.locator(f'#pending-jobs tr[data-job="{job}"] button.delete').click()
    await page.wait_for_url("**/api/dashboard/jobs?done=deleted")
    assert "The job was deleted." in await page.locator(".notice").inner_text()
    assert (await dashboard_site.status(job))["state"] == "cancelled"


ATTACKS = {
    "form": """<form method="post" action="{url}"></form>
<script>document.forms[0].submit()</script>""",
    "fetch": """<script>
fetch("{url}", {{method: "POST", mode: "no-cors"}}).finally(() => document.title = "sent")
</script>""",
}


@pytest.mark.parametrize("shape", sorted(ATTACKS))
@pytest.mark.parametrize(
    "target", ["/api/wipe?code={admin}", "/api/schedule/{job}/pause?code={function}"]
)
async def test_a_page_of_another_site_cannot_change_the_jobs(
    dashboard_site: DashboardSite,
    context: BrowserContext,
    httpserver: HTTPServer,
    shape: str,
    target: str,
) -> None:
    job = await dashboard_site.create(
        "log.append", {"message": "keep me"}, cron="0 9 * * *", timezone="UTC"
    )
    path = target.format(admin=ADMIN_KEY, function=FUNCTION_KEY, job=job)
    url = dashboard_site.base_url + path
    # Another port of this machine is another site's page to the browser.
    httpserver.expect_request("/attack").respond_with_data(
        ATTACKS[shape].format(url=url), content_type="text/html"
    )
    page = await context.new_page()
    answers: list[int] = []
    page.on("response", lambda r: answers.append(r.status) if r.url == url else None)
    await page.goto(httpserver.url_for("/attack"))
    if shape == "form":
        await page.wait_for_url(url)
    else:
        await page.wait_for_function("document.title === 'sent'")
    assert answers == [403]
    assert (await dashboard_site.status(job))["state"] == "pending"
