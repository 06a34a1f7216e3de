"""How long a recurring job's history grows: one episode per run, whatever the run count.

Runs an every-minute `log.append` job for N runs through the app's own orchestrator and
activity on DurableHost (the tests' in-process stand-in for the Durable extension), with the
job store and log on a local Azurite, and prints the history length of each episode. Run
from the repository root (Azurite from `npm ci`):

    .venv/bin/python -m benchmarks.recurring_history [--runs 1000]
"""

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from azure.durable_functions.models.utils import http_utils

from tests.support.local_servers import running_azurite
from tests.support.scheduler import START, running_scheduler


async def measure(runs: int) -> None:
    with (
        tempfile.TemporaryDirectory() as workdir,
        running_azurite(Path(workdir)) as (azurite, _),
    ):
        try:
            with running_scheduler(azurite) as scheduler:
                reply = await scheduler.api.post(
                    "/api/schedule",
                    {"cron": "* * * * *", "prompt_type": "log.append", "payload": {"message": "m"}},
                )
                transaction_id = reply.json()["transaction_id"]
                started = time.perf_counter()
                scheduler.host.advance_to(START + timedelta(minutes=runs, seconds=30))
                elapsed = time.perf_counter() - started
                orchestration = scheduler.orchestration(transaction_id)
                lengths = orchestration.max_history_length_per_episode
                status = (await scheduler.api.get(f"/api/schedule/{transaction_id}/status")).json()
        finally:
            await http_utils._close_session()
    print(f"runs done: {status['runs']}, episodes: {orchestration.episode_count}")
    for label, index in (("run 1", 0), ("run 2", 1), ("run 100", 99), (f"run {runs}", runs - 1)):
        if index < len(lengths):
            print(f"  history events replayed by the episode of {label}: {lengths[index]}")
    print(
        f"  longest episode of all: {max(lengths)} events; {elapsed / runs * 1000:.1f} ms per run"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    asyncio.run(measure(parser.parse_args().runs))


if __name__ == "__main__":
    main()
