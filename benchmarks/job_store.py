"""The job store at 1,000, 100,000 and 1,000,000 pending jobs, on a local Azurite.

For each size N it loads N pending job records and their due-index rows straight into fresh
tables (the store's own row format, through the store's own `create` and a batched index
write), then times what the app does, with the app's own code:

- create: seal a payload, `create` the record, `index` it (what POST /api/schedule does to
  the store);
- claim: `get`, `claim`, `replace` (an attempt starting);
- cancel: `get`, `cancel`, `replace`, `unindex` (a delete);
- first page and deep page: one `due_page` of 50 plus the 50 record reads, 16 at a time
  (what GET /api/schedule does), from the start and from a cursor 90 % of the way in;
- bare query: one due-index query whose filter matches nothing, to show what Azurite's
  query costs by itself.

Run from the repository root (Azurite from `npm ci`; 1,000,000 takes about half an hour to
load, most of it Azurite's single-threaded inserts):

    .venv/bin/python -m benchmarks.job_store [--sizes 1000,100000,1000000] [--samples 200]
"""

import argparse
import base64
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scheduling.job_record import JobRecord, cancel, claim, sealing_context
from scheduling.job_store import DueRange, TableJobStore
from scheduling.sealing import Sealer
from scheduling.sealing.local_keys import LocalKeyWrapper
from scheduling.table_storage import TableEndpoint
from tests.support.services import ServerProcess, start_azurite

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
# Jobs due over the next 30 days: about 23 per due minute at a million.
SPREAD = timedelta(days=30)
PAGE = 50
LOADERS = 8
SEALER = Sealer(LocalKeyWrapper.from_setting("bench:" + base64.b64encode(bytes(32)).decode()))
PAYLOAD = json.dumps({"url": "https://hooks.example.com/x", "json": {"n": 1}}).encode()


def new_record(exec_at: datetime) -> JobRecord:
    transaction_id = str(uuid.uuid4())
    return JobRecord(
        transaction_id=transaction_id,
        generation=uuid.uuid4().hex,
        state="pending",
        prompt_type="http.call",
        exec_at=exec_at,
        accepted_at=START,
        updated_at=START,
        destination="POST https://hooks.example.com",
        sealed_payload=SEALER.seal(PAYLOAD, sealing_context(transaction_id)),
    )


def load(store: TableJobStore, size: int, rng: random.Random) -> list[JobRecord]:
    """N pending jobs: records one by one (a partition each), index rows batched per minute."""
    spread = SPREAD.total_seconds()
    records = [new_record(START + timedelta(seconds=rng.uniform(60, spread))) for _ in range(size)]
    store.create(records[0])  # makes the table
    with ThreadPoolExecutor(LOADERS) as pool:
        list(pool.map(store.create, records[1:]))
    store.index_all(records, workers=LOADERS)
    return records


def timed(operation: Callable[[], object], samples: int) -> dict[str, float]:
    for _ in range(min(10, samples)):
        operation()
    runs = []
    for _ in range(samples):
        started = time.perf_counter()
        operation()
        runs.append((time.perf_counter() - started) * 1000)
    runs.sort()
    return {"median_ms": statistics.median(runs), "p95_ms": runs[int(len(runs) * 0.95) - 1]}


def measure(store: TableJobStore, records: list[JobRecord], samples: int) -> dict[str, Any]:
    rng = random.Random(7)
    victims = iter(rng.sample(records, min(len(records), 2 * (samples + 10))))
    readers = ThreadPoolExecutor(16)

    def create() -> None:
        record = new_record(START + timedelta(days=rng.uniform(1, 30)))
        store.create(record)
        store.index(record)

    def claim_one() -> None:
        stored = store.get(next(victims).transaction_id)
        assert stored is not None
        verdict, claimed = claim(
            stored.record, stored.record.generation, stored.record.exec_at, 1, START
        )
        assert verdict == "claimed"
        assert claimed is not None
        store.replace(stored, claimed)

    def cancel_one() -> None:
        stored = store.get(next(victims).transaction_id)
        assert stored is not None
        verdict, cancelled = cancel(stored.record, START)
        assert cancelled is not None, verdict
        store.replace(stored, cancelled)
        store.unindex(stored.record.transaction_id, stored.record.exec_at)

    def page(token: dict[str, str] | None) -> Callable[[], None]:
        def read() -> None:
            entries, _ = store.due_page(DueRange(), PAGE, token)
            found = list(readers.map(lambda e: store.get(e.transaction_id), entries))
            assert len(found) == PAGE, (len(found), token)

        return read

    # A real continuation token 90 % of the way in (the service's tokens are opaque): the
    # one a one-row page starting there hands back.
    ordered = sorted(records, key=lambda r: (r.exec_at, r.transaction_id))
    deep = ordered[int(len(ordered) * 0.9)]
    _, deep_token = store.due_page(DueRange(due_from=deep.exec_at), 1, None)
    assert deep_token is not None
    nothing = DueRange(prompt_type="no.such.type")
    results = {
        "first page": timed(page(None), samples // 4),
        "deep page": timed(page(deep_token), samples // 4),
        "bare query": timed(lambda: store.due_page(nothing, PAGE, None), samples // 4),
        "claim": timed(claim_one, samples),
        "cancel": timed(cancel_one, samples),
        "create": timed(create, samples),
    }
    readers.shutdown()
    return results


def rss_mib(server: ServerProcess) -> float:
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as workdir:
        server, azurite = start_azurite(Path(workdir))
        try:
            endpoint = TableEndpoint(connection_string=azurite.connection_string)
            for size in (int(text) for text in options.sizes.split(",")):
                store = TableJobStore.open(endpoint, f"bench{size}")
                started = time.perf_counter()
                records = load(store, size, random.Random(size))
                loaded = time.perf_counter() - started
                results = measure(store, records, options.samples)
                figures[str(size)] = {
                    "load_s": loaded,
                    "azurite_rss_mib": rss_mib(server),
                    **results,
                }
                print(
                    f"\n{size:,} pending jobs (loaded in {loaded:.0f} s; Azurite RSS "
                    f"{figures[str(size)]['azurite_rss_mib']:.0f} MiB)",
                    flush=True,
                )
                for name, numbers in results.items():
                    print(
                        f"  {name:11} median {numbers['median_ms']:8.2f} ms   "
                        f"p95 {numbers['p95_ms']:8.2f} ms",
                        flush=True,
                    )
                store.close()
        finally:
            server.stop()
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
