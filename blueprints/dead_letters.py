"""The dead letters: failed jobs listed by failure time, cleared, and dropped when too old.

A failed job is found through the failed index (a row per failed job, keyed by the failure
time), never by a scan of all jobs. Its row is written before the record moves to `failed`;
a reader lists a row only when its record failed at that time, and drops (by ETag) a row
whose record was deleted, replayed, or failed again at another time.

Removing a failed job (a clear, or the retention) deletes its record by compare-and-swap
(a replay that swapped first wins: the job is no longer failed, and stays), after writing
the log entry that says where it went (a `kept` entry follows it when the replay won); its
orchestration history is purged.
"""

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import azure.durable_functions as df
import azure.functions as func

from api.job_views import failed_view, unreadable_view
from api.problems import ProblemError
from api.responses import ClearOutcome
from blueprints import dependencies
from blueprints.http_io import json_response, query_int
from blueprints.instances import backend_unavailable, bounded, purge
from blueprints.job_logs import record_lifecycle, record_removal
from blueprints.jobs import cursor_scope, cursor_token, query_time
from blueprints.unreadable import key_check, read_job, shown
from scheduling.job_record import JobRecord, instance_id
from storage.index_upkeep import failed_row_verdict, unindex_failure_quietly
from storage.job_log import LogKind
from storage.job_log.lifecycle import lifecycle_entry
from storage.job_rows import UnreadableRow
from storage.job_store import DueRange, FailedEntry, StaleRecord, StoredJob, TableJobStore
from storage.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    encode_cursor,
)

# One clear (or sweep) request does at most this much; `complete: false` says to call again.
CLEAR_PAGE_SIZE = 100
CLEAR_MAX_JOBS = 2000
CLEAR_MAX_SECONDS = 20.0
# Past every failure time: every row in a clear's or sweep's scope is removed.
_EVERY_FAILURE = datetime.max.replace(tzinfo=UTC)
RemovalOutcome = Literal["removed", "kept", "skipped"]
log = logging.getLogger(__name__)


