"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, kept off the network.

The loopback guard sees only this Python process; Chromium is another process, so it is
fenced by its own flags: no background services (updates, sync, safe browsing, metrics),
every host name resolves to nothing but loopback (one test name, MAPPED_TO_LOOPBACK, to
127.0.0.1), and every other destination goes to a proxy on the discard port where nothing
listens. Each test's context also aborts and
records any request to a non-loopback URL, so a page that tried one fails its test.
"""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Route, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
# A name that is not loopback's, for pages that behave differently on localhost: the browser
# resolves it to 127.0.0.1 itself, so no lookup or connection leaves the machine. `.test` is
# reserved (RFC 2606): no real host has it.
MAPPED_TO_LOOPBACK = "scheduler.test"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # root in a container: Chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-quic",
    "--metrics-recording-only",
    # No name resolves but loopback's (and MAPPED_TO_LOOPBACK, to 127.0.0.1), and any other
    # address is sent to a dead proxy.
    f"--host-resolver-rules=MAP {MAPPED_TO_LOOPBACK} 127.0.0.1, MAP * ~NOTFOUND, "
    "EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    f"--proxy-bypass-list=127.0.0.1;localhost;[::1];{MAPPED_TO_LOOPBACK}",
]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", MAPPED_TO_LOOPBACK})


@dataclass
class OffMachineRequests:
    """Requests a page tried outside loopback (aborted before they left)."""

    urls: list[str] = field(default_factory=list)


def chromium_missing_reason() -> str | None:
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} is not installed (Debian package `chromium`; scripts/test.sh installs "
            "it when apt-get can)"
        )
    return None


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    """One browser for the session, on a fresh temporary profile (Playwright makes one);
    each test gets its own context, so its own cookies."""
    if (reason := chromium_missing_reason()) is not None:
        pytest.skip(reason)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def fenced_context(browser: Browser, off_machine: OffMachineRequests) -> BrowserContext:
    """A new browser context whose requests may reach loopback only."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})

    async def only_loopback(route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if urlsplit(url).scheme in ("http", "https") and host not in LOOPBACK_HOSTS:
            off_machine.urls.append(url)
            await route.abort("blockedbyclient")
        else:
            await route.continue_()

    await context.route("**/*", only_loopback)
    return context
