"""What the job store's operations cost as the number of pending jobs grows, on Azurite.

`.venv/bin/python -m benchmarks.job_store [--sizes 1000,100000,1000000] [--repeat 100]`

Whole at ~530 lines: one method, each timed operation beside its setup and the tables it
prints; the jobs and their fast loading are `benchmarks.job_store_loading`.

For each size N it starts a fresh in-memory Azurite (its own process, loopback only), loads N
pending `http.call` jobs (a sealed record each, plus its due-index row) straight into fresh
tables, and times the app's own code paths:

- create: `store.create` + `store.index` of a new record (what POST /api/schedule does to
  the store); sealing is timed on its own (CPU only, local keys);
- claim: the activity's claim (`delivery.attempts._claim`: get, `claim`, replace);
- cancel: the removal a wipe does (`blueprints.removing._cancel_one`: get, `cancel`, replace,
  unindex), the same compare-and-swap as a delete;
- first page / deep page: GET /api/schedule?limit=50 through the real route, from the start
  and from a cursor 90 % of the way into the listing;

and, to tell what is ours from what is Azurite's, the page's query alone, its 50 point reads
alone, one point read, and a query that matches no row. Every operation also reports the
requests it sent and the CPU time it cost this process and the Azurite process.
docs/benchmarks.md describes the method and what the figures do and do not say.

A few of the app's own functions are used on purpose (`record_row` and `due_row`, the rows
the store writes; `_claim`; `_cancel_one`): the benchmark loads and times exactly what the app
runs, and breaks when that changes.
"""

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.core.pipeline import PipelineRequest
from azure.data.tables import (
    TableClient,
)

from benchmarks.job_store_loading import (
    HORIZON,
    PAYLOAD,
    TABLE,
    Jobs,
    check_loaded,
    load,
    make_jobs,
    pending_record,
    progress,
)
from benchmarks.measuring import percentile, process_cpu_seconds
from blueprints import dependencies
from blueprints.instances import bounded
from blueprints.jobs import cursor_scope
from blueprints.removing import _cancel_one
from delivery.attempts import _claim
from function_app import app
from local_durable_host.engine import DurableHost
from scheduling.job_record import AttemptOrder, JobRecord, sealing_context
from scheduling.settings import SchedulerSettings
from storage.job_rows import due_keys
from storage.job_store import (
    FAILED_SUFFIX,
    INDEX_SUFFIX,
    LABEL_SUFFIX,
    DueRange,
    StoredJob,
    TableJobStore,
)
from storage.paging import encode_cursor
from storage.sealing import Sealer
from storage.sealing.local_keys import LocalKeyWrapper
from storage.table_storage import CLIENT_OPTIONS
from tests.support.app_client import AppClient
from tests.support.local_servers import (
    REPO_ROOT,
    AzuriteService,
    ServerProcess,
    running_azurite,
)
from tests.support.loopback_guard import loopback_only

PAGE_SIZE = 50
DEEP_FRACTION = 0.9
# A key made for this benchmark only (base64 of 32 fixed bytes): nothing it seals matters.
BENCH_SEALING_KEYS = "bench:" + "QkVOQ0hCRU5DSEJFTkNIQkVOQ0hCRU5DSEJFTkNIQkU="


@dataclass
class OpResult:
    """One operation at one size: wall times, and what each operation cost on average."""

    name: str
    samples_ms: list[float]
    requests_per_op: float
    client_cpu_ms_per_op: float
    azurite_cpu_ms_per_op: float

    @property
    def median_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        return percentile(self.samples_ms, 0.95)


@dataclass
class SizeResult:
    jobs: int
    load_seconds: float
    rows_loaded: int
    azurite_rss_mib_after_load: float
    azurite_peak_rss_mib_load: float
    azurite_peak_rss_mib: float = 0.0
    azurite_heap_limit_mib: int = 0
    deep_position: str = ""
    # The machine's 1-minute load average when the timing started and ended: other work on
    # the machine shows up in the figures, and here.
    load_average: tuple[float, float] = (0.0, 0.0)
    ops: list[OpResult] = field(default_factory=list)


# -- measuring the Azurite process ---------------------------------------------------------


def rss_mib(pid: int) -> tuple[float, float]:
    """(resident set now, its peak) of `pid`, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class RequestCounter:
    """A `raw_request_hook`: counts the requests the SDK sends (from any thread)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, request: PipelineRequest[Any]) -> None:
        with self._lock:
            self.count += 1


