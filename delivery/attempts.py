"""One attempt of a job, as the activity runs it: claim the record, unseal, fire, record."""

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from delivery.firing import attempt_entries, fire
from delivery.prompts import FiringContext
from scheduling.attempt_history import lateness_ms
from scheduling.job_record import (
    LIVE_STATES,
    AttemptOrder,
    AttemptReport,
    JobRecord,
    claim,
    finish_attempt,
    report_of,
)
from scheduling.log_context import about_job
from scheduling.metrics import job_attributes, job_metrics
from scheduling.retry import next_attempt_delay
from scheduling.sealing import Sealer, SealingError, SealingUnavailable
from storage.index_upkeep import (
    drop_label_rows_quietly,
    forget_failure_quietly,
    label_rows_quietly,
    unindex_quietly,
)
from storage.job_log import JobLog, JobLogEntry
from storage.job_log.lifecycle import lifecycle_entry
from storage.job_log.resilient import append_with_retry
from storage.job_log.table_store import TableJobLog, log_row
from storage.job_store import StaleRecord, StoredJob, TableJobStore, UnreadableRecord

# Each lost swap means another writer changed the record meanwhile; a few rounds settle it.
MAX_SWAPS = 5
# Waits between tries to record an outcome (the store client retries each try twice more).
OUTCOME_WRITE_WAITS = (1.0, 2.0, 4.0)
log = logging.getLogger(__name__)


def run_attempt(
    order: AttemptOrder,
    store: TableJobStore,
    sealer: Sealer,
    clock: Callable[[], datetime],
    context_for: Callable[[JobRecord], FiringContext],
    sleep: Callable[[float], None] = time.sleep,
) -> AttemptReport:
    """Run attempt `order.attempt` if the job is still due for it; what became of the job.

    The claim is a compare-and-swap on the record: a delete that wrote `cancelled` first
    wins, and this attempt sends nothing.
    """
    with about_job(order.transaction_id):
        return _run_attempt(order, store, sealer, clock, context_for, sleep)


def _run_attempt(
    order: AttemptOrder,
    store: TableJobStore,
    sealer: Sealer,
    clock: Callable[[], datetime],
    context_for: Callable[[JobRecord], FiringContext],
    sleep: Callable[[float], None],
) -> AttemptReport:
    claimed = _claim(order, store, clock)
    if not isinstance(claimed, StoredJob):
        return claimed
    record = claimed.record
    context = context_for(record)
    if order.flow_unanswered:
        log.warning(
            "attempt %d of %s goes without a flow slot: its key's entity did not answer",
            order.attempt,
            record.transaction_id,
        )
    along: list[dict[str, Any]] = []
    try:
        payload = json.loads(sealer.unseal(record.sealed_payload, record.sealing_context()))
    except SealingUnavailable:
        raise  # the vault is down or busy: nothing was sent, the attempt runs again later
    except SealingError:
        log.error("the payload of %s could not be unsealed", record.transaction_id)
        outcome: dict[str, Any] = {
            "ok": False,
            "error": "the payload could not be unsealed: its key is not available",
        }
    else:
        outcome = _fire_measured(order, record, payload, clock, context)
        fired_at = record.fired_at or clock()
        entries = attempt_entries(record.prompt_type, fired_at, outcome, context)
        along, log_errors = _log_entries(store, context.job_log, entries)
        if log_errors:
            outcome = {**outcome, "log_errors": log_errors}
    retry_after = next_attempt_delay(record.retry, record.transaction_id, order.attempt, outcome)
    finished = finish_attempt(record, outcome, retry_after, clock())
    moved = finished.state in LIVE_STATES and finished.exec_at != record.exec_at
    if moved:
        # The next run's row before the record names it: the index lists every live job.
        _keep_indexed(store, finished)
    label_rows = label_rows_quietly(store, finished)
    try:
        _record_outcome(store, claimed, finished, along, sleep)
    except StaleRecord:
        # Only this attempt writes a firing record (deletes refuse it), so another run of
        # this very attempt recorded it first: its word stands.
        current = store.get(order.transaction_id)
        if current is None:
            return AttemptReport(state="gone", attempt=0)
        _keep_indexed(store, current.record)
        return report_of(current.record)
    _count_outcome(record, outcome, retry_after)
    if finished.state not in LIVE_STATES or moved:
        # Without reading its ETag first: no writer ever indexes a run that has come due
        # again (docs/job-store.md), so the row at this run's time is this run's.
        unindex_quietly(store, record)
    drop_label_rows_quietly(store, label_rows)
    if finished.skipped_runs > record.skipped_runs:
        _log_skipped(context, finished.skipped_runs - record.skipped_runs)
    return report_of(finished)


