"""The reference page in a real headless Chromium: it renders every operation of the
document from the app's own assets, and asks nothing of any other host (no CDN)."""

from collections.abc import Iterator

import pytest
from playwright.async_api import Browser

from local_durable_host.app_server import AppServer
from scheduling.openapi import OPERATIONS
from tests.support.browser import OffMachineRequests, fenced_context
from tests.support.browser import chromium as chromium
from tests.support.scheduler import Scheduler
from tests.support.served_app import served_app


@pytest.fixture
def served(scheduler: Scheduler) -> Iterator[AppServer]:
    with served_app(scheduler) as running:
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
