"""What the dashboard tells a reader about a job, in a real headless Chromium: its labels,
its runs and attempts, whether it is overdue, its outcomes as fields, and charts drawn over
the window the data needs."""

from datetime import timedelta

from playwright.async_api import Page
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from dashboard.jobs import OVERDUE_AFTER
from tests.support.dashboard_site import DashboardSite


async def test_a_job_is_named_by_its_labels_beside_its_id_and_never_by_its_payload(
    dashboard_site: DashboardSite, page: Page
) -> None:
    labelled = await dashboard_site.create(
        "http.call",
        {"url": "http://127.0.0.1:9/invoices/run?token=s3cret"},
        labels={"tenant": "acme", "campaign": "spring-25"},
    )
    # A Slack-style webhook URL: its path is the credential.
    webhook = await dashboard_site.create(
        "http.call", {"url": "http://127.0.0.1:9/services/T0001/B0002/XXXXsecret"}
    )
    note = await dashboard_site.create("log.append", {"message": "the sealed message"})
    await page.reload()

    link = page.locator(f'#pending-jobs tr[data-job="{labelled}"] a.job')
    assert await link.locator(".chip").all_inner_texts() == ["campaign=spring-25", "tenant=acme"]
    assert await link.locator("code.id").inner_text() == labelled[:8] + "…"
    assert await link.locator("code.id").get_attribute("title") == labelled
    assert await link.locator(".kind").count() == 0
    # Without labels: the short id and the kind, an http.call's host (its destination's).
    unlabelled = page.locator(f'#pending-jobs tr[data-job="{webhook}"] a.job')
    assert await unlabelled.locator(".chip").count() == 0
    assert await unlabelled.locator("code.id").inner_text() == webhook[:8] + "…"
    assert await unlabelled.locator(".kind").inner_text() == "http.call · 127.0.0.1:9"
    logged = page.locator(f'#pending-jobs tr[data-job="{note}"] a.job')
    assert await logged.locator(".kind").inner_text() == "log.append"
    listing = await page.content()
    for sealed in ("the sealed message", "/invoices", "s3cret", "/services", "T0001", "XXXX"):
        assert sealed not in listing

    # The label filter lists the live jobs with that label only.
    await page.fill("form.filters input[name=label]", "tenant=acme")
    await page.click("form.filters button")
    assert await page.locator("#pending-jobs tbody tr[data-job]").count() == 1
    assert await page.locator("form.filters input[name=label]").input_value() == "tenant=acme"
    # A filter that is no key=value is a 400 page saying so (read with the page's session,
    # not shown: the page fixture fails on any console error, a 400 among them).
    reply = await page.request.get(f"{dashboard_site.base_url}/api/dashboard/jobs?label=tenant")
    assert reply.status == 400
    assert "label must be key=value" in await reply.text()

    await link.click()
    await page.wait_for_url(f"**/api/dashboard/jobs/{labelled}")
    assert await page.locator("h1 code").inner_text() == labelled
    chips = page.locator("#job-labels .chip")
    assert await chips.all_inner_texts() == ["campaign=spring-25", "tenant=acme"]
    assert await page.title() == (
        f"Job {labelled[:8]}… campaign=spring-25 tenant=acme · Durable Scheduler"
    )
    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs/{webhook}")
    assert await page.locator("#job-labels").inner_text() == "none"
    title = f"Job {webhook[:8]}… http.call · 127.0.0.1:9 · Durable Scheduler"
    assert await page.title() == title
    assert "/services" not in await page.content()


async def test_a_recurring_job_shows_its_runs_and_the_attempts_of_its_current_run(
    dashboard_site: DashboardSite, page: Page, httpserver: HTTPServer
) -> None:
    # Its first run fails once (503) and succeeds on the retry; the later runs succeed.
    answers = iter([503])

    def answer(_request: Request) -> Response:
        return Response(status=next(answers, 200))

    httpserver.expect_request("/tick").respond_with_handler(answer)
    scheduler = dashboard_site.scheduler
    job = await dashboard_site.create(
        "http.call",
        {"url": httpserver.url_for("/tick")},
        cron="* * * * *",
        timezone="UTC",
        retry={"max_attempts": 3, "initial_delay_seconds": 5},
        labels={"cadence": "minutely"},
    )
    scheduler.host.advance(4 * 60 + 30)
    status = await dashboard_site.status(job)
    assert status["runs"] >= 3  # a recurring job that has run many times...
    assert status["attempts"] == 0  # ...with no attempt yet of its next run

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/recurring")
    headers = await page.locator("#recurring-jobs th").all_inner_texts()
    assert headers[4:6] == ["Runs", "Attempts (this run)"]
    row = page.locator(f'#recurring-jobs tr[data-job="{job}"]')
    assert await row.locator("a.job .chip").all_inner_texts() == ["cadence=minutely"]
    assert await row.locator("td.runs").inner_text() == str(status["runs"])
    assert await row.locator("td.attempts").inner_text() == "0 of 3"
    assert "succeeded" in await row.locator("td.last-run").inner_text()
    assert "after 1 attempt" in await row.locator("td.last-run").inner_text()

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs")
    row = page.locator(f'#pending-jobs tr[data-job="{job}"]')
    assert await row.locator("td.runs").inner_text() == str(status["runs"])
    assert await row.locator("td.attempts").inner_text() == "0 of 3"

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs/{job}")
    assert (await page.locator("#job-runs").inner_text()).startswith(f"{status['runs']} runs")
    assert await page.locator("#job-attempts").inner_text() == "0 in this run of at most 3"
    # Every attempt of every run is in its attempts table: the first run's two among them.
    assert await page.locator("#attempts tbody tr").count() == status["runs"] + 1


