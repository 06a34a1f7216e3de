"""What the dashboard's charts page costs as the records written in the last day grow.

`.venv/bin/python -m benchmarks.dashboard_charts [--sizes 1000,5000,20000] [--repeat 5]`

For each size N it loads N job records written in the last day (each with one to three
attempts in its history) plus N older ones into fresh tables on a fresh in-memory Azurite,
then times GET /api/dashboard/charts through the app's route (signed in, in process): the
read is capped at DASHBOARD_CHART_RECORDS (5,000), so past the cap the time should stop
growing with N, except for what the service spends scanning (Azurite scans the table).
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from scheduling.attempt_history import AttemptSummary
from scheduling.job_record import JobRecord
from storage.sealing import SealedPayload
from tests.support.local_servers import running_azurite
from tests.support.loopback_guard import loopback_only
from tests.support.scheduler import Scheduler, running_scheduler

SEALED = SealedPayload(
    alg="A256GCM", key_id="local:k", wrapped_key="d2s=", nonce="bm9uY2U=", ciphertext="Y3Q=" * 50
)


def record(now: datetime, age: timedelta, rng: random.Random) -> JobRecord:
    due = now - age
    history = []
    for attempt in range(1, rng.randint(1, 3) + 1):
        attempt_due = due + timedelta(seconds=30 * (attempt - 1))
        late = rng.expovariate(1 / 400)
        fired = attempt_due + timedelta(milliseconds=late)
        history.append(
            AttemptSummary(
                attempt=attempt,
                due_at=attempt_due,
                fired_at=fired,
                lateness_ms=round(late),
                finished_at=fired + timedelta(milliseconds=20),
                ok=attempt > 1,
                status_code=200,
            )
        )
    return JobRecord(
        transaction_id=str(uuid.uuid4()),
        generation=uuid.uuid4().hex,
        state="succeeded",
        prompt_type="http.call",
        exec_at=due,
        accepted_at=due - timedelta(hours=1),
        updated_at=history[-1].finished_at or due,
        attempts=len(history),
        destination="POST https://hooks.example.com",
        attempt_history=history,
        sealed_payload=SEALED,
    )


def load(scheduler: Scheduler, size: int, rng: random.Random) -> None:
    now = scheduler.now()
    records = [record(now, timedelta(minutes=rng.uniform(1, 1439)), rng) for _ in range(size)]
    records += [record(now, timedelta(days=rng.uniform(2, 30)), rng) for _ in range(size)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(scheduler.job_store.create, records))


async def time_charts(scheduler: Scheduler, repeat: int) -> list[float]:
    signed_in = await scheduler.api.get("/api/dashboard")
    cookie = signed_in.headers["set-cookie"].split(";", 1)[0]
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        reply = await scheduler.api.request(
            "GET", "/api/dashboard/charts", headers={"Cookie": cookie}
        )
        samples.append((time.perf_counter() - started) * 1000)
        assert reply.status == 200, reply.body[:500]
    return samples


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print("| records in the last day (+ as many older) | charts page, median ms | min | max |")
    print("| ---: | ---: | ---: | ---: |")
    for size in (int(part) for part in args.sizes.split(",")):
        with (
            loopback_only() as violations,
            tempfile.TemporaryDirectory() as workdir,
            running_azurite(Path(workdir)) as (azurite, _),
            running_scheduler(azurite) as scheduler,
        ):
            load(scheduler, size, random.Random(size))
            samples = asyncio.run(time_charts(scheduler, args.repeat))
        if violations:
            raise SystemExit(f"loopback guard: {violations}")
        print(
            f"| {size:,} | {statistics.median(samples):,.0f} | {min(samples):,.0f} "
            f"| {max(samples):,.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
