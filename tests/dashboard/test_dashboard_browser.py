"""The dashboard end to end: the app over real HTTP, a real headless Chromium clicking it."""

from datetime import timedelta

import pytest
from playwright.async_api import Browser, Locator, Page
from playwright.async_api import Error as PlaywrightError

from tests.support.dashboard_site import DashboardSite
from tests.support.poison import POISONS


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


async def test_a_recurring_job_is_listed_with_its_next_fire_time_and_paused_and_resumed(
    dashboard_site: DashboardSite, page: Page
) -> None:
    job = await dashboard_site.create(
        "log.append", {"message": "tick"}, cron="0 9 * * *", timezone="Europe/Paris"
    )
    next_fire = (await dashboard_site.status(job))["next_fire_at"]
    await page.goto(f"{dashboard_site.base_url}/api/dashboard/recurring")
    row = page.locator(f'#recurring-jobs tr[data-job="{job}"]')
    text = await row.inner_text()
    assert next_fire.replace("T", " ").removesuffix("Z") in text  # shown as "... UTC"
    assert "0 9 * * *" in text

    await row.locator("button.pause").click()
    await page.wait_for_url(f"**/api/dashboard/jobs/{job}?done=paused")
    assert await page.locator("#job-state").inner_text() == "paused"
    assert (await dashboard_site.status(job))["state"] == "paused"

    await page.locator("button.resume").click()
    await page.wait_for_url(f"**/api/dashboard/jobs/{job}?done=resumed")
    assert await page.locator("#job-state").inner_text() == "pending"
    assert (await dashboard_site.status(job))["state"] == "pending"


async def test_the_filters_narrow_the_table_to_a_prompt_type(
    dashboard_site: DashboardSite, page: Page
) -> None:
    log_job = await dashboard_site.create("log.append", {"message": "a log entry"})
    call_job = await dashboard_site.create("http.call", {"url": "http://127.0.0.1:9/hook"})
    await page.reload()
    assert await page.locator("#pending-jobs tbody tr[data-job]").count() == 2

    await page.select_option('select[name="prompt_type"]', "http.call")
    await page.click('form.filters button[type="submit"]')
    await page.wait_for_url("**/api/dashboard/jobs?state=&prompt_type=http.call&label=")
    shown = page.locator("#pending-jobs tbody tr[data-job]")
    assert [await shown.nth(i).get_attribute("data-job") for i in range(await shown.count())] == [
        call_job
    ]
    assert log_job not in await page.content()


async def test_the_table_pages_in_due_order(dashboard_site: DashboardSite, page: Page) -> None:
    now = dashboard_site.scheduler.now()
    # Created out of order; listed by due time.
    jobs = {
        minutes: await dashboard_site.create(
            "log.append", {"message": f"m{minutes}"}, at=now + timedelta(minutes=minutes)
        )
        for minutes in (30, 10, 20, 40)
    }
    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs?limit=2")
    rows = page.locator("#pending-jobs tbody tr[data-job]")
    assert [await rows.nth(i).get_attribute("data-job") for i in range(2)] == [jobs[10], jobs[20]]
    await page.click('a[rel="next"]')
    await page.wait_for_url("**/api/dashboard/jobs?limit=2&cursor=*")
    rows = page.locator("#pending-jobs tbody tr[data-job]")
    assert [await rows.nth(i).get_attribute("data-job") for i in range(await rows.count())] == [
        jobs[30],
        jobs[40],
    ]


async def test_what_a_job_logged_is_shown_as_text_never_as_markup(
    dashboard_site: DashboardSite, page: Page
) -> None:
    scheduler = dashboard_site.scheduler
    hostile = (
        '<img src=x onerror="document.title=\'owned\'"><script>document.title="owned"</script>'
    )
    job = await dashboard_site.create(
        "log.append", {"message": hostile, "fields": {"<b>key</b>": hostile}}
    )
    scheduler.host.advance(11 * 60)
    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs/{job}")
    assert hostile in await page.locator("#timeline").inner_text()
    assert await page.locator("main img, main script, main b").count() == 0
    assert await page.title() != "owned"


async def test_the_charts_count_what_fired_and_how_late(
    dashboard_site: DashboardSite, page: Page
) -> None:
    scheduler = dashboard_site.scheduler
    due = scheduler.now() + timedelta(minutes=5)
    for _ in range(3):
        await dashboard_site.create("log.append", {"message": "chart me"}, at=due)
    scheduler.host.set_clock(due + timedelta(seconds=3))
    scheduler.host.run()

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/charts")
    per_minute = page.locator("#fired-per-minute rect")
    assert await per_minute.count() == 1  # one minute with fires, drawn as one bar
    assert "3 fired" in await tooltip(per_minute.first)
    late = page.locator("#lateness rect")
    assert await late.count() == 1
    assert "2 s to 5 s: 3 attempts" in await tooltip(late.first)
    assert "p50 3.00 s" in await page.locator("#lateness-summary").inner_text()


