"""A batch's writes in flight together, awaited on the request's event loop.

The records of a batch are inserted and its index rows written by the Tables SDK's async
client (its aiohttp transport), many at once on the loop, instead of one thread per write
with the sync client: the same rows and requests as TableJobStore's `create`, `index_many`
and `index_labels`, and the same answers, for less CPU per job (no thread hop per write, a
lighter transport; docs/bulk.md).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from scheduling.job_record import JobRecord
from storage.job_rows import due_row, record_row
from storage.job_store import (
    INDEX_SUFFIX,
    LABEL_SUFFIX,
    JobExists,
    LabelEntry,
    StoredJob,
    TableJobStore,
    label_entries,
    label_rows,
    transaction_chunks,
)
from storage.table_storage import open_async_tables

if TYPE_CHECKING:
    from azure.data.tables.aio import TableClient as AsyncTableClient

T = TypeVar("T")
log = logging.getLogger(__name__)
# Transactions of one batch's index rows in flight at once (a batch of 1,000 jobs due in one
# minute, with ten labels each, has 110 of up to 100 rows).
TRANSACTIONS_AT_ONCE = 16


class BatchWrites:
    """The writes of one batch, on `store`'s tables; open for the batch (`async with`)."""

    def __init__(self, store: TableJobStore) -> None:
        if store.endpoint is None:
            raise ValueError("the store was made without its endpoint")
        name = store.table_name
        tables, self._credential = open_async_tables(
            store.endpoint, [name, name + INDEX_SUFFIX, name + LABEL_SUFFIX]
        )
        self._records, self._due, self._labels = tables
        # One bound for all of the batch's transactions (due rows and label rows together).
        self._gate = asyncio.Semaphore(TRANSACTIONS_AT_ONCE)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # A close that fails must not turn a batch whose jobs were stored into an error.
        for closable in (self._records, self._due, self._labels, self._credential):
            if closable is not None:
                try:
                    await closable.close()
                except Exception:
                    log.warning("closing a batch's table client failed", exc_info=True)

    async def create(self, record: JobRecord) -> StoredJob:
        """Insert the record if no record has its id; JobExists otherwise."""
        from azure.core.exceptions import ResourceExistsError

        try:
            metadata = await _on_table(
                self._records, lambda: self._records.create_entity(record_row(record))
            )
        except ResourceExistsError:
            raise JobExists(record.transaction_id) from None
        return StoredJob(record, str(metadata["etag"]))

    async def index_many(self, records: Sequence[JobRecord]) -> dict[str, str]:
        """The jobs' due rows, as TableJobStore.index_many writes them."""
        rows = [due_row(record) for record in records]
        etags = await _upsert_by_partition(self._due, rows, self._gate)
        return {record.transaction_id: etag for record, etag in zip(records, etags, strict=True)}

    async def index_labels(self, records: Sequence[JobRecord]) -> list[LabelEntry]:
        """The jobs' label rows, as TableJobStore.index_labels writes them."""
        rows = label_rows(records)
        written = await _upsert_by_partition(self._labels, [row for _, row in rows], self._gate)
        return label_entries(rows, written)


async def _upsert_by_partition(
    table: "AsyncTableClient", rows: list[dict[str, Any]], gate: asyncio.Semaphore
) -> list[str]:
    """The rows in entity group transactions sent together (as many at once as `gate`
    lets); their ETags in `rows`' order. If one fails, the others are cancelled."""
    from azure.data.tables import UpdateMode

    async def write(chunk: list[int]) -> list[str]:
        if len(chunk) == 1:  # a point write costs the service less than a batch of one
            row = rows[chunk[0]]
            written = await _on_table(
                table, lambda: table.upsert_entity(row, mode=UpdateMode.REPLACE)
            )
            return [str(written.get("etag") or "")]
        operations = [("upsert", rows[p], {"mode": UpdateMode.REPLACE}) for p in chunk]
        # The service answers a transaction's operations in their order.
        answers = await _on_table(table, lambda: table.submit_transaction(operations))
        return [str(answer.get("etag") or "") for answer in answers]

    async def gated(chunk: list[int]) -> list[str]:
        async with gate:
            return await write(chunk)

    chunks = transaction_chunks(rows)
    async with asyncio.TaskGroup() as group:
        writes = [group.create_task(gated(chunk)) for chunk in chunks]
    etags = [""] * len(rows)
    for chunk, done in zip(chunks, writes, strict=True):
        for position, etag in zip(chunk, done.result(), strict=True):
            etags[position] = etag
    return etags


async def _on_table(client: "AsyncTableClient", write: Callable[[], Awaitable[T]]) -> T:
    """Run a write, making the table first if it does not exist yet (a fresh account)."""
    from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
    from azure.data.tables import TableTransactionError

    try:
        return await write()
    except (ResourceNotFoundError, TableTransactionError) as error:
        if isinstance(error, TableTransactionError) and error.status_code != 404:
            raise
        # Another worker or request may have made it meanwhile.
        with contextlib.suppress(ResourceExistsError):
            await client.create_table()
        return await write()
