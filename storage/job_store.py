"""The job store on Azure Table Storage: a record per job, and an index of live jobs by due time.

Two tables (see docs/job-store.md for the reasoning):

- `{JOB_TABLE}`: one row per job, PartitionKey = RowKey = transaction id. Every state change
  is a point operation on that row, conditional on its ETag: creates are insert-if-absent,
  claims and cancels replace only the version they read. A partition per job means no
  partition's throughput limit is shared by two jobs.
- `{JOB_TABLE}failed`: one row per dead letter (a job whose last run failed), keyed like the
  due index but by the failure time, so the failed list is one query in failure order too.
- `{JOB_TABLE}due`: one row per live job (pending, firing, retrying), PartitionKey = the
  due minute (`yyyymmddHHMM`), RowKey = `{exec_at}|{transaction id}`. The service returns
  rows in PartitionKey, RowKey order, so listing in exec_at order is one query, resumed by
  the service's own continuation token; jobs due in different minutes land in different
  partitions. The index only points: a row whose job has ended or was replaced is skipped
  by the reader (and dropped), so the record stays the one source of truth.
- `{JOB_TABLE}labels`: one row per label of a live job, PartitionKey = the pair
  (`key=value`), RowKey = the transaction id. Every job with a label is one key range, so a
  listing or a bulk cancel by label reads only that label's jobs, in id order, resumed by
  the service's token; a job's labels never change, so its rows are written once (at
  creation, before the record, like its due row) and never move with its due time; they go
  when the job ends, and a reader drops any it finds of an ended job, as for the due index.
"""

import contextlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast, get_args

from pydantic import ValidationError

from scheduling.job_record import LIVE_STATES, JobRecord, JobState
from storage.sealing import SealedPayload
from storage.table_storage import TableEndpoint, get_text, open_table, put_text

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient

INDEX_SUFFIX = "due"
FAILED_SUFFIX = "failed"
LABEL_SUFFIX = "labels"
# An entity group transaction takes at most 100 operations, all in one partition.
TRANSACTION_ROWS = 100
# Filled with the job's fields on the way in and out; a fixed-width UTC stamp sorts as text.
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
_PLAIN_FIELDS = (
    "transaction_id",
    "generation",
    "state",
    "prompt_type",
    "attempts",
    "runs",
    "skipped_runs",
)
# Small JSON values, each in one property ("" for none).
_JSON_FIELDS = ("retry", "recurrence", "last_run", "callbacks", "flow")
_TIME_FIELDS = (
    "exec_at",
    "accepted_at",
    "updated_at",
    "next_attempt_at",
    "fired_at",
    "failed_at",
    "replayed_at",
)
T = TypeVar("T")
log = logging.getLogger(__name__)


class JobExists(Exception):
    """A record with this transaction id exists already (an Idempotency-Key seen before)."""


class StaleRecord(Exception):
    """The record changed (or went) since it was read: the compare-and-swap lost."""


@dataclass(frozen=True)
class UnreadableRow:
    """A job's row that is not a readable JobRecord (a property corrupted, a long text cut
    short, a version that writes what this one cannot read), or whose payload cannot be
    opened: what could still be read of it (None where nothing could), and why, in one line.
    Its `etag` is the version read (empty when it came from a readable record)."""

    transaction_id: str
    why: str
    etag: str = ""
    state: str | None = None
    generation: str | None = None
    prompt_type: str | None = None
    exec_at: datetime | None = None
    failed_at: datetime | None = None

    @classmethod
    def of(cls, record: JobRecord, why: str) -> "UnreadableRow":
        """A readable record whose payload cannot be opened, shown as unreadable."""
        return cls(
            transaction_id=record.transaction_id,
            why=why,
            state=record.state,
            generation=record.generation,
            prompt_type=record.prompt_type,
            exec_at=record.exec_at,
            failed_at=record.failed_at,
        )


class UnreadableRecord(Exception):
    """get() found the job's row and could not read it; `row` says what it could."""

    def __init__(self, row: UnreadableRow) -> None:
        super().__init__(f"the record of {row.transaction_id} cannot be read: {row.why}")
        self.row = row


@dataclass(frozen=True)
class StoredJob:
    """A record as read, with the ETag a conditional write must match."""

    record: JobRecord
    etag: str


