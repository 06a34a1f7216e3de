"""The job store on Azure Table Storage: a record per job, and an index of live jobs by due time.

Two tables (see docs/job-store.md for the reasoning):

- `{JOB_TABLE}`: one row per job, PartitionKey = RowKey = transaction id. Every state change
  is a point operation on that row, conditional on its ETag: creates are insert-if-absent,
  claims and cancels replace only the version they read. A partition per job means no
  partition's throughput limit is shared by two jobs.
- `{JOB_TABLE}due`: one row per live job (pending, firing, retrying), PartitionKey = the
  due minute (`yyyymmddHHMM`), RowKey = `{exec_at}|{transaction id}`. The service returns
  rows in PartitionKey, RowKey order, so listing in exec_at order is one query, resumed by
  the service's own continuation token; jobs due in different minutes land in different
  partitions. The index only points: a row whose job has ended or was replaced is skipped
  by the reader (and dropped), so the record stays the one source of truth.
"""

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar, cast

from scheduling.job_record import JobRecord
from scheduling.sealing import SealedPayload
from scheduling.table_storage import TableEndpoint, get_text, open_table, put_text

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient

INDEX_SUFFIX = "due"
# Filled with the job's fields on the way in and out; a fixed-width UTC stamp sorts as text.
_STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"
_PLAIN_FIELDS = ("transaction_id", "generation", "state", "prompt_type", "attempts")
_TIME_FIELDS = ("exec_at", "accepted_at", "updated_at", "next_attempt_at", "fired_at")
T = TypeVar("T")


class JobExists(Exception):
    """A record with this transaction id exists already (an Idempotency-Key seen before)."""


class StaleRecord(Exception):
    """The record changed (or went) since it was read: the compare-and-swap lost."""


@dataclass(frozen=True)
class StoredJob:
    """A record as read, with the ETag a conditional write must match."""

    record: JobRecord
    etag: str


@dataclass(frozen=True)
class DueEntry:
    """An index row: a job believed live, due at `exec_at`."""

    transaction_id: str
    generation: str
    exec_at: datetime
    prompt_type: str


@dataclass(frozen=True)
class DueRange:
    """Which live jobs a listing covers: due in [due_from, due_to], of one prompt type."""

    due_from: datetime | None = None
    due_to: datetime | None = None
    prompt_type: str | None = None


ContinuationToken = dict[str, str]


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_STAMP)


def _parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, _STAMP).replace(tzinfo=UTC)


def due_keys(exec_at: datetime, transaction_id: str) -> tuple[str, str]:
    """The index row's PartitionKey (the due minute) and RowKey (due time, then id)."""
    return exec_at.astimezone(UTC).strftime("%Y%m%d%H%M"), f"{stamp(exec_at)}|{transaction_id}"