def open_counted_store(service: AzuriteService, counter: RequestCounter) -> TableJobStore:
    """The store as `TableJobStore.open` makes it (same client options), its requests counted,
    on freshly made tables."""
    clients = [
        TableClient.from_connection_string(
            service.connection_string,
            table_name=name,
            raw_request_hook=counter,
            **CLIENT_OPTIONS,
        )
        for name in (TABLE, TABLE + INDEX_SUFFIX, TABLE + FAILED_SUFFIX, TABLE + LABEL_SUFFIX)
    ]
    for client in clients:
        client.create_table()
    return TableJobStore(clients[0], clients[1], clients[2], clients[3])


# -- timing --------------------------------------------------------------------------------


def measure(
    name: str,
    operation: Callable[[int], object],
    warmup: int,
    repeat: int,
    counter: RequestCounter,
    azurite_pid: int,
) -> OpResult:
    """Median and p95 of `repeat` calls after `warmup` calls; requests and CPU per call."""
    for number in range(warmup):
        operation(number)
    samples = []
    requests_before = counter.count
    client_cpu_before = time.process_time()
    azurite_cpu_before = process_cpu_seconds(azurite_pid)
    for number in range(warmup, warmup + repeat):
        started = time.perf_counter()
        operation(number)
        samples.append((time.perf_counter() - started) * 1000)
    azurite_cpu = process_cpu_seconds(azurite_pid) - azurite_cpu_before
    client_cpu = time.process_time() - client_cpu_before
    return OpResult(
        name=name,
        samples_ms=samples,
        requests_per_op=(counter.count - requests_before) / repeat,
        client_cpu_ms_per_op=client_cpu * 1000 / repeat,
        azurite_cpu_ms_per_op=azurite_cpu * 1000 / repeat,
    )


def deep_token(store: TableJobStore, jobs: Jobs) -> tuple[dict[str, str], str, str]:
    """The service's own continuation token at DEEP_FRACTION of the listing, the id it starts
    at, and where that is. The token comes from the service: a one-row query `from` the due
    time of the job just before that place answers the job's row and the next row's keys."""
    order = sorted(range(len(jobs.ids)), key=lambda i: due_keys(jobs.exec_ats[i], jobs.ids[i]))
    position = int(len(order) * DEEP_FRACTION)
    before = order[position - 1]
    entries, token = store.due_page(DueRange(due_from=jobs.exec_ats[before]), 1, None)
    if not entries or entries[0].transaction_id != jobs.ids[before] or token is None:
        raise RuntimeError("the deep-page token query did not answer the expected row")
    return token, jobs.ids[order[position]], f"row {position + 1:,} of {len(order):,}"


def run_size(
    size: int, args: argparse.Namespace, workdir: Path, environment: dict[str, str]
) -> SizeResult:
    rng = random.Random(args.seed * 1_000_003 + size)
    sealer = Sealer(LocalKeyWrapper.from_setting(BENCH_SEALING_KEYS))
    now = datetime.now(UTC).replace(microsecond=0)
    progress(f"{size:,} jobs: generating ids and due times")
    jobs = make_jobs(size, rng, now)
    with running_azurite(workdir, env=environment) as (service, server):
        counter = RequestCounter()
        store = open_counted_store(service, counter)
        try:
            progress(f"{size:,} jobs: loading into Azurite (pid {server.pid})")
            seconds, rows = load(service, server.port, jobs, sealer, args.threads)
            check_loaded(store, jobs, rng)
            rss, peak = rss_mib(server.pid)
            result = SizeResult(
                jobs=size,
                load_seconds=seconds,
                rows_loaded=rows,
                azurite_rss_mib_after_load=rss,
                azurite_peak_rss_mib_load=peak,
                azurite_heap_limit_mib=args.azurite_heap_mb,
            )
            progress(f"{size:,} jobs: loaded {rows:,} rows in {seconds:.0f} s, RSS {rss:,.0f} MiB")
            load_before = os.getloadavg()[0]
            time_operations(result, store, counter, server, jobs, sealer, args, rng)
            result.load_average = (load_before, os.getloadavg()[0])
            result.azurite_peak_rss_mib = rss_mib(server.pid)[1]
        finally:
            store.close()
    return result


