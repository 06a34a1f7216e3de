"""The pending jobs the job-store benchmark starts from, and loading them into Azurite fast.

Used by `benchmarks.job_store`: ids and due times drawn from a seed, records sealed like a
real create, and rows sent 100 a request straight to Azurite's $batch (see BatchLoader).
"""

import http.client
import json
import random
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.credentials import AzureNamedKeyCredential
from azure.data.tables import (
    AccountSasPermissions,
    ResourceTypes,
    generate_account_sas,
)

from scheduling.job_record import JobRecord, sealing_context
from storage.job_rows import due_row, record_row
from storage.job_store import (
    INDEX_SUFFIX,
    TableJobStore,
)
from storage.sealing import Sealer
from storage.table_storage import AZURITE_ACCOUNT, AZURITE_KEY
from tests.support.local_servers import (
    AzuriteService,
)

TABLE = "benchjobs"

# exec_at of the loaded and created jobs: uniform over the next 366 days (MAX_HORIZON_DAYS),
# at least a minute ahead (MIN_LEAD_SECONDS), to the microsecond.
MIN_LEAD = timedelta(seconds=60)
HORIZON = timedelta(days=366)
# An entity group transaction holds at most 100 operations.
BATCH_ROWS = 100
# The README's example job; sealed per record like a real create.
PAYLOAD = json.dumps(
    {
        "method": "POST",
        "url": "https://hooks.example.com/reminder",
        "headers": {"Authorization": "Bearer s3cret"},
        "json": {"text": "stand-up in 5 minutes"},
        "timeout_seconds": 10,
    },
    separators=(",", ":"),
).encode()
DESTINATION = "POST https://hooks.example.com"


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- the jobs ----------------------------------------------------------------------------


@dataclass
class Jobs:
    """The loaded jobs by position: ids, generations and due times (not the records)."""

    now: datetime
    ids: list[str]
    generations: list[str]
    exec_ats: list[datetime]


