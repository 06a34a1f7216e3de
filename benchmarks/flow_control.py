"""Flow control's extra lateness: jobs due at one instant to one host, through one flow key.

Runs the app's own orchestrator, flow-control entity and activities on DurableHost (the
tests' in-process stand-in for the Durable extension, activities on threads as the Python
worker runs them), with the job store and log on a local Azurite, against a loopback
receiver that counts the requests it serves at once. Two runs:

- parallel-bound, wall clock: `--jobs` jobs with `--max-parallel` and a rate that never
  binds; the receiver holds each request `--hold-ms`. The last request cannot arrive
  before ceil(jobs / max_parallel) - 1 holds have passed; the extra lateness is how much
  later it arrives, measured from the moment the jobs came due. That is what handing a
  slot on costs here: the attempt's own store writes, the release, the grant's message,
  the next attempt's claim.
- rate-bound, virtual clock: `--rate-jobs` jobs with `--rate`; the last may fire no earlier
  than (jobs - burst) / rate after the due time (a burst of one second's worth); the extra
  lateness is its `fired_at` beyond that.

Run from the repository root (Azurite from `npm ci`):

    .venv/bin/python -m benchmarks.flow_control [--jobs 2000] [--max-parallel 5]
"""

import argparse
import asyncio
import math
import os
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from azure.durable_functions.models.utils import http_utils

from scheduling.flow_control import bucket_capacity
from scheduling.timing import format_utc
from tests.support.counting_receiver import CountingReceiver
from tests.support.local_servers import running_azurite
from tests.support.scheduler import START, Scheduler, running_scheduler
from tests.support.services import AzuriteService

HOST_OPTIONS = {
    "activity_workers": 8,
    "check_replay_determinism": False,
    "max_steps_per_run": 100_000_000,
}
DUE = START + timedelta(minutes=10)


def job_body(url: str, max_parallel: int, rate: float, key: str | None = None) -> dict[str, Any]:
    flow = {"max_parallel": max_parallel, "rate_per_second": rate}
    return {
        "exec_at": format_utc(DUE),
        "prompt_type": "http.call",
        "payload": {"method": "POST", "url": url, "json": {"n": 1}},
        "flow_control": flow if key is None else {**flow, "key": key},
    }


async def schedule(
    scheduler: Scheduler, count: int, body: dict[str, Any], own_keys: bool = False
) -> list[str]:
    """Create `count` jobs like `body`; with `own_keys`, each through a flow key of its own."""
    ids: list[str] = []
    for start in range(0, count, 16):
        bodies = [
            {**body, "flow_control": {**body["flow_control"], "key": f"job-{n}"}}
            if own_keys
            else body
            for n in range(start, min(start + 16, count))
        ]
        replies = await asyncio.gather(
            *(scheduler.api.post("/api/schedule", each) for each in bodies)
        )
        for reply in replies:
            if reply.status != 202:
                raise RuntimeError(f"create refused: {reply.json()}")
            ids.append(reply.json()["transaction_id"])
    return ids


async def burst(
    azurite: AzuriteService, jobs: int, max_parallel: int, hold_ms: float, *, own_keys: bool
) -> tuple[float, CountingReceiver, list[str]]:
    """Seconds from the due instant to the last request's arrival, the receiver, the ids."""
    # Own keys: nobody waits in a line; the host's threads alone keep `max_parallel` at once.
    options = {**HOST_OPTIONS, "activity_workers": max_parallel} if own_keys else HOST_OPTIONS
    with (
        CountingReceiver(hold_seconds=hold_ms / 1000) as receiver,
        running_scheduler(
            azurite, host_options=options, flow_rate_per_second_bound=1_000_000
        ) as scheduler,
    ):
        body = job_body(receiver.url, max_parallel, 1_000_000)
        ids = await schedule(scheduler, jobs, body, own_keys=own_keys)
        scheduler.host.advance_to(DUE - timedelta(seconds=1))
        started = time.perf_counter()
        scheduler.host.advance_to(DUE)
        return max(receiver.arrivals) - started, receiver, ids


async def parallel_bound(
    azurite: AzuriteService, jobs: int, max_parallel: int, hold_ms: float
) -> None:
    last, receiver, ids = await burst(azurite, jobs, max_parallel, hold_ms, own_keys=False)
    rounds = math.ceil(jobs / max_parallel)
    bound = (rounds - 1) * hold_ms / 1000
    fired_once = receiver.calls == dict.fromkeys(ids, 1)
    print(f"parallel-bound: {jobs} jobs, max_parallel {max_parallel}, each held {hold_ms:g} ms")
    print(f"  fired exactly once each: {fired_once}; most in flight: {receiver.max_in_flight}")
    print(f"  last request {last:.1f} s after the due instant; bound {bound:.1f} s")
    print(
        f"  extra lateness of the last: {last - bound:.1f} s, "
        f"{(last - bound) / (rounds - 1) * 1000:.0f} ms per hand-over of a slot"
    )
    base, base_receiver, base_ids = await burst(azurite, jobs, max_parallel, hold_ms, own_keys=True)
    print(
        f"  the same jobs, each through a key of its own, {max_parallel} at a time by the "
        f"host's threads alone: last request {base:.1f} s after the due instant "
        f"(most in flight {base_receiver.max_in_flight}, "
        f"fired once each: {base_receiver.calls == dict.fromkeys(base_ids, 1)})"
    )
    print(
        f"  so waiting in one key's line cost {last - base:.1f} s for the last job, "
        f"{(last - base) / (rounds - 1) * 1000:.0f} ms per hand-over "
        f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )


async def rate_bound(azurite: AzuriteService, jobs: int, rate: float) -> None:
    with (
        CountingReceiver(hold_seconds=0) as receiver,
        running_scheduler(azurite, host_options=HOST_OPTIONS) as scheduler,
    ):
        body = job_body(receiver.url, scheduler.settings.flow_max_parallel_bound, rate)
        ids = await schedule(scheduler, jobs, body)
        bound = max(0.0, (jobs - bucket_capacity(rate)) / rate)
        started = time.perf_counter()
        scheduler.host.advance_to(DUE + timedelta(seconds=bound + 60))
        elapsed = time.perf_counter() - started
        fired = [await fired_at(scheduler, transaction_id) for transaction_id in ids]
    last = (max(fired) - DUE).total_seconds()
    print(f"rate-bound (virtual clock): {jobs} jobs at {rate:g}/s")
    print(f"  fired exactly once each: {receiver.calls == dict.fromkeys(ids, 1)}")
    print(f"  last fired {last:.3f} s after the due time; bound {bound:.3f} s")
    print(f"  extra lateness of the last: {(last - bound) * 1000:.0f} ms ({elapsed:.0f} s wall)")


async def fired_at(scheduler: Scheduler, transaction_id: str) -> datetime:
    status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
    return datetime.fromisoformat(status["fired_at"].replace("Z", "+00:00"))


async def measure(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory() as workdir,
        running_azurite(Path(workdir)) as (azurite, _),
    ):
        try:
            await parallel_bound(azurite, args.jobs, args.max_parallel, args.hold_ms)
            await rate_bound(azurite, args.rate_jobs, args.rate)
        finally:
            await http_utils._close_session()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--max-parallel", type=int, default=5)
    parser.add_argument("--hold-ms", type=float, default=20.0)
    parser.add_argument("--rate-jobs", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