def time_operations(
    result: SizeResult,
    store: TableJobStore,
    counter: RequestCounter,
    server: ServerProcess,
    jobs: Jobs,
    sealer: Sealer,
    args: argparse.Namespace,
    rng: random.Random,
) -> None:
    warmup, repeat, page_repeat = args.warmup, args.repeat, args.page_repeat
    size = len(jobs.ids)

    def timed(name: str, operation: Callable[[int], object], times: int) -> None:
        progress(f"{size:,} jobs: {name}")
        result.ops.append(measure(name, operation, warmup, times, counter, server.pid))

    # Writes first use fresh jobs; the creates are removed again, so pages see N rows.
    fresh = make_jobs(warmup + repeat, rng, jobs.now)
    timed(
        "seal (CPU only)",
        lambda n: sealer.seal(PAYLOAD, sealing_context(fresh.ids[n], fresh.now)),
        repeat,
    )
    records = [
        pending_record(sealer, fresh.ids[n], fresh.generations[n], fresh.exec_ats[n], jobs.now)
        for n in range(warmup + repeat)
    ]
    created: list[StoredJob] = []

    def create(n: int) -> None:
        created.append(store.create(records[n]))
        store.index(records[n])

    timed("create", create, repeat)
    for stored in created:
        store.delete(stored)
        store.unindex(stored.record.transaction_id, stored.record.exec_at)

    settings = SchedulerSettings(job_table=TABLE)
    token, deep_first, result.deep_position = deep_token(store, jobs)
    cursor = encode_cursor(token, cursor_scope(DueRange(), None))
    with asyncio.Runner() as runner:
        # The route needs a durable client binding (list_jobs never calls it). The stand-in
        # serving it polls every 20 ms, about 4 ms of CPU a second: only the pages run here.
        with (
            DurableHost(app, jobs.now) as host,
            dependencies.overridden(settings=lambda: settings, job_store=lambda _settings: store),
        ):
            api = AppClient(host.client_binding())

            def page(url: str, first_id: str | None = None) -> Callable[[int], None]:
                def call(_: int) -> None:
                    reply = runner.run(api.get(url))
                    listed = reply.json()["jobs"] if reply.status == 200 else []
                    if len(listed) != PAGE_SIZE or (
                        first_id and listed[0]["transaction_id"] != first_id
                    ):
                        raise RuntimeError(f"{url}: {reply.status} {reply.body[:300]!r}")

                return call

            timed("first page", page(f"/api/schedule?limit={PAGE_SIZE}"), page_repeat)
            timed(
                "deep page",
                page(f"/api/schedule?limit={PAGE_SIZE}&cursor={cursor}", deep_first),
                page_repeat,
            )

        first_ids = [
            entry.transaction_id for entry in store.due_page(DueRange(), PAGE_SIZE, None)[0]
        ]

        async def point_reads() -> None:
            await bounded(asyncio.to_thread(store.get, i) for i in first_ids)

        timed(
            "- its query alone (first page)",
            lambda _: store.due_page(DueRange(), PAGE_SIZE, None),
            page_repeat,
        )
        timed(
            "- its query alone (deep page)",
            lambda _: store.due_page(DueRange(), PAGE_SIZE, token),
            page_repeat,
        )
        timed("- its 50 point reads alone", lambda _: runner.run(point_reads()), page_repeat)

    beyond = DueRange(due_from=jobs.now + HORIZON + timedelta(days=30))

    def empty_query(_: int) -> None:
        if store.due_page(beyond, PAGE_SIZE, None)[0]:
            raise RuntimeError("the query past the horizon matched a row")

    timed("query matching no row", empty_query, page_repeat)
    reads = rng.sample(range(size), warmup + repeat)
    timed("point read", lambda n: store.get(jobs.ids[reads[n]]), repeat)

    # Claims and cancels each take a different pending job.
    chosen = rng.sample(range(size), 2 * (warmup + repeat))
    claims, cancels = chosen[: warmup + repeat], chosen[warmup + repeat :]

    def claim_one(n: int) -> None:
        position = claims[n]
        order = AttemptOrder(
            transaction_id=jobs.ids[position],
            generation=jobs.generations[position],
            due_at=jobs.exec_ats[position],
            attempt=1,
        )
        claimed = _claim(order, store, dependencies.system_clock)
        if not isinstance(claimed, StoredJob) or claimed.record.state != "firing":
            raise RuntimeError(f"claim of job {position}: {claimed}")

    def cancel_one(n: int) -> None:
        position = cancels[n]
        removal = _cancel_one(store, jobs.ids[position], "wipe", DueRange())
        if not isinstance(removal, JobRecord) or removal.state != "cancelled":
            raise RuntimeError(f"cancel of job {position}: {removal}")

    timed("claim", claim_one, repeat)
    timed("cancel", cancel_one, repeat)


# -- output --------------------------------------------------------------------------------


