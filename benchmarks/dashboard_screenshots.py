"""Screenshots of each dashboard page for docs/, from a day of made-up traffic.

`.venv/bin/python -m benchmarks.dashboard_screenshots [--out docs]`

Runs the whole app as the tests do (Azurite in memory, the durable host on a virtual clock,
the app over loopback HTTP), makes a day of jobs through the API (one-time jobs firing a
little late, recurring jobs, a target that answers 200 and a port where nothing listens, so
some jobs fail; some labelled, one left overdue), walks the clock through that day, and has
headless Chromium sign in and photograph each page as docs/dashboard-<page>.png. Nothing
leaves this machine: the Python side runs under the tests' loopback guard, Chromium under
the tests' flags and routing.
"""

import argparse
import asyncio
import random
import tempfile
import threading
from collections.abc import Sequence
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from azure.durable_functions.models.utils import http_utils
from playwright.async_api import async_playwright

from function_app import app
from local_durable_host.app_server import AppServer, Keys
from scheduling.timing import format_utc
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, OffMachineRequests, fenced_context
from tests.support.local_servers import REPO_ROOT, running_azurite
from tests.support.loopback_guard import loopback_only
from tests.support.scheduler import Scheduler, running_scheduler

FUNCTION_KEY = "screenshots-function-key"
ADMIN_KEY = "screenshots-admin-key"
PAGES = {
    "pending": "/api/dashboard/jobs",
    "recurring": "/api/dashboard/recurring",
    "failed": "/api/dashboard/failed",
    "charts": "/api/dashboard/charts",
}


class _Target(BaseHTTPRequestHandler):
    """A webhook receiver on loopback that answers 200 (or 503 for /flaky)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(503 if self.path.startswith("/flaky") else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


async def _create(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    reply = await http.post("/api/schedule", json=body)
    reply.raise_for_status()
    transaction_id: str = reply.json()["transaction_id"]
    return transaction_id


async def _make_a_day(scheduler: Scheduler, http: httpx.AsyncClient, target: str) -> str:
    """A day of traffic ending at the clock's new now; the id of a job worth a timeline."""
    rng = random.Random(13)
    start = scheduler.now()
    # Recurring jobs that run through the day (their runs fire on time).
    recurring = [
        await _create(
            http,
            {
                "cron": cron,
                "timezone": zone,
                "prompt_type": "http.call",
                "payload": {"url": f"{target}/cron"},
                "labels": labels,
            },
        )
        for cron, zone, labels in (
            ("*/30 * * * *", "UTC", {"task": "cache-warm-up"}),
            ("0 */4 * * *", "Europe/Berlin", {"task": "stock-sync", "team": "inventory"}),
            ("0 9 * * 1-5", "Europe/Paris", {"task": "stand-up-reminder"}),
        )
    ]
    fires = []
    for i in range(240):
        due = start + timedelta(minutes=2 + i * 6 + rng.randrange(0, 5))
        url = f"{target}/{'flaky' if i % 17 == 0 else 'hook'}"
        if i % 23 == 0:
            url = "http://127.0.0.1:9/nothing-listens"
        body: dict[str, Any] = {
            "exec_at": format_utc(due),
            "prompt_type": "http.call" if i % 3 else "log.append",
            "payload": {"url": url, "json": {"n": i}}
            if i % 3
            else {"message": f"nightly report #{i}", "fields": {"rows": i * 7}},
            "retry": {"max_attempts": 2, "initial_delay_seconds": 5},
        }
        if i % 4 == 1:
            body["labels"] = (
                {"report": "nightly"} if i % 3 == 0 else {"tenant": "acme", "flow": "orders"}
            )
        fires.append((due, await _create(http, body)))
    timeline_job = fires[17][1]  # a flaky target: a failed first attempt, then a retry
    for due, _ in sorted(fires):
        # Lateness as a worker would show it: mostly well under a second, a long tail.
        late = rng.choice([0.05, 0.1, 0.2, 0.3, 0.4, 0.7, 1.2, 2.5, 6.0]) * rng.uniform(0.5, 1.5)
        # Earlier timers (retries included) fire on time; this job's, `late` after it is due.
        scheduler.host.advance_to(max(scheduler.now(), due - timedelta(milliseconds=1)))
        scheduler.host.set_clock(max(scheduler.now(), due + timedelta(seconds=late)))
        scheduler.host.run()
    scheduler.host.advance(60)
    (await http.post(f"/api/schedule/{recurring[1]}/pause")).raise_for_status()
    return timeline_job