@dataclass(frozen=True)
class DueEntry:
    """An index row: a job believed live, due at `exec_at`; `etag` and `written_at` say which
    version of the row was read, so that dropping it cannot drop a newer one."""

    transaction_id: str
    generation: str
    exec_at: datetime
    prompt_type: str
    etag: str = ""
    written_at: datetime | None = None


@dataclass(frozen=True)
class FailedEntry:
    """A failed-index row: a job believed to have failed at `failed_at` (its record's
    `failed_at`); `etag` and `written_at` as for a DueEntry."""

    transaction_id: str
    generation: str
    failed_at: datetime
    prompt_type: str
    etag: str = ""
    written_at: datetime | None = None


@dataclass(frozen=True)
class DueRange:
    """Which live jobs a listing covers: due in [due_from, due_to], of one prompt type."""

    due_from: datetime | None = None
    due_to: datetime | None = None
    prompt_type: str | None = None
    # Every pair must be on the job (several: all of them); sorted, so one filter, one form.
    labels: tuple[tuple[str, str], ...] = ()

    def covers(self, record: JobRecord) -> bool:
        """Whether the job is one this range names (its record's word, not its index row's)."""
        return (
            self.prompt_type in (None, record.prompt_type)
            and (self.due_from is None or record.exec_at >= self.due_from)
            and (self.due_to is None or record.exec_at <= self.due_to)
            and all(record.labels.get(key) == value for key, value in self.labels)
        )

    @property
    def filtered(self) -> bool:
        return self != DueRange()


@dataclass(frozen=True)
class LabelEntry:
    """A label-index row: a job believed live with the label `pair`; `etag` and `written_at`
    as for a DueEntry."""

    transaction_id: str
    pair: tuple[str, str]
    etag: str = ""
    written_at: datetime | None = None


ContinuationToken = dict[str, str]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, _STAMP).replace(tzinfo=UTC)


def label_partition(key: str, value: str) -> str:
    """The label index's partition of one pair: `key=value` (a key holds no `=`)."""
    return f"{key}={value}"


def due_keys(exec_at: datetime, transaction_id: str) -> tuple[str, str]:
    """The index row's PartitionKey (the due minute) and RowKey (due time, then id)."""
    return exec_at.astimezone(UTC).strftime("%Y%m%d%H%M"), f"{stamp(exec_at)}|{transaction_id}"


