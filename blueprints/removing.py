"""Deleting one job and wiping them all: each a compare-and-swap on the job's record.

A delete of a pending or retrying job writes `cancelled` over the version it read; an
attempt claims the job by writing `firing` the same way. Whichever writes first wins, so an
acknowledged delete never fires, and a running attempt is never cut off without an outcome
(the delete answers 409 instead).
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import azure.durable_functions as df
import azure.functions as func

from api.problems import ProblemError, not_found, problem
from api.queries import CancelQuery
from api.responses import CancelOutcome, DeletedJob, WipeOutcome
from blueprints import dependencies
from blueprints.http_io import json_response
from blueprints.instances import backend_unavailable, bounded, checked_id, purge, stop_quietly
from blueprints.job_logs import record_lifecycle, record_removal
from blueprints.jobs import IndexRow
from blueprints.unreadable import read_job
from scheduling.job_record import LIVE_STATES, JobRecord, cancel, instance_id
from scheduling.metrics import job_attributes, job_metrics
from storage.index_upkeep import forget_failure_quietly, unindex_labels_quietly, unindex_quietly
from storage.job_log.lifecycle import cancelled_entry, lifecycle_entry
from storage.job_rows import UnreadableRow
from storage.job_store import ContinuationToken, DueRange, StaleRecord, TableJobStore
from storage.paging import encode_cursor

# Each lost swap means another writer (an attempt's claim) changed the record meanwhile.
MAX_SWAPS = 5
# One wipe request does at most this much; `complete: false` says to send it again.
WIPE_PAGE_SIZE = 100
WIPE_MAX_JOBS = 2000
WIPE_MAX_SECONDS = 20.0
WIPE_STOP_SECONDS = 10.0
# A filtered delete looks at most at this many index rows per request.
CANCEL_MAX_JOBS = 1000
# What a filtered delete reads from its query (CancelQuery's names), and the function key
# (`code`), which a caller may send in the query.
CANCEL_PARAMETERS = frozenset(
    {field.alias or name for name, field in CancelQuery.model_fields.items()} | {"code"}
)
log = logging.getLogger(__name__)


async def delete_job(
    client: df.DurableOrchestrationClient, request: func.HttpRequest, transaction_id: str
) -> func.HttpResponse:
    checked_id(transaction_id)
    deps = dependencies.current()
    store = deps.job_store(deps.settings())
    try:
        for _ in range(MAX_SWAPS):
            try:
                return await _delete_once(client, store, transaction_id)
            except StaleRecord:
                continue  # an attempt claimed it (or finished) meanwhile: decide again
    except ProblemError:
        raise
    except Exception:
        log.exception("deleting %s failed", transaction_id)
        raise backend_unavailable("accept the delete") from None
    raise backend_unavailable("settle the delete: the job kept changing; try again")


async def _delete_once(
    client: df.DurableOrchestrationClient, store: TableJobStore, transaction_id: str
) -> func.HttpResponse:
    stored = await asyncio.to_thread(read_job, store, transaction_id)
    if stored is None:
        raise not_found(f"no job with transaction id {transaction_id}")
    if isinstance(stored, UnreadableRow):
        return await _delete_unreadable(client, store, stored)
    record = stored.record
    now = dependencies.current().clock()
    verdict, cancelled = cancel(record, now)
    if verdict == "firing":
        raise problem(
            409,
            "job-firing",
            "The job is firing",
            "an attempt of this job is running now: delete it again once the attempt has "
            "its outcome (a job waiting to retry can be deleted)",
        )
    if verdict == "already-cancelled":
        raise not_found(f"no job with transaction id {transaction_id}: it was deleted")
    if cancelled is not None:
        await asyncio.to_thread(store.replace, stored, cancelled)
        _count_cancelled(cancelled)
        await asyncio.to_thread(unindex_quietly, store, cancelled)
        await asyncio.to_thread(unindex_labels_quietly, store, cancelled)
        await stop_quietly(client, cancelled.instance_id)
        entry = cancelled_entry(cancelled)
        if entry is not None:
            await record_lifecycle(entry)
    else:
        # The record is the only other trace of the job: its log says where it went first.
        await record_removal(
            record,
            lifecycle_entry(transaction_id, "deleted", now, "record deleted through the API"),
        )
        await asyncio.to_thread(store.delete, stored)
        # A failed job leaves the failed list with its record.
        await asyncio.to_thread(forget_failure_quietly, store, transaction_id, record.failed_at)
        await purge(client, record.instance_id)
    deleted = DeletedJob(transaction_id=transaction_id, deleted=True, state_before=record.state)
    return json_response(deleted.model_dump(mode="json"))


async def _delete_unreadable(
    client: df.DurableOrchestrationClient, store: TableJobStore, row: UnreadableRow
) -> func.HttpResponse:
    """End a job whose record cannot be read: its row is removed (it cannot be written over
    with `cancelled`), never opened. Its log says so first; its index rows and orchestration
    go as far as what could be read of it says where they are."""
    now = dependencies.current().clock()
    await record_lifecycle(
        lifecycle_entry(
            row.transaction_id,
            "deleted",
            now,
            f"record deleted through the API; it could not be read: {row.why}",
        ),
        required=True,
    )
    await asyncio.to_thread(store.remove_unreadable, row)  # StaleRecord: decide again
    if row.exec_at is not None:
        await asyncio.to_thread(_unindex_quietly, store, row)
    await asyncio.to_thread(forget_failure_quietly, store, row.transaction_id, row.failed_at)
    if row.generation is not None:
        ended = row.state is not None and row.state not in LIVE_STATES
        instance = instance_id(row.transaction_id, row.generation)
        await (purge(client, instance) if ended else stop_quietly(client, instance))
    deleted = DeletedJob(transaction_id=row.transaction_id, deleted=True, state_before=row.state)
    return json_response(deleted.model_dump(mode="json"))


def _unindex_quietly(store: TableJobStore, row: UnreadableRow) -> None:
    try:
        if row.exec_at is not None:
            store.unindex(row.transaction_id, row.exec_at)
    except Exception:
        log.warning("could not drop an index row of %s", row.transaction_id, exc_info=True)


WipeResult = JobRecord | Literal["firing", "skipped", "unreadable"]
PageReader = Callable[
    [ContinuationToken | None], tuple[Sequence[IndexRow], ContinuationToken | None]
]


@dataclass
class Sweep:
    """What a bounded pass over an index did, and where the next one starts."""

    cancelled: list[JobRecord] = field(default_factory=list)
    firing: list[str] = field(default_factory=list)
    unreadable: int = 0
    complete: bool = False
    token: ContinuationToken | None = None


async def wipe_jobs(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """Cancel live jobs page by page, each by the same swap as a delete; safe to repeat.

    One request does a bounded amount of work: `complete: false` says there may be more.
    """
    store = dependencies.current().job_store(dependencies.current().settings())
    sweep = await _sweep(
        client,
        lambda token: store.due_page(DueRange(), WIPE_PAGE_SIZE, token),
        lambda transaction_id: _cancel_one(store, transaction_id, "wipe", DueRange()),
        None,
    )
    outcome = WipeOutcome(
        cancelled=len(sweep.cancelled),
        firing=len(sweep.firing),
        unreadable=sweep.unreadable,
        complete=sweep.complete,
    )
    return json_response(outcome.model_dump(mode="json"))


async def cancel_jobs(
    client: df.DurableOrchestrationClient, request: func.HttpRequest
) -> func.HttpResponse:
    """Cancel the live jobs a filter names (labels, prompt type, due time range), each by
    the same swap as a delete, a bounded number per request: `complete: false` and a cursor
    to go on. A job whose attempt is running is reported, not cancelled."""
    from blueprints.jobs import cursor_scope, cursor_token, invalid_query, job_range

    scope = job_range(request)
    if not scope.filtered:
        raise invalid_query(
            "give a filter (label, prompt_type, from, to): to cancel every live job, "
            "POST /api/wipe with the admin key"
        )
    if set(request.params) - CANCEL_PARAMETERS:
        # Ignored, a parameter the caller thinks narrows the delete (`state`, `limit`, a
        # misspelt filter) would leave it wider than asked: cancelling more is not undone.
        raise invalid_query(
            "a filtered delete takes only label, prompt_type, from, to and cursor; "
            "leave out any other query parameter (it would not narrow the delete)"
        )
    scope_key = "cancel" + cursor_scope(scope, None)
    token = cursor_token(request, scope_key)
    store = dependencies.current().job_store(dependencies.current().settings())

    def page(
        token: ContinuationToken | None,
    ) -> tuple[Sequence[IndexRow], ContinuationToken | None]:
        if scope.labels:
            return store.label_page(scope.labels[0], scope.prompt_type, WIPE_PAGE_SIZE, token)
        return store.due_page(scope, WIPE_PAGE_SIZE, token)

    sweep = await _sweep(
        client,
        page,
        lambda transaction_id: _cancel_one(store, transaction_id, "filter", scope),
        token,
        max_jobs=CANCEL_MAX_JOBS,
    )
    if not sweep.complete and sweep.token is None:
        # It failed on the first page of a listing that had no cursor: there is none to go
        # on from. The same request starts again (jobs it cancelled are skipped then).
        raise backend_unavailable("decide every job of the filter's first page; send it again")
    outcome = CancelOutcome(
        cancelled=len(sweep.cancelled),
        firing=sweep.firing,
        unreadable=sweep.unreadable,
        complete=sweep.complete,
        next_cursor=encode_cursor(sweep.token, scope_key) if sweep.token else None,
    )
    return json_response(outcome.model_dump(mode="json"))


async def _sweep(
    client: df.DurableOrchestrationClient,
    read_page: PageReader,
    cancel_one: Callable[[str], WipeResult],
    token: ContinuationToken | None,
    *,
    max_jobs: int = WIPE_MAX_JOBS,
) -> Sweep:
    """Cancel the jobs of an index's pages from `token` until the end, `max_jobs` rows or
    WIPE_MAX_SECONDS; then stop their orchestrations within what is left of the budget."""
    started = time.monotonic()
    sweep = Sweep(token=token)
    seen = 0

    async def decided(transaction_id: str) -> WipeResult | Exception:
        try:
            return await asyncio.to_thread(cancel_one, transaction_id)
        except Exception as error:
            return error

    try:
        while True:
            entries, following = await asyncio.to_thread(read_page, sweep.token)
            results = await bounded(decided(entry.transaction_id) for entry in entries)
            for entry, result in zip(entries, results, strict=True):
                if isinstance(result, JobRecord):
                    sweep.cancelled.append(result)
                elif result == "firing":
                    sweep.firing.append(entry.transaction_id)
                elif result == "unreadable":
                    sweep.unreadable += 1
            if failed := next((r for r in results if isinstance(r, Exception)), None):
                # The cursor stays at this page: the next call decides its jobs again (one
                # cancelled already is skipped then), none of them is passed over.
                raise failed
            sweep.token = following
            seen += len(entries)
            if sweep.token is None:
                sweep.complete = True
                break
            if seen >= max_jobs or time.monotonic() - started > WIPE_MAX_SECONDS:
                break
    except Exception:
        log.exception("cancelling failed after %d cancellations", len(sweep.cancelled))
    # Stopping the orchestrations is a courtesy (each ends by itself at its time, finding its
    # job cancelled), so it gets only what is left of the budget; the log entries of the
    # cancellations are made from the records when the log is read.
    left = max(WIPE_MAX_SECONDS + WIPE_STOP_SECONDS - (time.monotonic() - started), 0.1)
    try:
        await asyncio.wait_for(
            bounded(stop_quietly(client, record.instance_id) for record in sweep.cancelled), left
        )
    except TimeoutError:
        log.info("a bulk cancel left some orchestrations to end by themselves")
    return sweep


def _cancel_one(
    store: TableJobStore, transaction_id: str, by: Literal["wipe", "filter"], scope: DueRange
) -> WipeResult:
    """Cancel the job if it is live and `scope` covers it: its cancelled record, "firing",
    "skipped" (ended, or not covered), or "unreadable" (left as it is: its record cannot be
    written over; DELETE removes it)."""
    now = dependencies.current().clock()
    for _ in range(MAX_SWAPS):
        stored = read_job(store, transaction_id)
        if isinstance(stored, UnreadableRow):
            return "unreadable"
        if stored is None or not scope.covers(stored.record):
            return "skipped"
        verdict, cancelled = cancel(stored.record, now, by=by)
        if verdict == "firing":
            return "firing"
        if cancelled is None:
            return "skipped"
        try:
            store.replace(stored, cancelled)
        except StaleRecord:
            continue
        _count_cancelled(cancelled)
        unindex_quietly(store, cancelled)
        unindex_labels_quietly(store, cancelled)
        return cancelled
    return "skipped"


def _count_cancelled(record: JobRecord) -> None:
    job_metrics().cancelled.add(
        1,
        {
            **job_attributes(record.prompt_type, record.destination),
            "by": record.cancelled_by or "delete",
        },
    )
