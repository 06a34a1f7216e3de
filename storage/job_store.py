"""The job store on Azure Table Storage: a record per job, and an index of live jobs by due time.

Whole at ~540 lines because it is one thing, every read and write of the four tables below;
how a record is a row is `storage.job_rows`, what readers do with stale index rows is
`storage.index_upkeep`, the Table calls every store shares are `storage.table_storage`.

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

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from scheduling.job_record import JobRecord
from storage.job_rows import (
    UnreadableRow,
    due_keys,
    due_row,
    label_partition,
    label_row,
    parse_stamp,
    record_from_row,
    record_row,
    stamp,
    unreadable_row,
)
from storage.table_storage import (
    TableEndpoint,
    delete_row,
    on_table,
    open_table,
    query_page,
    upsert_rows,
)

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient

INDEX_SUFFIX = "due"
FAILED_SUFFIX = "failed"
LABEL_SUFFIX = "labels"
# An entity group transaction takes at most 100 operations, all in one partition.
TRANSACTION_ROWS = 100
log = logging.getLogger(__name__)


class JobExists(Exception):
    """A record with this transaction id exists already (an Idempotency-Key seen before)."""


class StaleRecord(Exception):
    """The record changed (or went) since it was read: the compare-and-swap lost."""


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


class TableJobStore:
    """JobRecords in Table Storage; safe to share across the threads of one worker process."""

    def __init__(
        self,
        records: "TableClient",
        due_index: "TableClient",
        failed_index: "TableClient",
        label_index: "TableClient",
        credential: "TokenCredential | None" = None,
        endpoint: TableEndpoint | None = None,
    ) -> None:
        """`endpoint`: where the tables are, for a batch's async clients (BatchWrites)."""
        self._records = records
        self._due = due_index
        self._failed = failed_index
        self._labels = label_index
        self._credential = credential
        self.endpoint = endpoint

    @classmethod
    def open(cls, endpoint: TableEndpoint, table_name: str) -> "TableJobStore":
        """A store on `endpoint`, without network calls; tables are made on first write."""
        records, credential = open_table(endpoint, table_name)
        due_index, _ = open_table(endpoint, table_name + INDEX_SUFFIX)
        failed_index, _ = open_table(endpoint, table_name + FAILED_SUFFIX)
        label_index, _ = open_table(endpoint, table_name + LABEL_SUFFIX)
        return cls(records, due_index, failed_index, label_index, credential, endpoint)

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
            metadata = on_table(
                self._records, lambda: self._records.create_entity(record_row(record))
            )
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
            return StoredJob(record_from_row(entity), str(entity.metadata["etag"]))
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
                        ("update", record_row(record), {**swap, "match_condition": if_unchanged}),
                        *(("upsert", row, {"mode": UpdateMode.REPLACE}) for row in along),
                    ]
                )
                etag = answers[0]["etag"]
            else:
                etag = self._records.update_entity(
                    record_row(record),
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
        return self.index_row(due_row(record))

    def index_many(self, records: Sequence[JobRecord]) -> dict[str, str]:
        """Make many jobs findable by their due time: one entity group transaction per due
        minute and up to 100 jobs (a batch of jobs due at one time costs a few requests).
        Each job's row's new ETag, by transaction id."""
        etags = _upsert_by_partition(self._due, [due_row(record) for record in records])
        return {record.transaction_id: etag for record, etag in zip(records, etags, strict=True)}

    def index_row(self, entity: dict[str, Any]) -> str:
        from azure.data.tables import UpdateMode

        metadata = on_table(
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
        delete_row(self._due, due_keys(exec_at, transaction_id), etag)

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
                exec_at=parse_stamp(str(row["exec_at"])),
                prompt_type=str(row["prompt_type"]),
                etag=str(row.metadata.get("etag") or ""),
                written_at=row.metadata.get("timestamp"),
            )
            for row in rows
        ]
        return entries, token

    # -- the label index -----------------------------------------------------------------

    def index_labels(self, records: Sequence[JobRecord]) -> list[LabelEntry]:
        """Make the jobs findable by each of their labels (idempotent): one entity group
        transaction per label and up to 100 jobs, as all rows of a label share a partition.
        The rows written, with their new ETags."""
        rows = label_rows(records)
        return label_entries(rows, _upsert_by_partition(self._labels, [row for _, row in rows]))

    def unindex_labels(self, transaction_id: str, labels: Mapping[str, str]) -> None:
        """Drop the job's rows of `labels` (an ended job's, or a create taken back)."""
        for key, value in labels.items():
            delete_row(self._labels, (label_partition(key, value), transaction_id), None)

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
        delete_row(self._labels, keys, entry.etag or None)

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
        rows, token = query_page(self._labels, query, parameters, limit, continuation)
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

        metadata = on_table(
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
        delete_row(self._failed, due_keys(failed_at, transaction_id), etag)

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
                failed_at=parse_stamp(str(row["failed_at"])),
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
                found.append(record_from_row(row))
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


def _upsert_by_partition(table: "TableClient", rows: list[dict[str, Any]]) -> list[str]:
    """Write rows of any partitions, one entity group transaction per partition and up to
    TRANSACTION_ROWS rows; their new ETags, in the order of `rows`."""
    etags = [""] * len(rows)
    for chunk in transaction_chunks(rows):
        written = upsert_rows(table, [rows[position] for position in chunk])
        for position, etag in zip(chunk, written, strict=True):
            etags[position] = etag
    return etags


def transaction_chunks(rows: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """The positions of `rows` that one entity group transaction may write together: of one
    partition, at most TRANSACTION_ROWS."""
    by_partition: dict[str, list[int]] = {}
    for position, row in enumerate(rows):
        by_partition.setdefault(row["PartitionKey"], []).append(position)
    return [
        positions[start : start + TRANSACTION_ROWS]
        for positions in by_partition.values()
        for start in range(0, len(positions), TRANSACTION_ROWS)
    ]


def label_rows(records: Sequence[JobRecord]) -> list[tuple[LabelEntry, dict[str, Any]]]:
    """A row for each label of each job, with the entry it will be once written."""
    return [
        (
            LabelEntry(transaction_id=record.transaction_id, pair=pair),
            label_row(label_partition(*pair), record),
        )
        for record in records
        for pair in record.labels.items()
    ]


def label_entries(
    rows: Sequence[tuple[LabelEntry, dict[str, Any]]], etags: Sequence[str]
) -> list[LabelEntry]:
    """The label rows' entries, with the ETags their writes returned."""
    return [
        dataclasses.replace(entry, etag=etag) for (entry, _), etag in zip(rows, etags, strict=True)
    ]


def _index_page(
    client: "TableClient", scope: DueRange, limit: int, continuation: ContinuationToken | None
) -> tuple[list[Any], ContinuationToken | None]:
    """One page of a time index's rows in key (time) order, and the service's next token."""
    query, parameters = _due_filter(scope)
    return query_page(client, query, parameters, limit, continuation)


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