class TableJobStore:
    """JobRecords in Table Storage; safe to share across the threads of one worker process."""

    def __init__(
        self,
        records: "TableClient",
        due_index: "TableClient",
        credential: "TokenCredential | None" = None,
    ) -> None:
        self._records = records
        self._due = due_index
        self._credential = credential

    @classmethod
    def open(cls, endpoint: TableEndpoint, table_name: str) -> "TableJobStore":
        """A store on `endpoint`, without network calls; tables are made on first write."""
        records, credential = open_table(endpoint, table_name)
        due_index, _ = open_table(endpoint, table_name + INDEX_SUFFIX)
        return cls(records, due_index, credential)

    @property
    def table_name(self) -> str:
        return self._records.table_name

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
        return StoredJob(_record(entity), str(entity.metadata["etag"]))

    def replace(self, stored: StoredJob, record: JobRecord) -> StoredJob:
        """Write `record` over `stored` if the row is still that version; StaleRecord if not."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        try:
            metadata = self._records.update_entity(
                _row(record),
                mode=UpdateMode.REPLACE,
                etag=stored.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise StaleRecord(record.transaction_id) from None
        return StoredJob(record, str(metadata["etag"]))

    def delete(self, stored: StoredJob) -> None:
        """Remove the record if it is still the version read; StaleRecord if it changed."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        transaction_id = stored.record.transaction_id
        try:
            self._records.delete_entity(
                transaction_id,
                transaction_id,
                etag=stored.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            # The SDK treats a missing row as deleted; the If-Match makes it a lost swap.
            raise StaleRecord(transaction_id) from None

    # -- the due index -------------------------------------------------------------------

    def index(self, record: JobRecord) -> None:
        """Make the job findable by its due time (idempotent)."""
        from azure.data.tables import UpdateMode

        entity = _due_row(record)
        _on_table(self._due, lambda: self._due.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def unindex(self, transaction_id: str, exec_at: datetime) -> None:
        """Drop the job's index row, if there is one."""
        partition, row = due_keys(exec_at, transaction_id)
        # The SDK answers a missing row (or table) as success: nothing left to drop.
        self._due.delete_entity(partition, row)

    def due_page(
        self, scope: DueRange, limit: int, continuation: ContinuationToken | None
    ) -> tuple[list[DueEntry], ContinuationToken | None]:
        """Up to `limit` index rows in due order from `continuation`, and where the next
        page starts (None at the end). One service request: a page may come back short."""
        from azure.core.exceptions import ResourceNotFoundError

        query, parameters = _due_filter(scope)
        # The SDK's token is the service's next (PartitionKey, RowKey), typed as a str.
        pages: Any = self._due.query_entities(
            query, parameters=parameters, results_per_page=limit
        ).by_page(continuation_token=cast(Any, continuation))
        try:
            page = next(pages)
            rows = list(islice(page, limit))
        except StopIteration:
            return [], None
        except ResourceNotFoundError:
            return [], None  # no table yet: nothing was ever scheduled
        entries = [
            DueEntry(
                transaction_id=str(row["transaction_id"]),
                generation=str(row["generation"]),
                exec_at=_parse_stamp(str(row["exec_at"])),
                prompt_type=str(row["prompt_type"]),
            )
            for row in rows
        ]
        token = pages.continuation_token
        return entries, dict(token) if token else None

    def close(self) -> None:
        self._records.close()
        self._due.close()
        if self._credential is not None and hasattr(self._credential, "close"):
            self._credential.close()


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


def _row(record: JobRecord) -> dict[str, Any]:
    data = record.model_dump(mode="json")
    entity: dict[str, Any] = {
        "PartitionKey": record.transaction_id,
        "RowKey": record.transaction_id,
        **{name: data[name] for name in _PLAIN_FIELDS},
        "retry": json.dumps(data["retry"], separators=(",", ":")),
        "destination": record.destination or "",
        "request_fingerprint": record.request_fingerprint or "",
    }
    for name in _TIME_FIELDS:
        moment = getattr(record, name)
        entity[name] = stamp(moment) if moment is not None else ""
    if record.last_outcome is not None:
        put_text(entity, "last_outcome", json.dumps(data["last_outcome"], separators=(",", ":")))
    put_text(entity, "sealed_payload", record.sealed_payload.model_dump_json())
    return entity


def _record(entity: Mapping[str, Any]) -> JobRecord:
    outcome = get_text(entity, "last_outcome")
    return JobRecord.model_validate(
        {
            **{name: entity[name] for name in _PLAIN_FIELDS},
            **{
                name: _parse_stamp(entity[name]) if entity.get(name) else None
                for name in _TIME_FIELDS
            },
            "retry": json.loads(entity["retry"]),
            "destination": entity.get("destination") or None,
            "request_fingerprint": entity.get("request_fingerprint") or None,
            "last_outcome": json.loads(outcome) if outcome else None,
            "sealed_payload": SealedPayload.model_validate_json(get_text(entity, "sealed_payload")),
        }
    )


def pages_of(store: TableJobStore, scope: DueRange, page_size: int) -> Iterator[list[DueEntry]]:
    """Every index page of `scope` in due order (for wipes and benchmarks)."""
    token: ContinuationToken | None = None
    while True:
        entries, token = store.due_page(scope, page_size, token)
        yield entries
        if token is None:
            return