def figures_table(results: Sequence[SizeResult]) -> str:
    lines = [
        "| jobs | operation | requests/op | median (ms) | p95 (ms) "
        "| client CPU (ms/op) | Azurite CPU (ms/op) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for op in result.ops:
            lines.append(
                f"| {result.jobs:,} | {op.name} | {op.requests_per_op:g} | {op.median_ms:.2f} "
                f"| {op.p95_ms:.2f} | {op.client_cpu_ms_per_op:.2f} "
                f"| {op.azurite_cpu_ms_per_op:.2f} |"
            )
    return "\n".join(lines)


def load_table(results: Sequence[SizeResult]) -> str:
    lines = [
        "| jobs | rows loaded | load (s) | rows/s | Azurite RSS after load (MiB) "
        "| peak while loading (MiB) | peak overall (MiB) | deep page starts at "
        "| load average while timed |",
        "|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for result in results:
        lines.append(
            f"| {result.jobs:,} | {result.rows_loaded:,} | {result.load_seconds:.0f} "
            f"| {result.rows_loaded / result.load_seconds:,.0f} "
            f"| {result.azurite_rss_mib_after_load:,.0f} "
            f"| {result.azurite_peak_rss_mib_load:,.0f} | {result.azurite_peak_rss_mib:,.0f} "
            f"| {result.deep_position} "
            f"| {result.load_average[0]:.1f} to {result.load_average[1]:.1f} |"
        )
    return "\n".join(lines)


def ratio_table(results: Sequence[SizeResult], target: float) -> str:
    """Each operation's median at the largest size over its median at the smallest."""
    if len(results) < 2:
        return ""
    small, large = results[0], results[-1]
    lines = [
        f"| operation | median at {small.jobs:,} (ms) | median at {large.jobs:,} (ms) "
        f"| ratio | at most {target:g}x? |",
        "|---|---:|---:|---:|---|",
    ]
    for op_small, op_large in zip(small.ops, large.ops, strict=True):
        ratio = op_large.median_ms / op_small.median_ms
        lines.append(
            f"| {op_small.name} | {op_small.median_ms:.2f} | {op_large.median_ms:.2f} "
            f"| {ratio:.2f} | {'yes' if ratio <= target else 'no'} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    node = shutil.which("node")
    node_version = ""
    if node:
        # The node that runs Azurite (node_modules/.bin/azurite-table starts `env node`).
        command = [node, "--version"]
        answer = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        node_version = answer.stdout
    azurite = json.loads((REPO_ROOT / "node_modules/azurite/package.json").read_text())
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "node": node_version.strip(),
        "azurite": azurite["version"],
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000,100000,1000000", help="pending jobs per run")
    parser.add_argument("--repeat", type=int, default=100, help="timed calls per point op")
    parser.add_argument(
        "--page-repeat", type=int, default=20, help="timed calls per list page and query probe"
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls before each op")
    parser.add_argument("--threads", type=int, default=4, help="loader threads")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--azurite-heap-mb", type=int, default=16384, help="Node's --max-old-space-size"
    )
    parser.add_argument("--target", type=float, default=1.5, help="allowed growth factor")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    args.size_list = [int(size.replace("_", "")) for size in args.sizes.split(",")]
    smallest = 2 * (args.warmup + args.repeat)
    if min(args.size_list) < max(smallest, PAGE_SIZE / (1 - DEEP_FRACTION)):
        parser.error(
            f"every size must allow {smallest} distinct claims and cancels and a deep page"
        )
    if min(args.repeat, args.page_repeat) < 1 or args.warmup < 0:
        parser.error("--repeat and --page-repeat must be at least 1, --warmup at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    environment = {**os.environ, "NODE_OPTIONS": f"--max-old-space-size={args.azurite_heap_mb}"}
    results: list[SizeResult] = []
    started = time.perf_counter()
    with loopback_only() as violations, tempfile.TemporaryDirectory() as workdir:
        for size in args.size_list:
            results.append(run_size(size, args, Path(workdir), environment))
    if violations:
        raise SystemExit("the benchmark reached beyond loopback: " + "; ".join(violations))
    info = machine()
    print(
        f"\nPython {info['python']}, Node {info['node']}, Azurite {info['azurite']}, "
        f"{info['cpus']} CPUs, {info['memory_gib']} GiB; "
        f"{args.repeat} timed point ops, {args.page_repeat} timed pages/probes, "
        f"{args.warmup} warm-up each; whole run {time.perf_counter() - started:.0f} s\n"
    )
    print(load_table(results) + "\n")
    print(figures_table(results) + "\n")
    print(ratio_table(results, args.target))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "arguments": {k: v for k, v in vars(args).items() if k != "json"},
                    "results": [
                        {
                            **{k: v for k, v in asdict(result).items() if k != "ops"},
                            "ops": [
                                {
                                    **asdict(op),
                                    "median_ms": op.median_ms,
                                    "p95_ms": op.p95_ms,
                                }
                                for op in result.ops
                            ],
                        }
                        for result in results
                    ],
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
