"""What one registry operation and the first page of the listing cost as the registry grows.

Runs the app's own functions on the in-process Durable stand-in (tests/support/durable_host.py):
`.venv/bin/python -m benchmarks.registry [--sizes 100,1000,10000] [--repeat 30]`.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import time
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions.models.utils import http_utils

from blueprints import dependencies
from function_app import app
from scheduling.models import Job, PendingJob
from scheduling.registry import (
    REGISTRY_ENTITY,
    RegistryState,
    all_shards,
    apply_operation,
    shard_for,
)
from scheduling.settings import SchedulerSettings
from tests.support.app_client import AppClient
from tests.support.durable_host import DurableHost
from tests.support.memory_log import MemoryJobLog

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ORCHESTRATOR = "schedule_orchestrator"  # blueprints/orchestration.py
DEFAULT_SHARDS = 16
LAYOUTS = ((f"{DEFAULT_SHARDS} shards", DEFAULT_SHARDS), ("1 shard", 1))
PAGE_SIZE = 50
WARMUP_ROUNDS = 3


@dataclass(frozen=True)
class Row:
    """One line of the table: a registry size in one shard layout, times in seconds."""

    jobs: int
    layout: str
    shard_count: int
    state_bytes_per_shard: float
    entity_ops: list[float]
    pure_ops: list[float]
    first_pages: list[float]


def make_job(rng: random.Random, shard_count: int) -> Job:
    """A log.append job due within 300 days, with a reproducible id."""
    transaction_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return Job(
        transaction_id=transaction_id,
        exec_at=START + timedelta(seconds=rng.randrange(3600, 300 * 86400)),
        prompt_type="log.append",
        payload={"message": "benchmark", "level": "info", "fields": {}},
        accepted_at=START,
        registry_shard=shard_for(transaction_id, shard_count),
    )


def start_instances(host: DurableHost, jobs: list[Job]) -> None:
    """Start each job's orchestration as `start_new` would; each then waits on its first timer."""
    for job in jobs:
        input_json = json.dumps(job.model_dump_json())  # the Python client posts a JSON string
        host.start_instance(ORCHESTRATOR, job.transaction_id, input_json)
    host.run()


def seed_registry(host: DurableHost, jobs: list[Job], shard_count: int) -> None:
    """Write every shard's state at once: N `add` signals would cost O(N^2) to set up."""
    states: dict[str, dict[str, Any]] = {shard: {} for shard in all_shards(shard_count)}
    for job in jobs:
        shard = shard_for(job.transaction_id, shard_count)
        states[shard][job.transaction_id] = PendingJob.of(job).model_dump(mode="json")
    for shard, entries in states.items():
        host.seed_entity(REGISTRY_ENTITY, shard, json.dumps({"jobs": entries}))


def app_wired_to(host: DurableHost, shard_count: int) -> AbstractContextManager[Any]:
    """The app's dependencies for one layout: the host's clock, an in-memory job log."""
    settings = SchedulerSettings(registry_shards=shard_count)
    job_log = MemoryJobLog()
    return dependencies.overridden(
        clock=host.clock, settings=lambda: settings, job_log=lambda _settings: job_log
    )


def add_then_remove(job: Job) -> list[tuple[str, dict[str, Any]]]:
    """The two operations each round times: register a new job, then forget it."""
    return [
        ("add", {"job": job.model_dump(mode="json")}),
        ("remove", {"transaction_id": job.transaction_id}),
    ]


def time_entity_operations(
    host: DurableHost, shard_count: int, rounds: int, rng: random.Random
) -> list[float]:
    """Per operation: signal, then the host runs the entity batch (state JSON in and out)."""
    samples = []
    for round_number in range(WARMUP_ROUNDS + rounds):
        job = make_job(rng, shard_count)
        for operation, argument in add_then_remove(job):
            input_json = json.dumps(json.dumps(argument))  # a client signal's JSON string literal
            started = time.perf_counter()
            host.signal_entity(REGISTRY_ENTITY, job.registry_shard, operation, input_json)
            host.run()
            if round_number >= WARMUP_ROUNDS:
                samples.append(time.perf_counter() - started)
    failed = [operation for operation in host.entity_operations if operation.is_error]
    if failed:
        raise RuntimeError(f"{len(failed)} entity operations failed, e.g. {failed[0]}")
    return samples


