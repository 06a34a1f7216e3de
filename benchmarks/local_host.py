"""How late and how fast jobs fire on the local durable host, over real HTTP and real time.

`.venv/bin/python -m benchmarks.local_host [--jobs 200] [--lead 20]`
`.venv/bin/python -m benchmarks.local_host --prompt http.call --hold-ms 100 \
    --activity-workers 8,16,32 --rounds 3`

Starts Azurite (in memory) and `python -m local_durable_host` in processes of their own on
loopback, with MIN_LEAD_SECONDS lowered to 1 so the run is short, then:

- accepts `--jobs` jobs over HTTP, one after another (creates per second): `log.append`, or
  `http.call` to a loopback receiver that holds each request `--hold-ms` (an I/O-bound call;
  its flow control set wide, 100 at once and 500/s, so that only the host's activity workers
  bound how many overlap);
- all due at the same instant, `--lead` seconds after the first create;
- waits until every job has an outcome and reads each job's `fired_at` from its status:
  lateness = fired_at - exec_at (median, p95, max), and the rate at which the burst drained.

With several `--activity-workers` counts, each round runs every count once, in an order that
rotates per round (so drift in the machine's load falls on all alike), on a fresh host and
fresh tables; the medians over rounds are printed with the load average before and after.

docs/local-development.md has the figures and what they say about the local host.
"""

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from local_durable_host.local_host import ACTIVITY_WORKERS
from tests.live.local_host_process import LocalHostProcess
from tests.support.counting_receiver import CountingReceiver
from tests.support.local_servers import running_azurite
from tests.support.services import AzuriteService

JobBody = Callable[[int, datetime], dict[str, Any]]


@dataclass(frozen=True)
class Burst:
    jobs: int
    create_rate: float
    lateness: list[float]  # seconds, sorted

    @property
    def p50(self) -> float:
        return statistics.median(self.lateness)

    @property
    def p95(self) -> float:
        return self.lateness[int(0.95 * (len(self.lateness) - 1))]

    @property
    def drain_rate(self) -> float:
        return self.jobs / max(self.lateness[-1], 1e-9)


def log_append_body(number: int, exec_at: datetime) -> dict[str, Any]:
    return {
        "exec_at": exec_at.isoformat(),
        "prompt_type": "log.append",
        "payload": {"message": f"job {number}"},
    }


def http_call_body(url: str) -> JobBody:
    def body(number: int, exec_at: datetime) -> dict[str, Any]:
        return {
            "exec_at": exec_at.isoformat(),
            "prompt_type": "http.call",
            "payload": {"method": "POST", "url": url, "json": {"n": number}},
            "flow_control": {"max_parallel": 100, "rate_per_second": 500},
        }

    return body


def measure_burst(host: LocalHostProcess, jobs: int, lead: float, body: JobBody) -> Burst:
    """Create `jobs` jobs one after another, all due `lead` s after the first; wait for all."""
    headers = {"x-functions-key": host.function_key}
    with httpx.Client(base_url=host.base_url, headers=headers, trust_env=False, timeout=30) as api:
        exec_at = datetime.now(UTC) + timedelta(seconds=lead)
        started = time.perf_counter()
        ids = []
        for number in range(jobs):
            reply = api.post("/api/schedule", json=body(number, exec_at))
            reply.raise_for_status()
            ids.append(reply.json()["transaction_id"])
        create_seconds = time.perf_counter() - started
        if datetime.now(UTC) >= exec_at:
            raise SystemExit(f"creating {jobs} jobs took longer than --lead {lead}: raise it")
        fired: list[float] = []
        for transaction_id in ids:
            while True:
                status = api.get(f"/api/schedule/{transaction_id}/status").json()
                if status["state"] not in ("pending", "firing", "retrying"):
                    break
                time.sleep(0.5)
            assert status["state"] == "succeeded", status
            fired_at = datetime.fromisoformat(status["fired_at"].replace("Z", "+00:00"))
            fired.append((fired_at - exec_at).total_seconds())
    return Burst(jobs=jobs, create_rate=jobs / create_seconds, lateness=sorted(fired))


@contextmanager
def local_host(
    azurite: AzuriteService, workdir: Path, settings: dict[str, str]
) -> Iterator[LocalHostProcess]:
    """The app on the local durable host in `workdir` (its state in `workdir`/state)."""
    workdir.mkdir(parents=True, exist_ok=True)
    host = LocalHostProcess(azurite, workdir, {"MIN_LEAD_SECONDS": "1", **settings})
    host.start()
    try:
        yield host
    finally:
        host.stop()


def rotated(items: list[Any], by: int) -> list[Any]:
    """`items` starting at position `by`: each round puts another one first."""
    by %= len(items)
    return items[by:] + items[:by]


def load_average() -> str:
    return " ".join(f"{load:.2f}" for load in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--lead", type=float, default=20.0)
    parser.add_argument("--prompt", choices=["log.append", "http.call"], default="log.append")
    parser.add_argument("--hold-ms", type=float, default=100.0)
    parser.add_argument(
        "--activity-workers",
        default=str(ACTIVITY_WORKERS),
        help=f"counts to compare, e.g. 8,32 (default: the host's own, {ACTIVITY_WORKERS})",
    )
    parser.add_argument("--rounds", type=int, default=1)
    options = parser.parse_args()
    worker_counts = [int(count) for count in options.activity_workers.split(",")]
    print(f"load average before: {load_average()}", flush=True)
    bursts: dict[int, list[Burst]] = {count: [] for count in worker_counts}
    receivers: dict[int, list[int]] = {count: [] for count in worker_counts}
    with (
        tempfile.TemporaryDirectory() as workdir,
        running_azurite(Path(workdir)) as (azurite, _),
    ):
        for round_number in range(options.rounds):
            for count in rotated(worker_counts, round_number):
                receiving = (
                    CountingReceiver(hold_seconds=options.hold_ms / 1000)
                    if options.prompt == "http.call"
                    else nullcontext()
                )
                with receiving as receiver:
                    body = http_call_body(receiver.url) if receiver else log_append_body
                    run_dir = Path(workdir) / f"round{round_number}-workers{count}"
                    settings = {"LOCAL_HOST_ACTIVITY_WORKERS": str(count)}
                    with local_host(azurite, run_dir, settings) as host:
                        burst = measure_burst(host, options.jobs, options.lead, body)
                    bursts[count].append(burst)
                    if receiver:
                        receivers[count].append(receiver.max_in_flight)
                print(
                    f"round {round_number + 1}, {count} activity workers: "
                    f"create {burst.create_rate:.0f}/s, drain {burst.drain_rate:.1f}/s, "
                    f"lateness p50 {burst.p50:.2f} s p95 {burst.p95:.2f} s",
                    flush=True,
                )
    print(f"load average after: {load_average()}")
    print(
        f"jobs: {options.jobs} {options.prompt}, all due at one instant; "
        f"medians of {options.rounds} round(s)"
    )
    for count in worker_counts:
        runs = bursts[count]
        overlap = (
            f", most in flight at the receiver {max(receivers[count])}" if receivers[count] else ""
        )
        print(
            f"{count:>3} activity workers: "
            f"create {statistics.median(b.create_rate for b in runs):.0f} jobs/s over HTTP, "
            f"burst drained at {statistics.median(b.drain_rate for b in runs):.1f} jobs/s, "
            f"lateness median {statistics.median(b.p50 for b in runs):.2f} s, "
            f"p95 {statistics.median(b.p95 for b in runs):.2f} s, "
            f"max {statistics.median(b.lateness[-1] for b in runs):.2f} s{overlap}"
        )


if __name__ == "__main__":
    main()
