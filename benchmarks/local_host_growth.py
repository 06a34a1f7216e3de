"""Does the local durable host stay fast as finished jobs pile up? Creates and a burst's
drain at 0 / 10,000 / 50,000 finished jobs (issue 19: a create at 50,000 costs at most 1.5x
one at 0).

`.venv/bin/python -m benchmarks.local_host_growth [--sizes 0,10000,50000] [--rounds 3]`
`.venv/bin/python -m benchmarks.local_host_growth --sizes 0,2000 --rounds 1 --jobs 50`  (smoke)

1. A template: one log.append job runs to its end on a fresh local host
   (`python -m local_durable_host` over Azurite); its finished orchestration, as the host
   stored it, is read back from the state file.
2. Seeding: for each size N, a state file with N finished jobs, each a copy of the template
   under ids of its own (instance id, execution id, and the ExecutionStarted event that
   names them), written by the host's own `DurableStore.put_instance`: the rows are exactly
   what the engine writes when a job finishes (its instance row, one row per history event
   and per action, its episode). Only the job store (Azurite) does not hold those jobs: it
   plays no part in what the host's state costs.
3. Each round measures every size once, in an order that rotates per round, each on a fresh
   copy of its seeded state:
   - engine create: `DurableHost.start_instance` of the app's orchestrator in-process on that
     state file, `--engine-creates` times, each saved before it returns (as a client request
     is): the host's own cost per create, median of the calls;
   - over HTTP: the local host process on that state; `--jobs` log.append jobs created one
     after another over HTTP (creates per second), all due at one instant, and the rate at
     which that burst drains (benchmarks/local_host.py's measurement).
Medians over rounds, each size's ratio to the first size, and the load average before and
after are printed. docs/local-development.md says where the figures go.
"""

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.local_host import (
    load_average,
    local_host,
    log_append_body,
    measure_burst,
    rotated,
)
from local_durable_host.history import EventType
from local_durable_host.local_host import STATE_FILE_NAME
from local_durable_host.model import TERMINAL_STATUSES
from local_durable_host.store import DurableStore
from local_durable_host.work import InstanceRecord
from tests.support.local_servers import running_azurite
from tests.support.services import AzuriteService

SEED_COMMIT_EVERY = 1000


@dataclass
class Figures:
    engine_create_ms: list[float] = field(default_factory=list)
    http_create_rate: list[float] = field(default_factory=list)
    drain_rate: list[float] = field(default_factory=list)


def finished_template(azurite: AzuriteService, workdir: Path) -> list[InstanceRecord]:
    """The finished orchestration(s) of one real log.append job, as the host stored them."""
    with local_host(azurite, workdir, {}) as host:
        measure_burst(host, jobs=1, lead=3.0, body=log_append_body)
    store = DurableStore(workdir / "state" / STATE_FILE_NAME)
    try:
        records = [store.read_instance(i) for i in store.instance_ids()]
    finally:
        store.close()
    finished = [r for r in records if r is not None and r.status in TERMINAL_STATUSES]
    if not finished:
        raise SystemExit("the template job left no finished orchestration")
    return finished


def copy_of(template: InstanceRecord, number: int) -> InstanceRecord:
    instance_id = f"{uuid.UUID(int=number).hex}.{template.instance_id.rpartition('.')[2]}"
    execution_id = uuid.uuid4().hex
    history = []
    for event in template.history:
        if event["EventType"] == EventType.EXECUTION_STARTED:
            names = {"InstanceId": instance_id, "ExecutionId": execution_id}
            event = {**event, "OrchestrationInstance": names}
        history.append(event)
    return replace(
        template,
        instance_id=instance_id,
        execution_id=execution_id,
        history=history,
        action_signatures=list(template.action_signatures),
        max_history_lengths=list(template.max_history_lengths),
        retries={},
    )