def _log_entries(
    store: TableJobStore, job_log: JobLog, entries: list[JobLogEntry]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The attempt's log entries as rows to write in the outcome's transaction, when the log
    shares the record's table; else appended to the log now, before the outcome is recorded
    (an attempt that dies between the two runs again and writes the same entries). The
    second item: why an entry was not stored."""
    if isinstance(job_log, TableJobLog) and job_log.table_url == store.table_url:
        try:
            return [log_row(entry) for entry in entries], []
        except ValueError as error:
            return [], [f"log entries not stored: {error}"]
    errors = []
    for entry in entries:
        if (failed := append_with_retry(job_log, entry)) is not None:
            errors.append(f"{entry.kind} entry not stored: {failed}")
    return [], errors


def _fire_measured(
    order: AttemptOrder,
    record: JobRecord,
    payload: Any,
    clock: Callable[[], datetime],
    context: FiringContext,
) -> dict[str, Any]:
    """Fire, counting the attempt, how late it went out and how long it took."""
    instruments = job_metrics()
    attributes = job_attributes(record.prompt_type, record.destination)
    instruments.fired.add(1, attributes)
    instruments.lateness.record(_lateness_ms(order, record, clock), attributes)
    started = time.perf_counter()
    try:
        return fire(record.prompt_type, payload, context)
    finally:
        instruments.duration.record((time.perf_counter() - started) * 1000, attributes)


def _lateness_ms(order: AttemptOrder, record: JobRecord, clock: Callable[[], datetime]) -> int:
    """The claimed attempt's lateness as its history entry has it (the same figure the status
    shows); from the clock for a record claimed before the history existed."""
    history = record.attempt_history
    if history and history[-1].attempt == order.attempt:
        return history[-1].lateness_ms
    return lateness_ms(order.due_at, clock())


def _count_outcome(record: JobRecord, outcome: dict[str, Any], retry_after: object) -> None:
    """A run's end, once recorded: succeeded, or failed with no retry left."""
    attributes = job_attributes(record.prompt_type, record.destination)
    if outcome.get("ok"):
        job_metrics().succeeded.add(1, attributes)
    elif retry_after is None:
        job_metrics().failed.add(1, attributes)


def _record_outcome(
    store: TableJobStore,
    claimed: StoredJob,
    finished: JobRecord,
    along: list[dict[str, Any]],
    sleep: Callable[[float], None],
) -> None:
    """Write the outcome (and `along`, its log rows), riding out a short store outage: once
    the request has gone out, failing here means the attempt runs again (and the target may
    get it twice).

    A failure's row in the failed index is written first (the index lists every dead
    letter); if the swap then loses, that row is ours to drop (by its ETag).
    """
    for wait in (*OUTCOME_WRITE_WAITS, None):
        failure_row: str | None = None
        try:
            if finished.failed_at is not None:
                failure_row = store.index_failure(finished)
            store.replace(claimed, finished, along)
            return
        except StaleRecord:
            if failure_row:
                forget_failure_quietly(
                    store, finished.transaction_id, finished.failed_at, failure_row
                )
            raise
        except Exception:
            if wait is None:
                raise
            log.warning("recording the outcome of %s failed; retrying", finished.transaction_id)
            sleep(wait)


def _claim(
    order: AttemptOrder, store: TableJobStore, clock: Callable[[], datetime]
) -> StoredJob | AttemptReport:
    """The record, now firing for this attempt; or the report of why the attempt must not run."""
    for _ in range(MAX_SWAPS):
        try:
            stored = store.get(order.transaction_id)
        except UnreadableRecord as unreadable:
            # Nothing can be sent, nor written over it: the listing shows it unreadable until
            # it is deleted, and the stalled-jobs repair starts it again if it reads again.
            log.error("its attempt does not run: %s", unreadable)
            return AttemptReport(state="gone", attempt=order.attempt)
        record = stored.record if stored else None
        verdict, changed = claim(record, order.generation, order.due_at, order.attempt, clock())
        if stored is None or record is None or verdict == "gone":
            return AttemptReport(state="gone", attempt=order.attempt)
        if verdict in ("cancelled", "decided"):
            # A re-run may come after a crash between the record's write and its row's.
            _keep_indexed(store, record)
            return report_of(record)
        if verdict == "resumed" or changed is None:
            return stored
        try:
            return store.replace(stored, changed)
        except StaleRecord:
            continue  # a delete, or a re-run of this attempt, wrote first: decide again
    raise StaleRecord(order.transaction_id)


def _keep_indexed(store: TableJobStore, record: JobRecord) -> None:
    """The row a live job must have (an idempotent write), or none for an ended one."""
    if record.state not in LIVE_STATES:
        unindex_quietly(store, record)
        return
    try:
        store.index(record)
    except Exception:
        log.warning("could not index %s", record.transaction_id, exc_info=True)


def _log_skipped(context: FiringContext, count: int) -> None:
    entry = lifecycle_entry(
        context.transaction_id,
        "skipped",
        context.clock(),
        f"{count} run{'s' if count != 1 else ''} skipped: the previous run was still going, "
        "or the app was down, when they came due",
        count=count,
    )
    error = append_with_retry(context.job_log, entry)
    if error is not None:
        log.warning("the skipped entry of %s was not stored: %s", context.transaction_id, error)
