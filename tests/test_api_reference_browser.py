"""The reference page in a real headless Chromium: it renders every operation of the
document from the app's own assets, and asks nothing of any other host (no CDN, no
validator), also where it is served under a name that is not loopback's, as in Azure."""

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser

from api.openapi import OPERATIONS
from local_durable_host.app_server import AppServer
from local_durable_host.request_checks import LOOPBACK_NAMES
from tests.support.browser import MAPPED_TO_LOOPBACK, OffMachineRequests, fenced_context
from tests.support.scheduler import Scheduler
from tests.support.served_app import served_app


@pytest.fixture
def served(scheduler: Scheduler) -> Iterator[AppServer]:
    with served_app(scheduler, LOOPBACK_NAMES | {MAPPED_TO_LOOPBACK}) as running:
        yield running


async def test_the_reference_page_shows_every_operation_without_leaving_the_machine(
    chromium: Browser, served: AppServer
) -> None:
    off_machine = OffMachineRequests()
    context = await fenced_context(chromium, off_machine)
    errors: list[str] = []
    page = await context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    loaded: list[str] = []
    page.on("requestfinished", lambda request: loaded.append(request.url))

    await page.goto(f"{served.base_url}/api/docs")
    operations = page.locator(".opblock")
    await operations.first.wait_for()
    # Swagger UI draws one block per operation, each with its method and path.
    assert await operations.count() == len(OPERATIONS)
    paths = set(await page.locator(".opblock-summary-path").all_inner_texts())
    assert {op.path for op in OPERATIONS} <= {path.replace("\u200b", "") for path in paths}
    await context.close()

    assert off_machine.urls == []
    assert errors == []
    assert f"{served.base_url}/api/docs/swagger-ui-bundle.js" in loaded
    assert f"{served.base_url}/api/openapi.json" in loaded


async def test_under_a_name_that_is_not_loopback_the_page_asks_no_other_origin(
    chromium: Browser, served: AppServer
) -> None:
    # Swagger UI skips its online validator only for a document on localhost; elsewhere (as
    # in Azure) its default sends every visitor's browser to validator.swagger.io.
    origin = served.base_url.replace("127.0.0.1", MAPPED_TO_LOOPBACK)
    off_machine = OffMachineRequests()
    context = await fenced_context(chromium, off_machine)
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    await page.goto(f"{origin}/api/docs")
    await page.locator(".opblock").first.wait_for()
    # Whatever the page does once drawn (badges, images) is given time to be asked for.
    await page.wait_for_load_state("networkidle")
    assert await page.locator(".opblock").count() == len(OPERATIONS)
    await context.close()

    assert off_machine.urls == []
    assert [url for url in requested if not url.startswith(f"{origin}/")] == []
    assert problems == []  # a Content-Security-Policy violation is a console error
