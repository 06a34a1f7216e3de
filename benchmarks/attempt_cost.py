"""What ONE http.call attempt costs in this process, against a bare httpx.post, side by side.

`.venv/bin/python -m benchmarks.attempt_cost [--repeat 30] [--warmup 3] [--counted 3]`

Starts Azurite (in memory) and the loopback receiver of the burst benchmark (a process of its
own), then:

1. creates `warmup + counted + repeat` http.call jobs (POST, a small JSON body, to the
   receiver) through the app's own POST /api/schedule on the durable stand-in, with a
   developer's settings (local sealing key, webhook signing secret, loopback allowed): each
   record, index row and log entry is what the app writes;
2. runs attempt 1 of each, in this process, as the Python worker runs it
   (`tests/support/attempts.py`: the app's `execute_prompt` activity, which calls
   `delivery.attempts.run_attempt`), alternating with a bare `httpx.post` of the same body
   to the same receiver through ONE reused client configured as ours
   (`benchmarks/peer_scheduler.reused_http_client`): attempt, post, attempt, post, ...;
   medians of wall time, of this process's CPU time and of Azurite's;
3. runs `counted` more attempts with the job store and job log pointed at a recording proxy
   in front of Azurite (`tests/support/table_requests.py`), and lists the Table requests
   each made, in order, with where the http.call's own request fell among them.

Every attempt must end `succeeded` and every call reach the receiver exactly once, or the run
fails. docs/benchmarks.md says how to read the figures.
"""

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from azure.durable_functions.models.utils import http_utils

from benchmarks.measuring import load_average, percentile, process_cpu_seconds
from benchmarks.peer_scheduler import reused_http_client
from blueprints import dependencies
from delivery.prompts.http_call import TRANSACTION_HEADER
from scheduling.job_record import AttemptOrder
from scheduling.settings import SchedulerSettings
from storage.job_log.factory import close_job_logs
from storage.job_store import FAILED_SUFFIX, INDEX_SUFFIX
from storage.job_store_factory import close_job_stores
from tests.support.arrival_receiver import ArrivalReceiver
from tests.support.attempts import first_attempt, run_one_attempt
from tests.support.local_servers import AzuriteService, running_azurite
from tests.support.loopback_guard import loopback_only
from tests.support.scheduler import START, running_scheduler
from tests.support.table_requests import TableRequest, TableRequestLog

# Made for this benchmark only: a Standard Webhooks secret, as scripts/run-local.sh makes one.
SIGNING_SECRET = "whsec_" + "QkVOQ0hCRU5DSEJFTkNIQkVOQ0hCRU5DSEJFTkNIQkU="
DUE = START + timedelta(minutes=10)
BODY = {"n": 1}


@dataclass
class Samples:
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    azurite_cpu_ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "wall_median_ms": statistics.median(self.wall_ms),
            "wall_p95_ms": percentile(self.wall_ms, 0.95),
            "cpu_median_ms": statistics.median(self.cpu_ms),
            "azurite_cpu_median_ms": statistics.median(self.azurite_cpu_ms),
        }


def timed(samples: Samples, azurite_pid: int, work: Callable[[], object]) -> None:
    azurite_before = process_cpu_seconds(azurite_pid)
    cpu_before = time.process_time()
    started = time.perf_counter()
    work()
    samples.wall_ms.append((time.perf_counter() - started) * 1000)
    samples.cpu_ms.append((time.process_time() - cpu_before) * 1000)
    samples.azurite_cpu_ms.append((process_cpu_seconds(azurite_pid) - azurite_before) * 1000)


async def create_jobs(
    azurite: AzuriteService, url: str, count: int
) -> tuple[SchedulerSettings, list[AttemptOrder]]:
    """`count` http.call jobs due at DUE, made by the app's create route; the settings they
    were made with and the order of each one's first attempt (as its orchestration makes it)."""
    try:
        with running_scheduler(azurite, webhook_signing_secrets=SIGNING_SECRET) as scheduler:
            orders = []
            for _ in range(count):
                transaction_id = await scheduler.accepted(
                    "http.call", {"method": "POST", "url": url, "json": BODY}, at=DUE
                )
                orders.append(first_attempt(scheduler.job_store, transaction_id))
            return scheduler.settings, orders
    finally:
        await http_utils._close_session()


def attempt(order: AttemptOrder) -> None:
    report = run_one_attempt(order)
    if report.state != "succeeded":
        raise RuntimeError(f"attempt of {order.transaction_id} ended {report.state}")


def bare_post(client: httpx.Client, url: str, call_id: str) -> None:
    client.post(url, json=BODY, headers={TRANSACTION_HEADER: call_id}).raise_for_status()


def counted_attempts(
    orders: Sequence[AttemptOrder],
    settings: SchedulerSettings,
    table_log: TableRequestLog,
    receiver: ArrivalReceiver,
) -> list[list[str]]:
    """Each attempt's Table requests through the proxy, in order, the http.call's own request
    placed among them by arrival time."""
    through_proxy = settings.model_copy(
        update={"azure_web_jobs_storage": table_log.connection_string}
    )
    listings = []
    with dependencies.overridden(settings=lambda: through_proxy):
        for order in orders:
            table_log.clear()
            attempt(order)
            requests = table_log.requests()
            called = [a.at for a in receiver.arrivals() if a.transaction_id == order.transaction_id]
            listings.append(_listing(requests, called))
    return listings


