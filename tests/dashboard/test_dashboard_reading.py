"""What the dashboard tells a reader, in a real headless Chromium: outcomes as fields, and
charts drawn over the window the data needs."""

from datetime import timedelta

from playwright.async_api import Page
from pytest_httpserver import HTTPServer

from tests.support.dashboard_site import DashboardSite


async def test_an_outcome_is_shown_as_named_fields_not_as_json(
    dashboard_site: DashboardSite, page: Page, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data(
        "busy", status=503, headers={"Retry-After": "120"}
    )
    scheduler = dashboard_site.scheduler
    job = await dashboard_site.create("http.call", {"url": httpserver.url_for("/hook")})
    scheduler.host.advance(11 * 60)
    assert (await dashboard_site.status(job))["state"] == "failed"

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs/{job}")
    outcome = page.locator("#timeline li.kind-outcome")
    fields = outcome.locator("dl.fields").first
    names = await fields.locator("dt").all_inner_texts()
    values = await fields.locator("dd").all_inner_texts()
    shown = dict(zip(names, values, strict=True))
    assert shown["result"] == "failed"
    assert shown["HTTP status"] == "503"
    assert shown["error"] == "target answered 503 SERVICE UNAVAILABLE"
    assert shown["took"].endswith(" ms") or shown["took"].endswith(" s")
    assert shown["attempt"] == "1"
    # What else it kept is folded away, one name and value each.
    folded = outcome.locator("details dl.fields")
    assert not await folded.is_visible()
    await outcome.locator("details summary").click()
    names = await folded.locator("dt").all_inner_texts()
    values = await folded.locator("dd").all_inner_texts()
    assert dict(zip(names, values, strict=True))["header retry-after"] == "120"
    timeline = await page.locator("#timeline").inner_text()
    assert '"status_code"' not in timeline
    assert "{" not in timeline


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
