"""1,000 jobs by one batch against 1,000 single creates, over HTTP on the local durable host.

`.venv/bin/python -m benchmarks.batch_create [--jobs 1000] [--rounds 3] [--labels 1]
    [--worker-processes N]`

Starts Azurite (in memory) and `python -m local_durable_host` in processes of their own on
loopback, then, each round, creates `--jobs` `log.append` jobs two ways, side by side:

- single: one `POST /api/schedule` after another on one keep-alive connection (as a client
  that has no batch endpoint does);
- batch: one `POST /api/schedule/batch` with all of them.

Each job carries `--labels` labels and is due an hour ahead (none fires during the run). The
order of the two alternates per round, so drift in the machine's load (and Azurite's growing
tables) falls on both alike; the medians over rounds and their ratio are printed with the
load average before and after. Every job of each way is checked to have been created. Also
printed: the CPU time per job each process spent during each way (from /proc: the host's
own process, its worker processes, Azurite).
`--worker-processes` sets the host's FUNCTIONS_WORKER_PROCESS_COUNT (0: the app's functions
in the host's own process; by default, the host's default).

docs/bulk.md has the figures.
"""

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.local_host import load_average, local_host
from benchmarks.measuring import process_cpu_seconds, process_tree_cpu_seconds
from tests.support.local_servers import running_azurite


def job_body(number: int, exec_at: datetime, labels: int, run: str) -> dict[str, Any]:
    return {
        "exec_at": exec_at.isoformat(),
        "prompt_type": "log.append",
        "payload": {"message": f"job {number}"},
        "labels": {"run": run, **{f"label{n}": f"value{n}" for n in range(1, labels)}}
        if labels
        else None,
    }


def singles(api: httpx.Client, bodies: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for body in bodies:
        reply = api.post("/api/schedule", json=body)
        if reply.status_code != 202:
            raise SystemExit(f"a single create failed: {reply.status_code} {reply.text}")
    return time.perf_counter() - started


def batch(api: httpx.Client, bodies: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    reply = api.post("/api/schedule/batch", json={"jobs": bodies})
    seconds = time.perf_counter() - started
    outcome = reply.json()
    if reply.status_code != 200 or outcome["created"] != len(bodies):
        raise SystemExit(f"the batch did not create every job: {reply.status_code} {outcome}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--labels", type=int, default=1)
    parser.add_argument("--worker-processes", type=int)
    options = parser.parse_args()
    host_settings = (
        {}
        if options.worker_processes is None
        else {"FUNCTIONS_WORKER_PROCESS_COUNT": str(options.worker_processes)}
    )
    print(f"load average before: {load_average()}", flush=True)
    times: dict[str, list[float]] = {"single": [], "batch": []}
    with (
        tempfile.TemporaryDirectory() as workdir,
        running_azurite(Path(workdir)) as (azurite, azurite_server),
        local_host(azurite, Path(workdir) / "host", host_settings) as host,
        httpx.Client(
            base_url=host.base_url,
            headers={"x-functions-key": host.function_key},
            trust_env=False,
            timeout=300,
        ) as api,
    ):
        for round_number in range(options.rounds):
            ways = ["single", "batch"] if round_number % 2 == 0 else ["batch", "single"]
            for way in ways:
                exec_at = datetime.now(UTC) + timedelta(hours=1)
                run = f"r{round_number}-{way}"
                bodies = [
                    {k: v for k, v in job_body(n, exec_at, options.labels, run).items() if v}
                    for n in range(options.jobs)
                ]
                before = cpu_seconds(host.pid, azurite_server.pid)
                seconds = (singles if way == "single" else batch)(api, bodies)
                spent = cpu_seconds(host.pid, azurite_server.pid)
                times[way].append(seconds)
                listed = count_labelled(api, run) if options.labels else options.jobs
                if listed != options.jobs:
                    raise SystemExit(f"{way}: {listed} jobs listed under run={run}")
                cpu = ", ".join(
                    f"{name} {(spent[name] - before[name]) * 1000 / options.jobs:.2f}"
                    for name in spent
                )
                print(
                    f"round {round_number + 1}, {way}: {options.jobs} jobs in {seconds:.2f} s "
                    f"({options.jobs / seconds:.0f} jobs/s); CPU ms per job: {cpu}",
                    flush=True,
                )
    print(f"load average after: {load_average()}")
    single, batched = statistics.median(times["single"]), statistics.median(times["batch"])
    print(
        f"{options.jobs} log.append jobs with {options.labels} label(s), medians of "
        f"{options.rounds} rounds: single creates {single:.2f} s "
        f"({options.jobs / single:.0f} jobs/s), one batch {batched:.2f} s "
        f"({options.jobs / batched:.0f} jobs/s): the batch {single / batched:.1f}x faster"
    )


def cpu_seconds(host_pid: int, azurite_pid: int) -> dict[str, float]:
    """CPU time so far of the host's own process, its worker processes, and Azurite."""
    host = process_cpu_seconds(host_pid)
    return {
        "host": host,
        "workers": process_tree_cpu_seconds(host_pid) - host,
        "Azurite": process_cpu_seconds(azurite_pid),
    }


def count_labelled(api: httpx.Client, run: str) -> int:
    """How many live jobs carry run=`run`, paging the labelled listing."""
    count, cursor = 0, None
    while True:
        params: dict[str, Any] = {"label": f"run={run}", "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = api.get("/api/schedule", params=params).json()
        count += len(page["jobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            return count


if __name__ == "__main__":
    main()
