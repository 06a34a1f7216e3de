"""Job records that cannot be read, made the ways they happen: a property corrupted, a long
text cut short, a payload sealed under a key the app no longer holds."""

import base64
import json
from collections.abc import Callable
from typing import Any

from azure.data.tables import TableClient, UpdateMode

from storage.sealing import LocalKeyWrapper, Sealer
from storage.table_storage import expand_development_storage
from tests.support.scheduler import Scheduler

# A key that was removed from SEALING_KEYS too early (made for these tests only).
REMOVED_KEY = "removed1:" + base64.b64encode(bytes(range(100, 132))).decode()


def records_table(scheduler: Scheduler) -> TableClient:
    connection = expand_development_storage(scheduler.settings.azure_web_jobs_storage)
    return TableClient.from_connection_string(connection, table_name=scheduler.settings.job_table)


def _rewrite(
    scheduler: Scheduler, transaction_id: str, change: Callable[[dict[str, Any]], None]
) -> None:
    with records_table(scheduler) as table:
        row = dict(table.get_entity(transaction_id, transaction_id))
        change(row)
        table.upsert_entity(row, mode=UpdateMode.REPLACE)


def corrupt(scheduler: Scheduler, transaction_id: str) -> None:
    """A JSON property that no longer parses (a bit flip, a hand edit gone wrong)."""
    _rewrite(scheduler, transaction_id, lambda row: row.update(retry='{"max_attempts": 3,'))


def truncate(scheduler: Scheduler, transaction_id: str) -> None:
    """The sealed payload cut in the middle (a write that stopped half-way)."""

    def cut(row: dict[str, Any]) -> None:
        row["sealed_payload"] = row["sealed_payload"][: len(row["sealed_payload"]) // 2]

    _rewrite(scheduler, transaction_id, cut)


def seal_under_removed_key(scheduler: Scheduler, transaction_id: str) -> None:
    """The payload sealed with a key SEALING_KEYS no longer holds (removed too early)."""
    stored = scheduler.job_store.get(transaction_id)
    assert stored is not None
    record = stored.record
    sealer = Sealer(LocalKeyWrapper.from_setting(REMOVED_KEY))
    payload = json.dumps({"message": "sealed under a removed key"}).encode()
    sealed = sealer.seal(payload, record.sealing_context())
    scheduler.job_store.replace(stored, record.model_copy(update={"sealed_payload": sealed}))


POISONS: dict[str, Callable[[Scheduler, str], None]] = {
    "corrupted": corrupt,
    "truncated": truncate,
    "removed-key": seal_under_removed_key,
}