def seed(path: Path, templates: list[InstanceRecord], finished: int) -> float:
    """Write `finished` finished jobs into a new state file; returns the seconds it took."""
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    store = DurableStore(path)
    try:
        for number in range(finished):
            record = copy_of(templates[number % len(templates)], number)
            store.put_instance(record)
            store.forget(record.instance_id)  # as the engine does once a finished one is saved
            if number % SEED_COMMIT_EVERY == SEED_COMMIT_EVERY - 1:
                store.commit()
        store.commit()
    finally:
        store.close()
    return time.perf_counter() - started


def fresh_copy(seeded: Path, run_dir: Path) -> Path:
    state = run_dir / "state" / STATE_FILE_NAME
    state.parent.mkdir(parents=True)
    shutil.copyfile(seeded, state)
    return state


def engine_create_ms(state: Path, template: InstanceRecord, creates: int) -> float:
    from function_app import app
    from local_durable_host.engine import DurableHost

    host = DurableHost(app, None, activity_workers=1, state_path=state)
    try:
        timings = []
        for _ in range(creates):
            started = time.perf_counter()
            host.start_instance(template.name, None, template.input_json)
            timings.append(time.perf_counter() - started)
    finally:
        host.close()
    return statistics.median(timings) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0,10000,50000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=200, help="jobs created over HTTP per run")
    parser.add_argument("--lead", type=float, default=20.0)
    parser.add_argument("--engine-creates", type=int, default=500)
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",")]
    print(f"load average before: {load_average()}", flush=True)
    figures = {size: Figures() for size in sizes}
    with (
        tempfile.TemporaryDirectory() as workdir_name,
        running_azurite(Path(workdir_name)) as (azurite, _),
    ):
        workdir = Path(workdir_name)
        templates = finished_template(azurite, workdir / "template")
        history = sum(len(t.history) for t in templates)
        print(f"template: {len(templates)} finished orchestration(s), {history} history events")
        seeded = {}
        for size in sizes:
            seeded[size] = workdir / f"seeded-{size}" / STATE_FILE_NAME
            took = seed(seeded[size], templates, size)
            megabytes = seeded[size].stat().st_size / 1e6
            print(f"seeded {size} finished jobs in {took:.1f} s ({megabytes:.1f} MB)", flush=True)
        for round_number in range(options.rounds):
            for size in rotated(sizes, round_number):
                run = workdir / f"round{round_number}-size{size}"
                state = fresh_copy(seeded[size], run / "engine")
                create_ms = engine_create_ms(state, templates[0], options.engine_creates)
                fresh_copy(seeded[size], run / "http")
                with local_host(azurite, run / "http", {}) as host:
                    burst = measure_burst(host, options.jobs, options.lead, log_append_body)
                result = figures[size]
                result.engine_create_ms.append(create_ms)
                result.http_create_rate.append(burst.create_rate)
                result.drain_rate.append(burst.drain_rate)
                print(
                    f"round {round_number + 1}, {size} finished: engine create {create_ms:.2f} ms, "
                    f"HTTP create {burst.create_rate:.0f}/s, drain {burst.drain_rate:.1f}/s",
                    flush=True,
                )
    print(f"load average after: {load_average()}")
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, medians of {options.rounds} round(s)")
    base = figures[sizes[0]]
    print(
        f"{'finished':>9} | {'engine create':>13} | {'ratio':>5} | {'HTTP creates':>12} | "
        f"{'cost ratio':>10} | {'burst drain':>11} | {'ratio':>5}"
    )
    for size in sizes:
        result = figures[size]
        create = statistics.median(result.engine_create_ms)
        rate = statistics.median(result.http_create_rate)
        drain = statistics.median(result.drain_rate)
        print(
            f"{size:>9} | {create:>10.2f} ms | "
            f"{create / statistics.median(base.engine_create_ms):>5.2f} | "
            f"{rate:>10.0f}/s | {statistics.median(base.http_create_rate) / rate:>10.2f} | "
            f"{drain:>9.1f}/s | {drain / statistics.median(base.drain_rate):>5.2f}"
        )


if __name__ == "__main__":
    main()
