"""The job log in Azure Table Storage: a row per entry in its job's partition of the job table.

The entries share the partition of the job's record (PartitionKey = transaction id), so an
attempt writes its outcome and its log entries in one entity group transaction
(delivery/attempts.py). Their RowKeys start with LOG_ROW_PREFIX, apart from the record's.
"""

import contextlib
import json
from collections.abc import Mapping
from itertools import islice
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from storage.job_log.entries import (
    MAX_READ_LIMIT,
    JobLogEntry,
    JobLogPage,
    check_limit,
    decode_cursor,
    encode_cursor,
    from_storage_key,
    storage_key,
)
from storage.table_storage import TableEndpoint, get_text, open_table, put_text, utf16_bytes

# An entity holds at most 1 MiB; leave room for the keys and the other properties.
_MAX_TEXT_UTF16_BYTES = 960 * 1024
# Every entry's RowKey starts with it; the record's RowKey (its id) never does.
LOG_ROW_PREFIX = "log-"
# The first key after every "log-..." key.
_AFTER_LOG_ROWS = "log."


class TableJobLog:
    """JobLog on one table: PartitionKey = transaction id, RowKey = "log-" + entry id."""

    def __init__(
        self,
        client: TableClient,
        credential: TokenCredential | None = None,
    ) -> None:
        self._client = client
        self._credential = credential

    @classmethod
    def open(cls, endpoint: TableEndpoint, table_name: str) -> "TableJobLog":
        """A store on `endpoint` (a connection string or Entra ID), without network calls."""
        client, credential = open_table(endpoint, table_name)
        return cls(client, credential)

    @property
    def table_name(self) -> str:
        return self._client.table_name

    @property
    def table_url(self) -> str:
        return f"{self._client.url}/{self._client.table_name}"

    def append(self, entry: JobLogEntry) -> None:
        entity = log_row(entry)
        try:
            self._client.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except ResourceNotFoundError:
            # The table is made on first use, so a fresh storage account needs no setup step.
            self._create_table()
            self._client.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def read(self, transaction_id: str, limit: int, cursor: str | None = None) -> JobLogPage:
        check_limit(limit)
        query = "PartitionKey eq @job and RowKey gt @after and RowKey lt @end"
        parameters = {
            "job": storage_key(transaction_id),
            "after": LOG_ROW_PREFIX,
            "end": _AFTER_LOG_ROWS,
        }
        if cursor is not None:
            parameters["after"] = _row_key(decode_cursor(transaction_id, cursor))
        # The service returns at most 1000 rows a request (and may refuse a larger $top); the
        # pager follows continuation tokens for the one row past a 1000-entry page.
        rows = self._client.query_entities(
            query, parameters=parameters, results_per_page=min(limit + 1, MAX_READ_LIMIT)
        )
        try:
            # One row past the page says whether there is a next page.
            found = list(islice(rows, limit + 1))
        except ResourceNotFoundError:
            return JobLogPage(entries=[])  # no table yet: nothing was ever logged
        entries = [_from_entity(row) for row in found[:limit]]
        more = len(found) > limit
        return JobLogPage(
            entries=entries,
            next_cursor=encode_cursor(transaction_id, entries[-1].entry_id) if more else None,
        )

    def close(self) -> None:
        self._client.close()
        if self._credential is not None and hasattr(self._credential, "close"):
            self._credential.close()

    def _create_table(self) -> None:
        # Another worker or thread may have made it meanwhile.
        with contextlib.suppress(ResourceExistsError):
            self._client.create_table()


def log_row(entry: JobLogEntry) -> dict[str, Any]:
    """The entity of one entry; ValueError when it is too large for Table Storage."""
    data = entry.model_dump(mode="json")
    fields_json = json.dumps(data["fields"], ensure_ascii=False, separators=(",", ":"))
    message = entry.message
    if utf16_bytes(message) + utf16_bytes(fields_json) > _MAX_TEXT_UTF16_BYTES:
        raise ValueError(
            f"job log entry {entry.entry_id!r} is too large for Table Storage "
            f"(message and fields must stay under {_MAX_TEXT_UTF16_BYTES // 1024} KiB)"
        )
    entity: dict[str, Any] = {
        "PartitionKey": storage_key(entry.transaction_id),
        "RowKey": _row_key(entry.entry_id),
        "logged_at": data["timestamp"],
        "kind": entry.kind,
        "level": entry.level,
    }
    put_text(entity, "message", message)
    put_text(entity, "fields", fields_json)
    return entity


def _row_key(entry_id: str) -> str:
    return LOG_ROW_PREFIX + storage_key(entry_id)


def _from_entity(entity: Mapping[str, Any]) -> JobLogEntry:
    return JobLogEntry.model_validate(
        {
            "transaction_id": from_storage_key(entity["PartitionKey"]),
            "entry_id": from_storage_key(entity["RowKey"].removeprefix(LOG_ROW_PREFIX)),
            "timestamp": entity["logged_at"],
            "kind": entity["kind"],
            "level": entity["level"],
            "message": get_text(entity, "message"),
            "fields": json.loads(get_text(entity, "fields") or "{}"),
        }
    )