async def list_failed(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """Failed jobs in failure-time order, each with its attempts; a page may come back short
    (rows of jobs replayed or deleted meanwhile, or past the retention, are left out)."""
    deps = dependencies.current()
    settings = deps.settings()
    store = deps.job_store(settings)
    limit = query_int(request, "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    scope = DueRange(
        due_from=query_time(request, "from"),
        due_to=query_time(request, "to"),
        prompt_type=request.params.get("prompt_type") or None,
    )
    scope_key = "failed" + cursor_scope(scope, None)
    token = cursor_token(request, scope_key)
    try:
        entries, token = await asyncio.to_thread(store.failure_page, scope, limit, token)
        stored = await bounded(
            asyncio.to_thread(read_job, store, e.transaction_id) for e in entries
        )
    except Exception:
        log.exception("reading the failed list failed")
        raise backend_unavailable("answer the failed list") from None
    kept_since = retention_start(deps.clock(), settings.failed_retention_days)
    holds = key_check(deps, settings)
    jobs = []
    expired: list[tuple[FailedEntry, StoredJob]] = []
    for entry, found in zip(entries, stored, strict=True):
        if isinstance(found, UnreadableRow):
            if failed_unreadable(entry, found):
                jobs.append(unreadable_view(found))
            continue
        verdict = failed_row_verdict(entry, found.record if found else None, kept_since)
        if verdict == "list" and found is not None:
            seen = shown(found.record, holds)
            jobs.append(failed_view(seen) if isinstance(seen, JobRecord) else unreadable_view(seen))
        elif verdict == "expire" and found is not None:
            expired.append((entry, found))
        elif verdict == "drop":
            await asyncio.to_thread(unindex_failure_quietly, store, entry)
    # Too old to be listed: removed on the way (best effort; the clear and the sweep too).
    await bounded(_remove(client, store, entry, found, "expired") for entry, found in expired)
    # A short page, or an empty one, can still have a next: follow `next_cursor`.
    next_cursor = encode_cursor(token, scope_key) if token else None
    # A FailedPage (api/responses.py), its views not validated again on every request:
    # a view that drifts from its model fails the contract test, not a caller's listing.
    return json_response({"jobs": jobs, "next_cursor": next_cursor})


def failed_unreadable(entry: FailedEntry, row: UnreadableRow) -> bool:
    """Whether a failed-index row stands for the unreadable job it points to: unless what
    could be read says the job is of another generation or no longer failed."""
    if row.generation is not None and row.generation != entry.generation:
        return False
    return row.state in (None, "failed")


def retention_start(now: datetime, days: int) -> datetime:
    """The oldest failure time still kept."""
    return now - timedelta(days=days)


async def clear_failed(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """Remove every failed job, page by page; `complete: false` says to call again."""
    result = await remove_failed(client, DueRange(), "cleared")
    return json_response(ClearOutcome.model_validate(result.body()).model_dump(mode="json"))


async def sweep_failed(client: df.DurableOrchestrationClient) -> "Removal":
    """Remove the failed jobs past FAILED_RETENTION_DAYS (a timer's bounded pass)."""
    deps = dependencies.current()
    kept_since = retention_start(deps.clock(), deps.settings().failed_retention_days)
    # `to` is inclusive; a failure at exactly the cut-off is one the list still shows.
    scope = DueRange(due_to=kept_since - timedelta(microseconds=1))
    return await remove_failed(client, scope, "expired")


@dataclass
class Removal:
    removed: int = 0
    # Rows of jobs that could not be removed now (their log entry was not written).
    kept: int = 0
    complete: bool = False

    def body(self) -> dict[str, object]:
        return {"removed": self.removed, "complete": self.complete and self.kept == 0}


async def remove_failed(
    client: df.DurableOrchestrationClient, scope: DueRange, kind: LogKind
) -> Removal:
    """Remove the failed jobs whose failure time is in `scope`, within a bounded budget."""
    deps = dependencies.current()
    store = deps.job_store(deps.settings())
    started = time.monotonic()
    result = Removal()
    seen = 0
    token = None
    try:
        while True:
            entries, token = await asyncio.to_thread(
                store.failure_page, scope, CLEAR_PAGE_SIZE, token
            )
            outcomes = await bounded(_remove_row(client, store, entry, kind) for entry in entries)
            result.removed += sum(1 for outcome in outcomes if outcome == "removed")
            result.kept += sum(1 for outcome in outcomes if outcome == "kept")
            seen += len(entries)
            if token is None:
                result.complete = True
                break
            if seen >= CLEAR_MAX_JOBS or time.monotonic() - started > CLEAR_MAX_SECONDS:
                break
    except Exception:
        log.exception("removing failed jobs stopped after %d", result.removed)
    return result


async def _remove_row(
    client: df.DurableOrchestrationClient, store: TableJobStore, entry: FailedEntry, kind: LogKind
) -> RemovalOutcome:
    """Remove the failed job a row points to: "removed", "kept" (try again), or "skipped"."""
    found = await asyncio.to_thread(read_job, store, entry.transaction_id)
    if isinstance(found, UnreadableRow):
        if found.state != "failed" or not failed_unreadable(entry, found):
            return "skipped"  # not known to have failed: DELETE it by its id
        return await _remove_unreadable(client, store, entry, found, kind)
    # Every row in scope goes: the retention's cut-off is the scope's, not the verdict's.
    verdict = failed_row_verdict(entry, found.record if found else None, _EVERY_FAILURE)
    if verdict == "drop":
        await asyncio.to_thread(unindex_failure_quietly, store, entry)
        return "skipped"
    if verdict == "skip" or found is None:
        return "skipped"  # an attempt's failure on its way: it is listed once recorded
    return await _remove(client, store, entry, found, kind)


async def _remove_unreadable(
    client: df.DurableOrchestrationClient,
    store: TableJobStore,
    entry: FailedEntry,
    row: UnreadableRow,
    kind: LogKind,
) -> RemovalOutcome:
    """Remove a failed job whose record cannot be read (never opened), as _remove does."""
    try:
        message = "removed (its record could not be read)"
        await record_lifecycle(
            lifecycle_entry(row.transaction_id, kind, dependencies.current().clock(), message),
            required=True,
        )
        await asyncio.to_thread(store.remove_unreadable, row)
    except (ProblemError, StaleRecord):
        return "kept"
    except Exception:
        log.warning("could not remove the failed job %s", row.transaction_id, exc_info=True)
        return "kept"
    await asyncio.to_thread(unindex_failure_quietly, store, entry)
    if row.generation is not None:
        await purge(client, instance_id(row.transaction_id, row.generation))
    return "removed"


async def _remove(
    client: df.DurableOrchestrationClient,
    store: TableJobStore,
    entry: FailedEntry,
    found: StoredJob,
    kind: LogKind,
) -> RemovalOutcome:
    """Delete a failed job's record (if still the version read), its row and its history."""
    record = found.record
    now = dependencies.current().clock()
    message = {
        "cleared": "removed by a clear of the failed list",
        "expired": "removed: failed longer ago than FAILED_RETENTION_DAYS",
    }.get(kind, "removed")
    try:
        # The record is the only other trace of the job: its log says where it went first.
        await record_removal(record, lifecycle_entry(record.transaction_id, kind, now, message))
    except ProblemError:
        return "kept"
    try:
        await asyncio.to_thread(store.delete, found)
    except StaleRecord:
        # Replayed meanwhile: not ours to remove any more. The log already says it went (it
        # had to, first): the next entry says it stayed.
        kept = lifecycle_entry(
            record.transaction_id,
            "kept",
            dependencies.current().clock(),
            "kept: replayed while it was being removed",
        )
        await record_lifecycle(kept)
        return "skipped"
    except Exception:
        log.warning("could not remove the failed job %s", record.transaction_id, exc_info=True)
        return "kept"
    await asyncio.to_thread(unindex_failure_quietly, store, entry)
    await purge(client, record.instance_id)
    return "removed"