def time_pure_operations(
    host: DurableHost, shard_count: int, rounds: int, rng: random.Random
) -> list[float]:
    """Per `apply_operation` on an already decoded shard state: the domain cost alone."""
    states: dict[str, RegistryState] = {}
    samples = []
    for round_number in range(WARMUP_ROUNDS + rounds):
        job = make_job(rng, shard_count)
        shard = job.registry_shard
        if shard not in states:
            states[shard] = RegistryState.model_validate(host.entity_state(REGISTRY_ENTITY, shard))
        for operation, argument in add_then_remove(job):
            started = time.perf_counter()
            states[shard], _ = apply_operation(states[shard], operation, argument)
            if round_number >= WARMUP_ROUNDS:
                samples.append(time.perf_counter() - started)
    return samples


async def time_first_page(api: AppClient, expected_jobs: int, rounds: int) -> list[float]:
    """Per `GET /api/schedule?limit=50` through the route and the real durable client."""
    samples = []
    for round_number in range(WARMUP_ROUNDS + rounds):
        started = time.perf_counter()
        reply = await api.get(f"/api/schedule?limit={PAGE_SIZE}")
        elapsed = time.perf_counter() - started
        listed = len(reply.json()["jobs"]) if reply.status == 200 else -1
        if listed != expected_jobs:
            raise RuntimeError(f"listing gave {reply.status} with {listed} jobs: {reply.body!r}")
        if round_number >= WARMUP_ROUNDS:
            samples.append(elapsed)
    return samples


def mean_state_bytes(host: DurableHost, shard_count: int) -> float:
    return statistics.fmean(
        len((host.entity(REGISTRY_ENTITY, shard).state_json or "").encode())
        for shard in all_shards(shard_count)
    )


async def measure_size(size: int, rounds: int) -> list[Row]:
    """Both layouts for one registry size, on one host whose orchestrations they share."""
    rng = random.Random(size)  # reproducible jobs
    # The instances' inputs name their default-layout shard; listing never reads it.
    jobs = [make_job(rng, DEFAULT_SHARDS) for _ in range(size)]
    rows = []
    with DurableHost(app, START, max_steps_per_run=2 * size + 100) as host:
        start_instances(host, jobs)
        api = AppClient(host.client_binding())
        for layout, shard_count in LAYOUTS:
            seed_registry(host, jobs, shard_count)
            with app_wired_to(host, shard_count):
                entity_ops = time_entity_operations(host, shard_count, rounds, rng)
                pure_ops = time_pure_operations(host, shard_count, rounds, rng)
                first_pages = await time_first_page(api, min(PAGE_SIZE, size), rounds)
            state_bytes = mean_state_bytes(host, shard_count)
            rows.append(
                Row(size, layout, shard_count, state_bytes, entity_ops, pure_ops, first_pages)
            )
    return rows


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def table(rows: list[Row]) -> str:
    header = (
        "| jobs | layout | jobs/shard | state/shard (KB) | entity op median (ms) "
        "| entity op p95 (ms) | pure op median (ms) | first page median (ms) |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        cells = [
            f"{row.jobs:,}",
            row.layout,
            f"{row.jobs / row.shard_count:,.0f}",
            f"{row.state_bytes_per_shard / 1024:,.1f}",
            milliseconds(statistics.median(row.entity_ops)),
            milliseconds(p95(row.entity_ops)),
            milliseconds(statistics.median(row.pure_ops)),
            milliseconds(statistics.median(row.first_pages)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,10000", help="registry sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=30, help="timed rounds per measurement")
    return parser.parse_args()


async def main() -> None:
    arguments = parse_arguments()
    began = time.perf_counter()
    rows: list[Row] = []
    try:
        for size in (int(size) for size in arguments.sizes.split(",")):
            rows += await measure_size(size, arguments.repeat)
    finally:
        await http_utils._close_session()  # the SDK's shared aiohttp session
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"{arguments.repeat} timed rounds after {WARMUP_ROUNDS} warm-up; "
        f"an op is one add or one remove\n\n{table(rows)}\n\n"
        f"total {time.perf_counter() - began:.1f} s"
    )


if __name__ == "__main__":
    asyncio.run(main())
