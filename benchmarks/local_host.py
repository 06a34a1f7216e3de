"""How late and how fast jobs fire on the local durable host, over real HTTP and real time.

`.venv/bin/python -m benchmarks.local_host [--jobs 200] [--lead 20]`

Starts Azurite (in memory) and `python -m local_durable_host` in processes of their own on
loopback, with MIN_LEAD_SECONDS lowered to 1 so the run is short, then:

- accepts `--jobs` log.append jobs over HTTP, one after another (creates per second);
- all due at the same instant, `--lead` seconds after the first create;
- waits until every job has an outcome and reads each job's `fired_at` from its status:
  lateness = fired_at - exec_at (median, p95, max), and the rate at which the burst drained.

docs/local-development.md has the figures and what they say about the local host.
"""

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.live.local_host_process import LocalHostProcess
from tests.support.local_servers import running_azurite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--lead", type=float, default=20.0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, running_azurite(Path(workdir)) as (azurite, _):
        host = LocalHostProcess(azurite, Path(workdir), {"MIN_LEAD_SECONDS": "1"})
        host.start()
        try:
            run(host, options.jobs, options.lead)
        finally:
            host.stop()


def run(host: LocalHostProcess, jobs: int, lead: float) -> None:
    headers = {"x-functions-key": host.function_key}
    with httpx.Client(base_url=host.base_url, headers=headers, trust_env=False, timeout=30) as api:
        exec_at = datetime.now(UTC) + timedelta(seconds=lead)
        started = time.perf_counter()
        ids = []
        for number in range(jobs):
            reply = api.post(
                "/api/schedule",
                json={
                    "exec_at": exec_at.isoformat(),
                    "prompt_type": "log.append",
                    "payload": {"message": f"job {number}"},
                },
            )
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
    fired.sort()
    print(f"jobs: {jobs}, all due at one instant")
    print(f"create: {jobs / create_seconds:.0f} jobs/s over HTTP, one at a time")
    print(
        "lateness (fired_at - exec_at): "
        f"median {statistics.median(fired):.2f} s, "
        f"p95 {fired[int(0.95 * (len(fired) - 1))]:.2f} s, max {fired[-1]:.2f} s"
    )
    print(f"burst drained at {jobs / max(fired[-1], 1e-9):.0f} jobs/s")


if __name__ == "__main__":
    main()