async def test_a_job_waiting_past_its_time_by_more_than_a_minute_is_flagged_overdue(
    dashboard_site: DashboardSite, page: Page
) -> None:
    scheduler = dashboard_site.scheduler
    due = scheduler.now() + timedelta(minutes=5)
    stuck = await dashboard_site.create("log.append", {"message": "a"}, at=due)
    just_due = await dashboard_site.create(
        "log.append", {"message": "b"}, at=due + timedelta(minutes=2)
    )
    later = await dashboard_site.create("log.append", {"message": "c"}, at=due + timedelta(hours=1))
    # The clock moves on and nothing runs: a host that is down, or far behind.
    scheduler.host.set_clock(due + timedelta(minutes=2, seconds=30))

    await page.reload()
    flag = page.locator(f'#pending-jobs tr[data-job="{stuck}"] .overdue')
    assert await flag.inner_text() == "overdue by 2 min 30 s"
    # 30 s past its time is within what a healthy host takes; an hour ahead is not due.
    assert timedelta(seconds=30) < OVERDUE_AFTER
    for calm in (just_due, later):
        assert await page.locator(f'#pending-jobs tr[data-job="{calm}"] .overdue').count() == 0

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/jobs/{stuck}")
    assert await page.locator("#job-due .overdue").inner_text() == "overdue by 2 min 30 s"

    scheduler.host.run()  # the host catches up: the job fires, and is no longer flagged
    await page.reload()
    assert await page.locator("#job-state").inner_text() == "succeeded"
    assert await page.locator(".overdue").count() == 0


async def test_an_outcome_is_shown_as_named_fields_not_as_json(
    dashboard_site: DashboardSite, page: Page, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook").respond_with_data(
        "busy", status=503, headers={"Retry-After": "120"}
    )
    scheduler = dashboard_site.scheduler
    job = await dashboard_site.create(
        "http.call", {"url": httpserver.url_for("/hook")}, labels={"tenant": "acme"}
    )
    scheduler.host.advance(11 * 60)
    assert (await dashboard_site.status(job))["state"] == "failed"

    await page.goto(f"{dashboard_site.base_url}/api/dashboard/failed")
    row = page.locator(f'#failed-jobs tr[data-job="{job}"]')
    assert await row.locator("a.job .chip").all_inner_texts() == ["tenant=acme"]

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
    assert "no lateness to show yet" in await page.locator("#lateness-summary").inner_text()

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
    assert await page.locator("#lateness rect").count() > 0


async def test_the_label_filter_pages_and_takes_several_labels(
    dashboard_site: DashboardSite, page: Page
) -> None:
    acme = [
        await dashboard_site.create(
            "log.append", {"message": "m"}, labels={"tenant": "acme", "n": str(n)}
        )
        for n in range(3)
    ]
    await dashboard_site.create("log.append", {"message": "m"}, labels={"tenant": "other"})
    await dashboard_site.create("log.append", {"message": "m"})

    base = f"{dashboard_site.base_url}/api/dashboard/jobs"
    await page.goto(f"{base}?label=tenant%3Dacme&limit=2")
    rows = page.locator("#pending-jobs tbody tr[data-job]")
    first = [await rows.nth(i).get_attribute("data-job") for i in range(await rows.count())]
    assert "id order" in await page.locator("p.hint").first.inner_text()
    await page.click("a[rel=next]")
    second = [await rows.nth(i).get_attribute("data-job") for i in range(await rows.count())]
    # The next page keeps the filter: the three acme jobs, in id order, and no other.
    assert first + second == sorted(acme)

    await page.goto(f"{base}?label=tenant%3Dacme&label=n%3D1")
    assert await rows.count() == 1
    assert await rows.first.get_attribute("data-job") == acme[1]
    assert await page.locator("form.filters input[name=label]").evaluate_all(
        "inputs => inputs.map(input => input.value)"
    ) == ["n=1", "tenant=acme"]
