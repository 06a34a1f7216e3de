"""What the dashboard tells a reader, in a real headless Chromium: charts drawn over the
window the data needs."""

from datetime import timedelta

from playwright.async_api import Page

from tests.support.dashboard_site import DashboardSite


async def test_the_charts_say_so_when_nothing_fired_and_fit_their_window_to_what_did(
    dashboard_site: DashboardSite, page: Page
) -> None:
    await page.goto(f"{dashboard_site.base_url}/api/dashboard/charts")
    assert (
        "No attempt fired in the last 24 hours" in await page.locator("#no-attempts").inner_text()
    )
    assert await page.locator("svg.chart").count() == 0  # no empty axis

    scheduler = dashboard_site.scheduler
    for minutes in (5, 25):
        await dashboard_site.create(
            "log.append", {"message": "m"}, at=scheduler.now() + timedelta(minutes=minutes)
        )
    scheduler.host.advance(30 * 60)
    await page.reload()
    assert await page.locator("#per-minute-title").inner_text() == (
        "Attempts fired per minute, last hour"
    )
    bars = page.locator("#fired-per-minute rect")
    assert await bars.count() == 2
    assert await bars.first.get_attribute("width") == "16.0"  # 960 px over 60 minutes
    assert (await page.locator("#window-start").inner_text()).startswith("1 h ago (")