async def _make_pending(http: httpx.AsyncClient, scheduler: Scheduler, target: str) -> None:
    now = scheduler.now()
    # Due in 2 minutes; the clock then moves 5 minutes on with the host stopped: overdue.
    await _create(
        http,
        {
            "exec_at": format_utc(now + timedelta(minutes=2)),
            "prompt_type": "http.call",
            "payload": {"method": "POST", "url": f"{target}/orders/late"},
            "labels": {"tenant": "acme", "event": "order-confirmation"},
        },
    )
    for i, minutes in enumerate((8, 12, 20, 30, 45, 90, 240, 600)):
        await _create(
            http,
            {
                "exec_at": format_utc(now + timedelta(minutes=minutes)),
                "prompt_type": "http.call" if i % 2 else "log.append",
                "payload": {"method": "POST", "url": f"{target}/orders/{i}"}
                if i % 2
                else {"message": f"reminder {i}"},
                **({"labels": {"tenant": f"shop-{i}", "event": "shipped"}} if i % 2 else {}),
            },
        )
    for cron, zone, labels in (
        ("30 1 * * *", "Europe/London", {"digest": "daily"}),
        ("0 18 * * 5", "America/New_York", None),
    ):
        await _create(
            http,
            {
                "cron": cron,
                "timezone": zone,
                "prompt_type": "http.call",
                "payload": {"url": f"{target}/cron"},
                **({"labels": labels} if labels else {}),
            },
        )
    scheduler.host.set_clock(now + timedelta(minutes=5))


async def _photograph(base_url: str, out: Path, timeline_job: str) -> list[Path]:
    taken = []
    off_machine = OffMachineRequests()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        context = await fenced_context(browser, off_machine)
        page = await context.new_page()
        await page.goto(f"{base_url}/api/dashboard?code={ADMIN_KEY}")
        for name, path in {**PAGES, "timeline": f"/api/dashboard/jobs/{timeline_job}"}.items():
            await page.goto(base_url + path)
            target = out / f"dashboard-{name}.png"
            await page.screenshot(path=str(target), full_page=True)
            taken.append(target)
        await browser.close()
    if off_machine.urls:
        raise RuntimeError(f"a page tried to leave loopback: {off_machine.urls}")
    return taken


async def _run(scheduler: Scheduler, out: Path) -> list[Path]:
    target_server = ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    threading.Thread(target=target_server.serve_forever, daemon=True).start()
    target = f"http://127.0.0.1:{target_server.server_address[1]}"
    server = AppServer(
        app,
        scheduler.host.client_binding,
        Keys(function_key=FUNCTION_KEY, master_key=ADMIN_KEY),
        loop=asyncio.get_running_loop(),
    )
    try:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers={"x-functions-key": FUNCTION_KEY}, timeout=60
        ) as http:
            timeline_job = await _make_a_day(scheduler, http, target)
            await _make_pending(http, scheduler, target)
            return await _photograph(server.base_url, out, timeline_job)
    finally:
        server.close()
        target_server.shutdown()
        await http_utils._close_session()  # the Durable SDK's session, made on this loop


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs")
    args = parser.parse_args(argv)
    with (
        loopback_only() as violations,
        tempfile.TemporaryDirectory() as workdir,
        running_azurite(Path(workdir)) as (azurite, _),
        running_scheduler(azurite) as scheduler,
    ):
        taken = asyncio.run(_run(scheduler, args.out))
    if violations:
        raise SystemExit(f"loopback guard: {violations}")
    for path in taken:
        print(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


if __name__ == "__main__":
    main()