class TableJobStore:
    """JobRecords in Table Storage; safe to share across the threads of one worker process."""

    def __init__(
        self,
        records: "TableClient",
        due_index: "TableClient",
        failed_index: "TableClient",
        label_index: "TableClient",
        credential: "TokenCredential | None" = None,
    ) -> None:
        self._records = records
        self._due = due_index
        self._failed = failed_index
        self._labels = label_index
        self._credential = credential

    @classmethod
    def open(cls, endpoint: TableEndpoint, table_name: str) -> "TableJobStore":
        """A store on `endpoint`, without network calls; tables are made on first write."""
        records, credential = open_table(endpoint, table_name)
        due_index, _ = open_table(endpoint, table_name + INDEX_SUFFIX)
        failed_index, _ = open_table(endpoint, table_name + FAILED_SUFFIX)
        label_index, _ = open_table(endpoint, table_name + LABEL_SUFFIX)
        return cls(records, due_index, failed_index, label_index, credential)

    @property
    def table_name(self) -> str:
        return self._records.table_name

    @property
    def table_url(self) -> str:
        """The records table's URL: a job log in the same table keeps its rows beside them."""
        return f"{self._records.url}/{self._records.table_name}"

    # -- records -------------------------------------------------------------------------

    def create(self, record: JobRecord) -> StoredJob:
        """Insert the record if no record has its id; JobExists otherwise."""
        from azure.core.exceptions import ResourceExistsError

        try:
            metadata = _on_table(self._records, lambda: self._records.create_entity(_row(record)))
        except ResourceExistsError:
            raise JobExists(record.transaction_id) from None
        return StoredJob(record, str(metadata["etag"]))

    def get(self, transaction_id: str) -> StoredJob | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._records.get_entity(transaction_id, transaction_id)
        except ResourceNotFoundError:  # no such row, or no table yet
            return None
        try:
            return StoredJob(_record(entity), str(entity.metadata["etag"]))
        except (ValueError, TypeError, KeyError) as error:
            raise UnreadableRecord(unreadable_row(entity, error)) from None

    def replace(
        self, stored: StoredJob, record: JobRecord, along: Sequence[dict[str, Any]] = ()
    ) -> StoredJob:
        """Write `record` over `stored` if the row is still that version; StaleRecord if not.

        `along`: other rows of the job's partition (its log entries) written in the same
        entity group transaction, so they land if and only if the record does.
        """
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import TableTransactionError, UpdateMode

        if any(row["PartitionKey"] != record.transaction_id for row in along):
            raise ValueError("rows written along a record must be in its partition")
        if_unchanged = MatchConditions.IfNotModified
        try:
            if along:
                swap = {"mode": UpdateMode.REPLACE, "etag": stored.etag}
                answers = self._records.submit_transaction(
                    [
                        ("update", _row(record), {**swap, "match_condition": if_unchanged}),
                        *(("upsert", row, {"mode": UpdateMode.REPLACE}) for row in along),
                    ]
                )
                etag = answers[0]["etag"]
            else:
                etag = self._records.update_entity(
                    _row(record),
                    mode=UpdateMode.REPLACE,
                    etag=stored.etag,
                    match_condition=if_unchanged,
                )["etag"]
        except (ResourceModifiedError, ResourceNotFoundError, TableTransactionError) as error:
            if isinstance(error, TableTransactionError) and error.status_code not in (404, 412):
                raise
            # The client retries a write whose answer was lost: if the first try landed, the
            # retry meets its own ETag change. The record then is exactly what we wrote.
            current = self.get(record.transaction_id)
            if current is not None and current.record == record:
                return current
            raise StaleRecord(record.transaction_id) from None
        return StoredJob(record, str(etag))

    def remove_unreadable(self, row: UnreadableRow) -> None:
        """Remove a row that cannot be read, if it is still the version read (StaleRecord if
        it changed): it cannot be written over, and nothing in it is opened."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        try:
            self._records.delete_entity(
                row.transaction_id,
                row.transaction_id,
                etag=row.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            raise StaleRecord(row.transaction_id) from None

    def delete(self, stored: StoredJob) -> None:
        """Remove the record if it is still the version read; StaleRecord if it changed."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError

        transaction_id = stored.record.transaction_id
        try:
            self._records.delete_entity(
                transaction_id,
                transaction_id,
                etag=stored.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            # (A row that is already gone reads as deleted: the SDK answers success, which
            # is also what a retried delete whose first try landed must see.)
            raise StaleRecord(transaction_id) from None

    # -- the due index -------------------------------------------------------------------

    def index(self, record: JobRecord) -> str:
        """Make the job findable by its due time (idempotent); the row's new ETag."""
        return self.index_row(_due_row(record))

    def index_many(self, records: Sequence[JobRecord]) -> None:
        """Make many jobs findable by their due time: one entity group transaction per due
        minute and up to 100 jobs (a batch of jobs due at one time costs a few requests)."""
        rows: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            row = _due_row(record)
            rows.setdefault(row["PartitionKey"], []).append(row)
        for partition_rows in rows.values():
            for start in range(0, len(partition_rows), TRANSACTION_ROWS):
                _upsert_rows(self._due, partition_rows[start : start + TRANSACTION_ROWS])

    def index_row(self, entity: dict[str, Any]) -> str:
        from azure.data.tables import UpdateMode

        metadata = _on_table(
            self._due, lambda: self._due.upsert_entity(entity, mode=UpdateMode.REPLACE)
        )
        return str(metadata.get("etag") or "")

    def row_etag(self, record: JobRecord) -> str | None:
        """The ETag of the job's row at its due time, or None when there is none."""
        from azure.core.exceptions import ResourceNotFoundError

        partition, row = due_keys(record.exec_at, record.transaction_id)
        try:
            return str(self._due.get_entity(partition, row).metadata["etag"])
        except ResourceNotFoundError:
            return None

    def unindex(self, transaction_id: str, exec_at: datetime, etag: str | None = None) -> None:
        """Drop the job's index row, if there is one; with `etag`, only that version of it
        (a row someone has written again since is theirs now, and stays)."""
        _delete_row(self._due, due_keys(exec_at, transaction_id), etag)

    def drop_entry(self, entry: DueEntry) -> None:
        """Drop an index row if it is still the version read (else it was written again)."""
        self.unindex(entry.transaction_id, entry.exec_at, entry.etag or None)

    def due_page(
        self, scope: DueRange, limit: int, continuation: ContinuationToken | None
    ) -> tuple[list[DueEntry], ContinuationToken | None]:
        """Up to `limit` index rows in due order from `continuation`, and where the next
        page starts (None at the end). One service request: a page may come back short."""
        rows, token = _index_page(self._due, scope, limit, continuation)
        entries = [
            DueEntry(
                transaction_id=str(row["transaction_id"]),
                generation=str(row["generation"]),
                exec_at=_parse_stamp(str(row["exec_at"])),
                prompt_type=str(row["prompt_type"]),
                etag=str(row.metadata.get("etag") or ""),
                written_at=row.metadata.get("timestamp"),
            )
            for row in rows
        ]
        return entries, token

    # -- the label index -----------------------------------------------------------------

    def index_labels(self, records: Sequence[JobRecord]) -> None:
        """Make the jobs findable by each of their labels (idempotent): one entity group
        transaction per label and up to 100 jobs, as all rows of a label share a partition."""
        rows: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            for key, value in record.labels.items():
                partition = label_partition(key, value)
                rows.setdefault(partition, []).append(_label_row(partition, record))
        for partition_rows in rows.values():
            for start in range(0, len(partition_rows), TRANSACTION_ROWS):
                chunk = partition_rows[start : start + TRANSACTION_ROWS]
                _upsert_rows(self._labels, chunk)

    def unindex_labels(self, transaction_id: str, labels: Mapping[str, str]) -> None:
        """Drop the job's rows of `labels` (an ended job's, or a create taken back)."""
        for key, value in labels.items():
            _delete_row(self._labels, (label_partition(key, value), transaction_id), None)

    def label_entries(self, transaction_id: str, labels: Mapping[str, str]) -> list[LabelEntry]:
        """The job's rows of `labels` there are, with their ETags: one point read each."""
        from azure.core.exceptions import ResourceNotFoundError

        entries = []
        for pair in labels.items():
            try:
                row = self._labels.get_entity(label_partition(*pair), transaction_id)
            except ResourceNotFoundError:  # no such row, or no table yet
                continue
            etag = str(row.metadata.get("etag") or "")
            entries.append(LabelEntry(transaction_id=transaction_id, pair=pair, etag=etag))
        return entries

    def drop_label_entry(self, entry: LabelEntry) -> None:
        """Drop a label row if it is still the version read (else it was written again)."""
        keys = (label_partition(*entry.pair), entry.transaction_id)
        _delete_row(self._labels, keys, entry.etag or None)

    def label_page(
        self,
        pair: tuple[str, str],
        prompt_type: str | None,
        limit: int,
        continuation: ContinuationToken | None,
    ) -> tuple[list[LabelEntry], ContinuationToken | None]:
        """Up to `limit` rows of one label's jobs in id order from `continuation`, and where
        the next page starts (None at the end). One service request over one partition."""
        query = "PartitionKey eq @pair"
        parameters = {"pair": label_partition(*pair)}
        if prompt_type is not None:
            query += " and prompt_type eq @prompt_type"
            parameters["prompt_type"] = prompt_type
        rows, token = _query_page(self._labels, query, parameters, limit, continuation)
        entries = [
            LabelEntry(
                transaction_id=str(row["RowKey"]),
                pair=pair,
                etag=str(row.metadata.get("etag") or ""),
                written_at=row.metadata.get("timestamp"),
            )
            for row in rows
        ]
        return entries, token

    # -- the failed index ----------------------------------------------------------------

    def index_failure(self, record: JobRecord) -> str:
        """Make a failed job findable by its failure time (idempotent); the row's ETag."""
        if record.failed_at is None:
            raise ValueError(f"{record.transaction_id} has not failed")
        partition, row = due_keys(record.failed_at, record.transaction_id)
        entity = {
            "PartitionKey": partition,
            "RowKey": row,
            "transaction_id": record.transaction_id,
            "generation": record.generation,
            "prompt_type": record.prompt_type,
            "failed_at": stamp(record.failed_at),
        }
        from azure.data.tables import UpdateMode

        metadata = _on_table(
            self._failed, lambda: self._failed.upsert_entity(entity, mode=UpdateMode.REPLACE)
        )
        return str(metadata.get("etag") or "")

    def failure_etag(self, record: JobRecord) -> str | None:
        """The ETag of the row of the record's failure, or None when there is none."""
        from azure.core.exceptions import ResourceNotFoundError

        if record.failed_at is None:
            return None
        partition, row = due_keys(record.failed_at, record.transaction_id)
        try:
            return str(self._failed.get_entity(partition, row).metadata["etag"])
        except ResourceNotFoundError:
            return None

    def unindex_failure(self, transaction_id: str, failed_at: datetime, etag: str | None) -> None:
        """Drop a failed-index row; with `etag`, only that version of it."""
        _delete_row(self._failed, due_keys(failed_at, transaction_id), etag)

    def drop_failure(self, entry: FailedEntry) -> None:
        self.unindex_failure(entry.transaction_id, entry.failed_at, entry.etag or None)

    def failure_page(
        self, scope: DueRange, limit: int, continuation: ContinuationToken | None
    ) -> tuple[list[FailedEntry], ContinuationToken | None]:
        """Up to `limit` failed-index rows in failure-time order (`scope` bounds the failure
        time), and where the next page starts. One service request, as `due_page`."""
        rows, token = _index_page(self._failed, scope, limit, continuation)
        entries = [
            FailedEntry(
                transaction_id=str(row["transaction_id"]),
                generation=str(row["generation"]),
                failed_at=_parse_stamp(str(row["failed_at"])),
                prompt_type=str(row["prompt_type"]),
                etag=str(row.metadata.get("etag") or ""),
                written_at=row.metadata.get("timestamp"),
            )
            for row in rows
        ]
        return entries, token

    def updated_since(self, since: datetime, limit: int) -> tuple[list[JobRecord], bool]:
        """Up to `limit` records last written at or after `since`, and whether more matched.

        A filter, not a key range: the service scans the records table (in id order, so
        past `limit` what comes back is a sample, not the newest). For the dashboard's
        charts, which say when they were drawn from a sample.
        """
        from azure.core.exceptions import ResourceNotFoundError

        rows = self._records.query_entities(
            "updated_at ge @since",
            parameters={"since": stamp(since)},
            results_per_page=min(limit + 1, 1000),
        )
        try:
            read = list(islice(rows, limit + 1))
        except ResourceNotFoundError:
            return [], False  # no table yet
        found = []
        for row in read:
            try:
                found.append(_record(row))
            except (ValueError, TypeError, KeyError) as error:
                # One bad row leaves the sample one record short, never without the rest.
                unreadable = unreadable_row(row, error)
                log.error("job %s is unreadable: %s", unreadable.transaction_id, unreadable.why)
        return found[:limit], len(read) > limit

    def close(self) -> None:
        self._records.close()
        self._due.close()
        self._failed.close()
        self._labels.close()
        if self._credential is not None and hasattr(self._credential, "close"):
            self._credential.close()


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


def _delete_row(table: "TableClient", keys: tuple[str, str], etag: str | None) -> None:
    """Delete an index row; with `etag`, only that version (one written again since stays)."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError

    partition, row = keys
    # The SDK answers a missing row (or table) as success: nothing left to drop.
    if etag is None:
        table.delete_entity(partition, row)
        return
    with contextlib.suppress(ResourceModifiedError):
        table.delete_entity(
            partition, row, etag=etag, match_condition=MatchConditions.IfNotModified
        )


def _index_page(
    client: "TableClient", scope: DueRange, limit: int, continuation: ContinuationToken | None
) -> tuple[list[Any], ContinuationToken | None]:
    """One page of a time index's rows in key (time) order, and the service's next token."""
    query, parameters = _due_filter(scope)
    return _query_page(client, query, parameters, limit, continuation)


def _query_page(
    client: "TableClient",
    query: str,
    parameters: dict[str, Any],
    limit: int,
    continuation: ContinuationToken | None,
) -> tuple[list[Any], ContinuationToken | None]:
    """One page of a query's rows in key order, and the service's next token."""
    from azure.core.exceptions import ResourceNotFoundError

    # The SDK's token is the service's next (PartitionKey, RowKey), typed as a str.
    pages: Any = client.query_entities(
        query, parameters=parameters, results_per_page=limit
    ).by_page(continuation_token=cast(Any, continuation))
    try:
        page = next(pages)
        rows = list(islice(page, limit))
    except StopIteration:
        return [], None
    except ResourceNotFoundError:
        return [], None  # no table yet: nothing was ever written to it
    # The service may leave NextRowKey out (at a partition server's boundary): keep only the
    # parts it gave.
    token = pages.continuation_token
    given = {name: str(value) for name, value in (token or {}).items() if value}
    return rows, given or None


def _on_table(client: "TableClient", write: Callable[[], T]) -> T:
    """Run a write, making the table first if it does not exist yet (a fresh account)."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

    try:
        return write()
    except ResourceNotFoundError:
        # Another worker or thread may have made it meanwhile.
        with contextlib.suppress(ResourceExistsError):
            client.create_table()
        return write()


def _upsert_rows(client: "TableClient", rows: list[dict[str, Any]]) -> None:
    """Write rows of one partition (at most 100): one point write, or one transaction."""
    from azure.data.tables import UpdateMode

    if len(rows) == 1:  # a point write costs the service less than a batch of one
        _on_table(client, lambda: client.upsert_entity(rows[0], mode=UpdateMode.REPLACE))
        return
    _in_transaction(client, [("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows])


def _in_transaction(client: "TableClient", operations: list[Any]) -> None:
    """One entity group transaction, making the table first on a fresh account."""
    from azure.core.exceptions import ResourceExistsError
    from azure.data.tables import TableTransactionError

    try:
        client.submit_transaction(operations)
    except TableTransactionError as error:
        if error.status_code != 404:  # no table yet: nothing was ever written to it
            raise
        with contextlib.suppress(ResourceExistsError):
            client.create_table()
        client.submit_transaction(operations)


def _due_filter(scope: DueRange) -> tuple[str, dict[str, Any]]:
    clauses = ["PartitionKey ge @from_partition"]
    parameters: dict[str, Any] = {"from_partition": ""}
    if scope.due_from is not None:
        parameters["from_partition"], parameters["from_row"] = due_keys(scope.due_from, "")
        clauses.append("RowKey ge @from_row")
    if scope.due_to is not None:
        partition, row = due_keys(scope.due_to, "")
        clauses.append("PartitionKey le @to_partition and RowKey lt @to_row")
        # "|~" sorts after every "|<id>" of the same instant: `to` is inclusive.
        parameters.update(to_partition=partition, to_row=row + "~")
    if scope.prompt_type is not None:
        clauses.append("prompt_type eq @prompt_type")
        parameters["prompt_type"] = scope.prompt_type
    return " and ".join(clauses), parameters


def _due_row(record: JobRecord) -> dict[str, Any]:
    partition, row = due_keys(record.exec_at, record.transaction_id)
    return {
        "PartitionKey": partition,
        "RowKey": row,
        "transaction_id": record.transaction_id,
        "generation": record.generation,
        "prompt_type": record.prompt_type,
        "exec_at": stamp(record.exec_at),
    }


def _label_row(partition: str, record: JobRecord) -> dict[str, Any]:
    return {
        "PartitionKey": partition,
        "RowKey": record.transaction_id,
        "prompt_type": record.prompt_type,
    }


def _row(record: JobRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    entity: dict[str, Any] = {
        "PartitionKey": record.transaction_id,
        "RowKey": record.transaction_id,
        **{name: data[name] for name in _PLAIN_FIELDS},
        **{
            name: "" if data[name] is None else json.dumps(data[name], separators=(",", ":"))
            for name in _JSON_FIELDS
        },
        "destination": record.destination or "",
        "request_fingerprint": record.request_fingerprint or "",
        "cancelled_by": record.cancelled_by or "",
        # In clear, like the other schedule fields: labels are not secret (scheduling/labels.py).
        "labels": json.dumps(record.labels, separators=(",", ":")) if record.labels else "",
    }
    for name in _TIME_FIELDS:
        moment = getattr(record, name)
        entity[name] = stamp(moment) if moment is not None else ""
    if record.last_outcome is not None:
        put_text(entity, "last_outcome", json.dumps(data["last_outcome"], separators=(",", ":")))
    if record.attempt_history:
        history = json.dumps(data["attempt_history"], separators=(",", ":"))
        put_text(entity, "attempt_history", history)
    put_text(entity, "sealed_payload", record.sealed_payload.model_dump_json())
    if record.sealed_callbacks is not None:
        put_text(entity, "sealed_callbacks", record.sealed_callbacks.model_dump_json())
    return entity


def _record(entity: Mapping[str, Any]) -> JobRecord:
    outcome = get_text(entity, "last_outcome")
    history = get_text(entity, "attempt_history")
    sealed_callbacks = get_text(entity, "sealed_callbacks")
    return JobRecord.model_validate(
        {
            **{name: entity[name] for name in _PLAIN_FIELDS if name in entity},
            **{
                name: _parse_stamp(entity[name]) if entity.get(name) else None
                for name in _TIME_FIELDS
            },
            **{
                name: json.loads(entity[name]) if entity.get(name) else None
                for name in _JSON_FIELDS
            },
            "destination": entity.get("destination") or None,
            "request_fingerprint": entity.get("request_fingerprint") or None,
            "cancelled_by": entity.get("cancelled_by") or None,
            "labels": json.loads(entity["labels"]) if entity.get("labels") else {},
            "last_outcome": json.loads(outcome) if outcome else None,
            "attempt_history": json.loads(history) if history else [],
            "sealed_payload": SealedPayload.model_validate_json(get_text(entity, "sealed_payload")),
            "sealed_callbacks": (
                SealedPayload.model_validate_json(sealed_callbacks) if sealed_callbacks else None
            ),
        }
    )


_STATES = frozenset(get_args(JobState))


def unreadable_row(entity: Mapping[str, Any], error: Exception) -> UnreadableRow:
    """What can still be read of a row `_record` refused, and why in one line (names of
    properties, never their values: a row may hold a response a target sent)."""

    def text(name: str) -> str | None:
        value = entity.get(name)
        return value if isinstance(value, str) and value else None

    def moment(name: str) -> datetime | None:
        value = text(name)
        try:
            return _parse_stamp(value) if value else None
        except ValueError:
            return None

    state = text("state")
    metadata = getattr(entity, "metadata", None) or {}
    return UnreadableRow(
        transaction_id=str(entity.get("PartitionKey") or entity.get("transaction_id") or ""),
        why=_why_unreadable(entity, error),
        etag=str(metadata.get("etag") or ""),
        state=state if state in _STATES else None,
        generation=text("generation"),
        prompt_type=text("prompt_type"),
        exec_at=moment("exec_at"),
        failed_at=moment("failed_at"),
    )


def _why_unreadable(entity: Mapping[str, Any], error: Exception) -> str:
    for name in _JSON_FIELDS:
        if entity.get(name) and not _is_json(entity[name]):
            return f"its {name} is not valid JSON (altered, or cut short)"
    if entity.get("labels") and not _is_json(entity["labels"]):
        return "its labels are not valid JSON (altered, or cut short)"
    for name in ("last_outcome", "attempt_history"):
        stored = get_text(entity, name)
        if stored and not _is_json(stored):
            return f"its {name} is not valid JSON (altered, or cut short)"
    for name in ("sealed_payload", "sealed_callbacks"):
        stored = get_text(entity, name)
        if (stored or name == "sealed_payload") and not _is_sealed(stored):
            return f"its {name} is not a sealed payload (altered, or cut short)"
    for name in _TIME_FIELDS:
        if entity.get(name) and not _is_stamp(entity[name]):
            return f"its {name} is not a time"
    if isinstance(error, ValidationError) and error.errors():
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        return " ".join(f"its {where}: {first['msg']}".split())[:200]
    return f"it cannot be read ({type(error).__name__})"


def _is_json(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _is_sealed(text: str) -> bool:
    try:
        SealedPayload.model_validate_json(text)
    except ValueError:
        return False
    return True


def _is_stamp(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        _parse_stamp(value)
    except ValueError:
        return False
    return True
