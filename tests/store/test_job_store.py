"""The job store on real Azurite: insert-if-absent, compare-and-swap, the due-time index."""

import itertools
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from scheduling.job_record import JobRecord
from storage.job_log import JobLogEntry, LogKind
from storage.job_log.table_store import TableJobLog, log_row
from storage.job_store import (
    ContinuationToken,
    DueEntry,
    DueRange,
    JobExists,
    StaleRecord,
    TableJobStore,
)
from storage.sealing import SealedPayload
from storage.table_storage import TableEndpoint
from tests.support.services import AzuriteService

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
_tables = itertools.count()


@pytest.fixture
def store(azurite: AzuriteService) -> Iterator[TableJobStore]:
    opened = TableJobStore.open(
        TableEndpoint(connection_string=azurite.connection_string), f"storetest{next(_tables)}"
    )
    yield opened
    opened.close()


def pages_of(store: TableJobStore, scope: DueRange, page_size: int) -> Iterator[list[DueEntry]]:
    """Every index page of `scope` in due order, following the continuation tokens."""
    token: ContinuationToken | None = None
    for _ in range(1000):  # bounded: a token loop would otherwise never end
        entries, token = store.due_page(scope, page_size, token)
        yield entries
        if token is None:
            return


def new_record(
    exec_at: datetime = START, prompt_type: str = "http.call", ciphertext: str = "Y3Q="
) -> JobRecord:
    return JobRecord(
        transaction_id=str(uuid.uuid4()),
        generation=uuid.uuid4().hex,
        state="pending",
        prompt_type=prompt_type,
        exec_at=exec_at,
        accepted_at=START - timedelta(hours=1),
        updated_at=START - timedelta(hours=1),
        destination="POST https://hooks.example.com",
        request_fingerprint="ab" * 32,
        sealed_payload=SealedPayload(
            alg="A256GCM",
            key_id="local:k",
            wrapped_key="d2s=",
            nonce="bm9uY2U=",
            ciphertext=ciphertext,
        ),
    )


def test_a_record_reads_back_as_written_even_past_one_property_of_text(
    store: TableJobStore,
) -> None:
    written = new_record(ciphertext="A" * 200_000).model_copy(
        update={"last_outcome": {"ok": False, "status_code": 503, "body_excerpt": "é" * 20_000}}
    )
    store.create(written)
    found = store.get(written.transaction_id)
    assert found is not None
    assert found.record == written


def test_an_id_is_created_once(store: TableJobStore) -> None:
    record = new_record()
    store.create(record)
    with pytest.raises(JobExists):
        store.create(record.model_copy(update={"generation": "other"}))
    found = store.get(record.transaction_id)
    assert found is not None
    assert found.record.generation == record.generation


def test_unknown_ids_and_a_store_never_written_read_as_absent(store: TableJobStore) -> None:
    assert store.get(str(uuid.uuid4())) is None
    assert store.due_page(DueRange(), 10, None) == ([], None)


def test_a_write_over_a_version_that_changed_loses(store: TableJobStore) -> None:
    first = store.create(new_record())
    second = store.replace(first, first.record.model_copy(update={"state": "firing"}))
    assert second.etag != first.etag

    with pytest.raises(StaleRecord):
        store.replace(first, first.record.model_copy(update={"state": "cancelled"}))
    with pytest.raises(StaleRecord):
        store.delete(first)
    found = store.get(first.record.transaction_id)
    assert found is not None
    assert found.record.state == "firing"

    store.delete(second)
    assert store.get(first.record.transaction_id) is None
    with pytest.raises(StaleRecord):
        store.replace(second, second.record)