def make_jobs(count: int, rng: random.Random, now: datetime) -> Jobs:
    span = int((HORIZON - MIN_LEAD) / timedelta(microseconds=1))
    ids, generations, exec_ats = [], [], []
    for _ in range(count):
        ids.append(str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        generations.append(uuid.UUID(int=rng.getrandbits(128), version=4).hex)
        exec_ats.append(now + MIN_LEAD + timedelta(microseconds=rng.randrange(span)))
    return Jobs(now, ids, generations, exec_ats)


def pending_record(
    sealer: Sealer, transaction_id: str, generation: str, exec_at: datetime, now: datetime
) -> JobRecord:
    """A job as POST /api/schedule stores it: pending, its payload sealed to its identity."""
    return JobRecord(
        transaction_id=transaction_id,
        generation=generation,
        state="pending",
        prompt_type="http.call",
        exec_at=exec_at,
        accepted_at=now,
        updated_at=now,
        destination=DESTINATION,
        sealed_payload=sealer.seal(PAYLOAD, sealing_context(transaction_id, now)),
    )


# -- loading -------------------------------------------------------------------------------


class BatchLoader:
    """Writes rows straight into Azurite, 100 a request, through the Table service's $batch.

    Each row is its own partition in the records table, and the due-minute partitions of
    the index hold one or two rows each at these sizes: batches of one partition would carry
    one row, and 2,000,000 single inserts take Azurite most of an hour. Azurite does not
    check that a batch stays in one partition (Azure does: 400, the SDK refuses it before
    sending), so the loader sends 100 rows of any partitions per batch. That is a loading
    shortcut of the emulator only: the rows stored are the ones single inserts would store,
    and every timed operation goes through the app's own code and the SDK.
    """

    def __init__(self, service: AzuriteService, port: int) -> None:
        self._endpoint = service.table_endpoint
        self._port = port
        sas = generate_account_sas(
            AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY),
            resource_types=ResourceTypes(object=True),
            permission=AccountSasPermissions(add=True),
            expiry=datetime.now(UTC) + timedelta(days=1),
        )
        self._path = f"/{AZURITE_ACCOUNT}/$batch?{sas}"
        self._local = threading.local()
        self._connections: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self._port, timeout=120)
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def insert(self, table: str, rows: Sequence[dict[str, Any]]) -> int:
        """Insert `rows` (at most 100) in one batch; the number inserted, or RuntimeError."""
        batch, changeset = f"batch_{uuid.uuid4().hex}", f"changeset_{uuid.uuid4().hex}"
        parts = [f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"]
        for row in rows:
            parts.append(
                f"--{changeset}\r\nContent-Type: application/http\r\n"
                "Content-Transfer-Encoding: binary\r\n\r\n"
                f"POST {self._endpoint}/{table} HTTP/1.1\r\n"
                "Content-Type: application/json\r\nAccept: application/json;odata=nometadata\r\n"
                "Prefer: return-no-content\r\nDataServiceVersion: 3.0\r\n\r\n"
                f"{json.dumps(row, separators=(',', ':'))}\r\n"
            )
        parts.append(f"--{changeset}--\r\n--{batch}--\r\n")
        connection = self._connection()
        connection.request(
            "POST",
            self._path,
            body="".join(parts).encode(),
            headers={
                "Content-Type": f"multipart/mixed; boundary={batch}",
                "Accept": "application/json;odata=nometadata",
                "DataServiceVersion": "3.0",
                "MaxDataServiceVersion": "3.0;NetFx",
                "x-ms-version": "2019-02-02",
            },
        )
        response = connection.getresponse()
        answer = response.read()
        inserted = answer.count(b"HTTP/1.1 204")
        if response.status != 202 or inserted != len(rows):
            raise RuntimeError(
                f"a load batch into {table} failed ({response.status}, {inserted} of "
                f"{len(rows)} rows): {answer[:600]!r}"
            )
        return inserted

    def close(self) -> None:
        for connection in self._connections:
            connection.close()


def load(
    service: AzuriteService, port: int, jobs: Jobs, sealer: Sealer, threads: int
) -> tuple[float, int]:
    """Load every job's record and index row; (seconds taken, rows inserted)."""
    count = len(jobs.ids)
    loader = BatchLoader(service, port)
    done = 0
    next_report = 0.0
    progress_lock = threading.Lock()
    started = time.perf_counter()

    def chunk(start: int) -> int:
        nonlocal done, next_report
        records = [
            pending_record(sealer, jobs.ids[i], jobs.generations[i], jobs.exec_ats[i], jobs.now)
            for i in range(start, min(start + BATCH_ROWS, count))
        ]
        inserted = loader.insert(TABLE, [record_row(record) for record in records])
        inserted += loader.insert(TABLE + INDEX_SUFFIX, [due_row(record) for record in records])
        with progress_lock:
            done += len(records)
            if done / count >= next_report:
                elapsed = time.perf_counter() - started
                progress(f"  loaded {done:,} of {count:,} jobs in {elapsed:.0f} s")
                next_report = (int(done * 10 / count) + 1) / 10
        return inserted

    try:
        with ThreadPoolExecutor(threads) as pool:
            rows = sum(pool.map(chunk, range(0, count, BATCH_ROWS)))
    finally:
        loader.close()
    return time.perf_counter() - started, rows


def check_loaded(store: TableJobStore, jobs: Jobs, rng: random.Random) -> None:
    """A few records read back through the store as the app wrote them."""
    for position in rng.sample(range(len(jobs.ids)), min(5, len(jobs.ids))):
        found = store.get(jobs.ids[position])
        if (
            found is None
            or found.record.state != "pending"
            or found.record.generation != jobs.generations[position]
            or found.record.exec_at != jobs.exec_ats[position]
        ):
            raise RuntimeError(f"loaded job {position} does not read back: {found}")