async def tooltip(bar: Locator) -> str:
    """An SVG bar's <title> (SVG elements have no innerText)."""
    return await bar.locator("title").text_content() or ""


async def test_chromium_cannot_reach_past_loopback(chromium: Browser) -> None:
    """The browser's own flags keep it on this machine, even with no test routing."""
    context = await chromium.new_context()
    try:
        page = await context.new_page()
        for url in ("http://example.com/", "http://93.184.215.14/"):
            with pytest.raises(PlaywrightError, match="ERR_"):
                await page.goto(url, timeout=10_000)
    finally:
        await context.close()


async def test_the_failed_list_replays_a_job_as_a_new_run(
    dashboard_site: DashboardSite, page: Page
) -> None:
    scheduler = dashboard_site.scheduler
    due = scheduler.now() + timedelta(minutes=5)
    # Nothing listens on the discard port: the call fails at once.
    job = await dashboard_site.create("http.call", {"url": "http://127.0.0.1:9/hook"}, at=due)
    scheduler.host.advance(6 * 60)
    assert (await dashboard_site.status(job))["state"] == "failed"

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/failed")
    row = page.locator(f'#failed-jobs tr[data-job="{job}"]')
    assert "http.call" in await row.inner_text()
    await row.locator("button.replay").click()
    await page.wait_for_url(f"**/api/dashboard/jobs/{job}?done=replayed")
    assert "replayed" in await page.locator(".notice").inner_text()
    assert (await dashboard_site.status(job))["state"] == "pending"
    await page.goto(f"{dashboard_site.base_url}/api/dashboard/failed")
    assert await page.locator(f'#failed-jobs tr[data-job="{job}"]').count() == 0

    # The replay runs (and fails again, at the same dead port): a second attempt on record.
    scheduler.host.advance(60)
    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs/{job}")
    assert await page.locator("#attempts tbody tr").count() == 2
    assert await page.locator("#job-state").inner_text() == "failed"


async def test_clearing_the_failed_list_empties_it(
    dashboard_site: DashboardSite, page: Page
) -> None:
    scheduler = dashboard_site.scheduler
    job = await dashboard_site.create("http.call", {"url": "http://127.0.0.1:9/hook"})
    scheduler.host.advance(11 * 60)
    await page.goto(f"{dashboard_site.base_url}/api/dashboard/failed")
    assert await page.locator(f'#failed-jobs tr[data-job="{job}"]').count() == 1
    await page.click("#clear-failed")
    await page.wait_for_url("**/api/dashboard/failed?done=cleared")
    assert await page.locator("#failed-jobs tr[data-job]").count() == 0
    reply = await dashboard_site.http.get("/api/failed")
    assert reply.json()["jobs"] == []


@pytest.mark.parametrize("kind", sorted(POISONS))
async def test_an_unreadable_job_is_shown_as_such_and_its_delete_button_removes_it(
    dashboard_site: DashboardSite, page: Page, kind: str
) -> None:
    readable = await dashboard_site.create("log.append", {"message": "fine"})
    job = await dashboard_site.create("log.append", {"message": "spoiled"})
    POISONS[kind](dashboard_site.scheduler, job)
    await page.reload()
    row = page.locator(f'#pending-jobs tr[data-job="{job}"]')
    assert "unreadable" in await row.inner_text()
    assert await page.locator(f'#pending-jobs tr[data-job="{readable}"]').count() == 1

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs/{job}")
    assert await page.locator("#job-unreadable").inner_text()
    await page.locator("button.delete").click()
    await page.wait_for_url("**/api/dashboard/jobs?done=deleted")
    assert await page.locator(f'#pending-jobs tr[data-job="{job}"]').count() == 0
    assert await page.locator(f'#pending-jobs tr[data-job="{readable}"]').count() == 1


async def test_an_unreadable_failed_job_is_listed_on_the_failed_page(
    dashboard_site: DashboardSite, page: Page
) -> None:
    scheduler = dashboard_site.scheduler
    due = scheduler.now() + timedelta(minutes=5)
    job = await dashboard_site.create("http.call", {"url": "http://127.0.0.1:9/hook"}, at=due)
    scheduler.host.advance(6 * 60)
    POISONS["truncated"](scheduler, job)
    await page.goto(f"{dashboard_site.base_url}/api/dashboard/failed")
    row = page.locator(f'#failed-jobs tr[data-job="{job}"]')
    assert "unreadable: its sealed_payload is not a sealed payload" in await row.inner_text()
    # The charts read every record written in the last day: this one is left out.
    reply = await page.goto(f"{dashboard_site.base_url}/api/dashboard/charts")
    assert reply is not None
    assert reply.status == 200