def test_rows_written_along_a_record_land_with_it_or_not_at_all(
    store: TableJobStore, azurite: AzuriteService
) -> None:
    first = store.create(new_record())
    transaction_id = first.record.transaction_id
    log = TableJobLog.open(
        TableEndpoint(connection_string=azurite.connection_string), store.table_name
    )

    def entry(kind: LogKind) -> JobLogEntry:
        return JobLogEntry(
            transaction_id=transaction_id,
            entry_id=f"20261201T080000.000000Z-{kind}",
            timestamp=START,
            kind=kind,
        )

    firing = store.replace(first, first.record.model_copy(update={"state": "firing"}))
    with pytest.raises(StaleRecord):
        store.replace(
            first, first.record.model_copy(update={"state": "cancelled"}), [log_row(entry("log"))]
        )
    assert log.read(transaction_id, 10).entries == []

    done = store.replace(
        firing,
        firing.record.model_copy(update={"state": "succeeded"}),
        [log_row(entry("fired")), log_row(entry("outcome"))],
    )
    assert done.etag != firing.etag
    found = store.get(transaction_id)
    assert found is not None
    assert (found.record.state, found.etag) == ("succeeded", done.etag)
    assert [e.kind for e in log.read(transaction_id, 10).entries] == ["fired", "outcome"]
    other = entry("log").model_copy(update={"transaction_id": str(uuid.uuid4())})
    with pytest.raises(ValueError, match="partition"):
        store.replace(done, done.record, [log_row(other)])
    log.close()


def test_two_writers_of_one_version_exactly_one_wins(store: TableJobStore) -> None:
    stored = store.create(new_record())
    barrier = threading.Barrier(2)
    results: dict[str, str] = {}

    def write(state: str) -> None:
        barrier.wait()
        try:
            store.replace(stored, stored.record.model_copy(update={"state": state}))
            results[state] = "won"
        except StaleRecord:
            results[state] = "lost"

    threads = [threading.Thread(target=write, args=(s,)) for s in ("firing", "cancelled")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results.values()) == ["lost", "won"]
    winner = next(state for state, result in results.items() if result == "won")
    found = store.get(stored.record.transaction_id)
    assert found is not None
    assert found.record.state == winner


def test_the_index_lists_jobs_in_due_order_across_minutes_and_pages(store: TableJobStore) -> None:
    # Several jobs share an instant, others are minutes or days apart: one order for all.
    offsets = [0, 0, 0, 30, 59, 60, 61, 3600, 86_400, 86_400 * 40, 5, 7, 7, 120, 121]
    records = [new_record(START + timedelta(seconds=s)) for s in offsets]
    for record in records:
        store.index(record)

    pages = list(pages_of(store, DueRange(), 4))
    listed = [entry.transaction_id for page in pages for entry in page]

    expected = sorted(records, key=lambda r: (r.exec_at, r.transaction_id))
    assert listed == [r.transaction_id for r in expected]
    assert all(len(page) <= 4 for page in pages)


def test_the_index_filters_by_due_range_and_prompt_type(store: TableJobStore) -> None:
    records = [
        new_record(START + timedelta(minutes=m), "log.append" if m % 2 else "http.call")
        for m in range(10)
    ]
    for record in records:
        store.index(record)

    window = DueRange(due_from=START + timedelta(minutes=2), due_to=START + timedelta(minutes=5))
    in_window = [e.transaction_id for page in pages_of(store, window, 2) for e in page]
    assert in_window == [r.transaction_id for r in records[2:6]]  # both ends inclusive

    logs = DueRange(prompt_type="log.append")
    log_jobs = [e.transaction_id for page in pages_of(store, logs, 3) for e in page]
    assert log_jobs == [r.transaction_id for r in records if r.prompt_type == "log.append"]


def test_an_unindexed_job_is_no_longer_listed(store: TableJobStore) -> None:
    kept, dropped = new_record(START), new_record(START + timedelta(minutes=1))
    store.index(kept)
    store.index(dropped)
    store.unindex(dropped.transaction_id, dropped.exec_at)
    store.unindex(dropped.transaction_id, dropped.exec_at)  # idempotent

    entries, token = store.due_page(DueRange(), 10, None)
    assert [e.transaction_id for e in entries] == [kept.transaction_id]
    assert token is None
    assert entries[0].generation == kept.generation
    assert entries[0].exec_at == kept.exec_at
