"""What a reader does with an index row it finds (list it, skip it, drop it), and dropping
index rows without failing the caller: every reader tidies what writers left behind."""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from scheduling.job_record import LIVE_STATES, JobRecord
from storage.job_store import DueEntry, FailedEntry, LabelEntry, TableJobStore

log = logging.getLogger(__name__)

# A row whose record does not exist yet may belong to a create still on its way (writers
# index first); past this age it belongs to one that never finished.
ORPHAN_ROW_AGE = timedelta(minutes=10)
RowVerdict = Literal["list", "skip", "drop"]


def row_verdict(entry: DueEntry, record: JobRecord | None, now: datetime) -> RowVerdict:
    """What a reader does with an index row, given the job's record.

    Writers index before they write the record, so the index holds every live job (and may
    hold rows that point nowhere yet, or any more). A row is listed only when it matches its
    record; it is dropped only when its job has ended, or never came to be: never merely
    because the record names another time or generation, which a write in progress may.
    """
    if record is None:
        old = entry.written_at is not None and now - entry.written_at > ORPHAN_ROW_AGE
        return "drop" if old else "skip"
    if record.state not in LIVE_STATES:
        return "drop"
    if record.generation == entry.generation and record.exec_at == entry.exec_at:
        return "list"
    return "skip"


def unindex_quietly(store: TableJobStore, record: JobRecord, etag: str | None = None) -> None:
    """Drop a job's row (with `etag`, only that version), logging rather than raising: a
    leftover row is skipped by every reader, and dropped once its job has ended."""
    try:
        store.unindex(record.transaction_id, record.exec_at, etag)
    except Exception:
        log.warning("could not drop an index row of %s", record.transaction_id, exc_info=True)


def unindex_labels_quietly(store: TableJobStore, ended: JobRecord) -> None:
    """Drop the label rows of a job that can never be live again (cancelled, deleted),
    logging rather than raising: a reader of the label drops a row it finds of an ended job.
    A job that may be replayed drops them by ETag (label_rows_quietly)."""
    if not ended.labels:
        return
    try:
        store.unindex_labels(ended.transaction_id, ended.labels)
    except Exception:
        log.warning("could not drop a label row of %s", ended.transaction_id, exc_info=True)


def label_rows_quietly(store: TableJobStore, ending: JobRecord) -> list[LabelEntry]:
    """The label rows of a job about to end, read before the write that ends it: a replay
    right after that write writes them again (new ETags), and a drop by these ETags leaves
    the replayed job's rows. Nothing when they cannot be read: readers drop them later."""
    if not ending.labels or ending.state in LIVE_STATES:
        return []
    try:
        return store.label_entries(ending.transaction_id, ending.labels)
    except Exception:
        log.warning("could not read the label rows of %s", ending.transaction_id, exc_info=True)
        return []


def drop_label_rows_quietly(store: TableJobStore, rows: Sequence[LabelEntry]) -> None:
    """Drop the label rows read by label_rows_quietly, each only if not written since."""
    for row in rows:
        try:
            store.drop_label_entry(row)
        except Exception:
            log.warning("could not drop a label row of %s", row.transaction_id, exc_info=True)


def label_row_verdict(entry: LabelEntry, record: JobRecord | None, now: datetime) -> RowVerdict:
    """What a reader does with a label row, given the job's record: as `row_verdict`, and a
    row whose label the record does not have is dropped (a create under a reused key that
    was refused, or another incarnation of the id)."""
    if record is None:
        old = entry.written_at is not None and now - entry.written_at > ORPHAN_ROW_AGE
        return "drop" if old else "skip"
    key, value = entry.pair
    if record.state not in LIVE_STATES or record.labels.get(key) != value:
        return "drop"
    return "list"


FailedVerdict = Literal["list", "expire", "skip", "drop"]


def failed_row_verdict(
    entry: FailedEntry, record: JobRecord | None, kept_since: datetime
) -> FailedVerdict:
    """What a reader of the failed list does with a row, given the job's record.

    The row is written before the record moves to `failed` (while it is `firing`), so a
    firing record of the row's generation may be on its way to it: skipped, not dropped.
    A row is listed when the record failed at its time; expired (the record removed) when
    that is before `kept_since` (the retention); dropped when it can never match again
    (deleted, replayed, or a failure recorded at another time by a re-run of the attempt).
    """
    if record is None or record.generation != entry.generation:
        return "drop"
    if record.state == "failed" and record.failed_at == entry.failed_at:
        return "expire" if entry.failed_at < kept_since else "list"
    if record.state == "firing":
        return "skip"
    return "drop"


def unindex_failure_quietly(store: TableJobStore, entry: FailedEntry) -> None:
    """Drop a failed-index row (only the version read), logging rather than raising: a
    leftover row is dropped by the next reader of the failed list."""
    forget_failure_quietly(store, entry.transaction_id, entry.failed_at, entry.etag or None)


def forget_failure_quietly(
    store: TableJobStore, transaction_id: str, failed_at: datetime | None, etag: str | None = None
) -> None:
    """Drop the row of the failure at `failed_at` (with `etag`, only that version). Without
    one it is safe too once the record has moved on from that failure: the row's key holds
    the failure's time, which no writer uses again."""
    if failed_at is None:
        return
    try:
        store.unindex_failure(transaction_id, failed_at, etag)
    except Exception:
        log.warning("could not drop a failed-index row of %s", transaction_id, exc_info=True)