def _listing(requests: Sequence[TableRequest], called: Sequence[float]) -> list[str]:
    lines: list[tuple[float, str]] = [(r.at, r.describe()) for r in requests]
    lines += [(at, "-- the http.call's request arrives at the receiver --") for at in called]
    return [text for _, text in sorted(lines, key=lambda line: line[0])]


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    total = args.warmup + args.counted + args.repeat
    with (
        running_azurite(workdir) as (azurite, azurite_server),
        ArrivalReceiver(workdir) as receiver,
        TableRequestLog(azurite) as table_log,
    ):
        progress(f"creating {total} jobs through the app's create route")
        settings, orders = asyncio.run(create_jobs(azurite, receiver.url, total))
        warmups = orders[: args.warmup]
        counted = orders[args.warmup : args.warmup + args.counted]
        timed_orders = orders[args.warmup + args.counted :]
        # The attempt's clock starts at the due time and runs on.
        origin = time.monotonic()

        def clock() -> datetime:
            return DUE + timedelta(seconds=time.monotonic() - origin)

        attempts, posts = Samples(), Samples()
        load_before = load_average()
        try:
            with (
                dependencies.overridden(settings=lambda: settings, clock=clock),
                reused_http_client() as client,
            ):
                progress("warming up")
                for number, order in enumerate(warmups):
                    attempt(order)
                    bare_post(client, receiver.url, f"bare-warmup-{number}")
                progress(f"timing {args.repeat} attempts and {args.repeat} bare posts, alternated")
                for number, order in enumerate(timed_orders):
                    timed(attempts, azurite_server.pid, partial(attempt, order))
                    timed(
                        posts,
                        azurite_server.pid,
                        partial(bare_post, client, receiver.url, f"bare-{number}"),
                    )
                load_after = load_average()
                progress(f"counting the Table requests of {args.counted} attempts")
                listings = counted_attempts(counted, settings, table_log, receiver)
        finally:
            close_job_stores()
            close_job_logs()
        calls = receiver.calls()
    expected = {order.transaction_id for order in orders}
    expected |= {f"bare-warmup-{n}" for n in range(args.warmup)}
    expected |= {f"bare-{n}" for n in range(args.repeat)}
    if calls != dict.fromkeys(expected, 1):
        raise RuntimeError(
            "the receiver did not get each call exactly once: "
            f"{sum(1 for i in expected if calls[i] == 0)} missing, "
            f"{sum(1 for i in expected if calls[i] > 1)} more than once, "
            f"{len(set(calls) - expected)} unknown"
        )
    return {
        "repeat": args.repeat,
        "warmup": args.warmup,
        "load_average": [load_before, load_after],
        "attempt": {**attempts.summary(), "samples": asdict(attempts)},
        "bare_post": {**posts.summary(), "samples": asdict(posts)},
        "table_requests": listings,
        "tables": {
            settings.job_table: "the job records and (beside each) its log entries",
            settings.job_table + INDEX_SUFFIX: "the index of live jobs by due time",
            settings.job_table + FAILED_SUFFIX: "the index of failed jobs",
        },
    }


def report(result: dict[str, Any]) -> str:
    ours, bare = result["attempt"], result["bare_post"]
    lines = [
        f"one http.call attempt vs a bare httpx.post with a reused client: "
        f"{result['repeat']} of each, alternated, after {result['warmup']} warm-up each; "
        f"load average {result['load_average'][0]:.2f} -> {result['load_average'][1]:.2f}",
        "",
        "| | wall median (ms) | wall p95 (ms) | CPU median, this process (ms) "
        "| Azurite CPU median (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, figures in (("attempt (activity, run_attempt)", ours), ("bare httpx.post", bare)):
        lines.append(
            f"| {name} | {figures['wall_median_ms']:.2f} | {figures['wall_p95_ms']:.2f} "
            f"| {figures['cpu_median_ms']:.2f} | {figures['azurite_cpu_median_ms']:.2f} |"
        )
    lines.append(
        f"| ratio | {ours['wall_median_ms'] / bare['wall_median_ms']:.1f}x | "
        f"| {ours['cpu_median_ms'] / bare['cpu_median_ms']:.1f}x | |"
    )
    tables = "; ".join(f"{name}: {role}" for name, role in result["tables"].items())
    lines += ["", f"Tables: {tables}."]
    listings = result["table_requests"]
    distinct = {tuple(listing) for listing in listings}
    for number, listing in enumerate(sorted(distinct), start=1):
        table_requests = sum(1 for line in listing if not line.startswith("--"))
        same = sum(1 for other in listings if tuple(other) == listing)
        lines += [
            "",
            f"Table requests of one attempt: {table_requests} "
            f"({same} of {len(listings)} counted attempts made these"
            f"{'' if len(distinct) == 1 else f'; variant {number}'}):",
        ]
        lines += [f"  {line}" for line in listing]
    return "\n".join(lines)


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=30, help="timed attempts (and posts)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed attempts first")
    parser.add_argument("--counted", type=int, default=3, help="attempts through the proxy")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.counted < 1 or args.warmup < 0:
        parser.error("--repeat and --counted must be at least 1, --warmup at least 0")
    with loopback_only() as violations, tempfile.TemporaryDirectory() as workdir:
        result = measure(args, Path(workdir))
    if violations:
        raise SystemExit("the benchmark reached beyond loopback: " + "; ".join(violations))
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
