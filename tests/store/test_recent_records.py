"""The charts' read: records written since a moment, at most a limit, and whether more were."""

from datetime import timedelta

from storage.job_store import TableJobStore
from tests.store.test_job_store import START, new_record
from tests.store.test_job_store import store as store


def test_only_records_written_since_the_moment_and_at_most_the_limit(
    store: TableJobStore,
) -> None:
    old = new_record().model_copy(update={"updated_at": START - timedelta(days=2)})
    recent = [
        new_record().model_copy(update={"updated_at": START - timedelta(minutes=minutes)})
        for minutes in (1, 5, 30)
    ]
    for record in (old, *recent):
        store.create(record)
    since = START - timedelta(days=1)

    found, more = store.updated_since(since, 10)
    assert sorted(r.transaction_id for r in found) == sorted(r.transaction_id for r in recent)
    assert not more

    found, more = store.updated_since(since, 2)
    assert len(found) == 2
    assert more
    assert {r.transaction_id for r in found} <= {r.transaction_id for r in recent}


def test_no_table_yet_reads_as_nothing(store: TableJobStore) -> None:
    assert store.updated_since(START, 10) == ([], False)
